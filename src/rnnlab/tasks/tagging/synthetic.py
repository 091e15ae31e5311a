"""Generated tagged sentences: tests, examples and benchmarks that must run without real data.

Entities are learnable: an entity of type X is one to three words from X's own word list,
often after a cue word ("with", "of", "in"), and filler words never start one. With
``features=True`` every token carries a POS-like column (its word class), like conll2000.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .data import Sentence

FILLER = ("the", "patients", "were", "treated", "for", "and", "a", "study", "shows", "that", "risk",
          "is", "high", ",", "gene", "mutations", "cause", "rare", "cases", "(", ")", "-", "'")
CUES = ("with", "of", "in")
NAMES = {"Disease": ("cancer", "Breast", "ataxia", "telangiectasia", "Wilms", "tumour", "diabetes",
                     "dystrophy", "Huntington", "disease", "APC", "polyposis"),
         "Gene": ("BRCA1", "p53", "TP53", "ATM", "WT1", "HD", "DMD", "kinase")}


def synthetic_sentences(n: int, seed: int = 0, types: Sequence[str] = ("Disease",),
                        features: bool = False, max_len: int = 18) -> list[Sentence]:
    """``n`` BIO-tagged sentences of 1..max_len tokens."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        tokens: list[str] = []
        tags: list[str] = []
        target = int(rng.integers(1, max_len + 1))
        while len(tokens) < target:
            if rng.random() < 0.25:
                kind = types[int(rng.integers(len(types)))]
                if rng.random() < 0.7 and len(tokens) + 1 < target:
                    tokens.append(CUES[int(rng.integers(len(CUES)))])
                    tags.append("O")
                words = NAMES[kind]
                span = int(rng.integers(1, 4))
                for k in range(span):
                    tokens.append(words[int(rng.integers(len(words)))])
                    tags.append(("B-" if k == 0 else "I-") + kind)
                tokens.append(FILLER[int(rng.integers(len(FILLER)))])  # entities never touch
                tags.append("O")
            else:
                word = FILLER[int(rng.integers(len(FILLER)))]
                tokens.append(word.capitalize() if not tokens and rng.random() < 0.5 else word)
                tags.append("O")
        tokens, tags = tokens[:max_len], tags[:max_len]
        feats = tuple(("NN" if t != "O" else ("PUNCT" if not tok.isalnum() else "X"),) for tok, t in
                      zip(tokens, tags)) if features else ()
        out.append(Sentence(tuple(tokens), tuple(tags), feats, f"synthetic:{i}"))
    return out
