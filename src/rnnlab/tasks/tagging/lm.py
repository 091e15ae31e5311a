"""Contextual word features from two character language models (Akbik et al. 2018).

A sentence is read as the string ``" " + " ".join(tokens) + " "`` by two char-LM runs of
rnnlab (``rnnlab train``): one forward, one trained with ``--reverse`` (it reads the text from
its end). For each word the features are::

    [ h_fwd(last character of the word) ; h_bwd(first character of the word) ]

the top recurrent layer's hidden state of the forward LM after it has read the sentence up to
and including the word, and of the backward LM after it has read the sentence from its end back
to and including the word (2 x H numbers per word, H the LMs' hidden size). The LMs are frozen:
features are computed once per distinct sentence (eval mode, no gradient) and cached, so they
are an input of the tagger like the word embeddings' ids, not a layer with parameters.

Characters the LM never saw are read as a space (or its first character when it has no space).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from ...checkpoint import load_checkpoint
from ...errors import ConfigError
from ...module import no_grad
from ...train.runs import find_checkpoint
from ..charlm.packing import unpack_model


class CharLM(NamedTuple):
    model: Any
    stoi: dict
    fallback: int
    reverse: bool
    path: Path


def load_charlm(run: str | Path) -> CharLM:
    """A char-LM run folder (or checkpoint file) of ``rnnlab train``; whether it reads backwards
    comes from its config (``--reverse``)."""
    path = find_checkpoint(run)
    arrays, meta = load_checkpoint(path)
    model, vocab = unpack_model(arrays, meta, str(path))
    stoi = {ch: i for i, ch in enumerate(vocab.chars)}
    fallback = stoi.get(" ", 0)
    reverse = bool(meta.get("config", {}).get("reverse", False))
    return CharLM(model.eval(), stoi, fallback, reverse, path)


def _states(lm: CharLM, texts: Sequence[str]) -> np.ndarray:
    """(B, L, H) top-layer states of ``lm`` over texts padded to the longest (L); for a backward
    LM, position i holds the state after reading the text from its end back to character i."""
    L = max(len(t) for t in texts)
    ids = np.full((len(texts), L), lm.fallback, dtype=np.int64)
    for b, t in enumerate(texts):
        row = [lm.stoi.get(ch, lm.fallback) for ch in (t[::-1] if lm.reverse else t)]
        ids[b, :len(row)] = row
    model = lm.model
    with no_grad():
        x = model.embed.tokens(ids) if model.fuse_input(ids) else model.embed.forward(ids)[0]
        (h, _), _ = model.rnn.forward(x, None)
    h = np.asarray(h)
    if lm.reverse:  # back to the text's own order, each row by its own length
        out = np.zeros_like(h)
        for b, t in enumerate(texts):
            out[b, :len(t)] = h[b, :len(t)][::-1]
        return out
    return h


class LMFeatures:
    """Frozen features of a forward and a backward char LM, cached per sentence."""

    def __init__(self, fwd: str | Path, bwd: str | Path, batch: int = 32) -> None:
        self.fwd, self.bwd = load_charlm(fwd), load_charlm(bwd)
        if self.fwd.reverse or not self.bwd.reverse:
            raise ConfigError(f"--lm FWD_RUN,BWD_RUN: {self.fwd.path} must read forwards and {self.bwd.path} "
                              "backwards (train it with `rnnlab train --reverse`)")
        self.dim = self.fwd.model.rnn.output_size + self.bwd.model.rnn.output_size
        self.batch = batch
        self.cache: dict[tuple[str, ...], np.ndarray] = {}

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """(T, dim) float32 features per sentence (tokens)."""
        todo = sorted({tuple(s) for s in sentences if tuple(s) not in self.cache}, key=len)
        for i in range(0, len(todo), self.batch):
            group = todo[i:i + self.batch]
            texts, spans = [], []
            for tokens in group:
                pos, starts = 1, []
                for tok in tokens:
                    starts.append(pos)
                    pos += len(tok) + 1
                texts.append(" " + " ".join(tokens) + " ")
                spans.append(np.array(starts))
            hf, hb = _states(self.fwd, texts), _states(self.bwd, texts)
            for b, (tokens, starts) in enumerate(zip(group, spans)):
                ends = starts + np.array([max(len(t), 1) for t in tokens]) - 1
                self.cache[tokens] = np.concatenate([hf[b, ends], hb[b, starts]], axis=1).astype(np.float32)
        return [self.cache[tuple(s)] for s in sentences]
