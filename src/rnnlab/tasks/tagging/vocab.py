"""Vocabularies (words, characters, case/shape, feature columns, tags), encoding and batches.

* words: lower-cased (``lower=True``), kept when seen at least ``min_word_count`` times in
  the training sentences; index 0 is padding, 1 the unknown word.
* characters: case kept, index 0 padding, 1 unknown.
* case/shape of a token (:func:`case_feature`): one of :data:`CASES`, index 0 padding.
* feature columns (e.g. conll2000's POS): one vocabulary per column, padding and unknown.
* tags: no padding or unknown entry (the CRF gives every index a meaning; padding positions
  carry tag 0 and mask 0). With ``complete=True`` every prefix of the scheme is added for
  each type seen (S-UCP even if only B-UCP occurred). A tag never seen in training is
  encoded as O and counted in ``TagVocab.unknown``; never a crash. The metrics are
  computed on the sentences' own tag strings, so such a gold tag still counts as itself.

Batches (:func:`make_batches`) group sentences of similar length (fewer padded positions),
pad to the longest sentence of the batch, and carry a prefix ``mask`` and ``lengths``;
the order is deterministic given ``seed``. ``Batch.index`` maps rows back to sentences.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from .data import Sentence
from .schemes import PREFIXES, normalize_scheme, split_tag

PAD, UNK = "<pad>", "<unk>"
CASES = ("lower", "upper", "title", "numeric", "has_digit", "mixed", "punct", "other")


def case_feature(token: str) -> str:
    """Shape class of a token: punct (no letter or digit), numeric (all digits), has_digit,
    lower, upper, title (Xxxx), mixed (other letter cases), other."""
    if not any(ch.isalnum() for ch in token):
        return "punct"
    if token.isdigit():
        return "numeric"
    if any(ch.isdigit() for ch in token):
        return "has_digit"
    if token.islower():
        return "lower"
    if token.isupper():
        return "upper"
    if token.istitle():
        return "title"
    return "mixed" if any(ch.isalpha() for ch in token) else "other"


class Vocab:
    """items <-> indices; optional padding (index 0) and unknown (next index) entries."""

    def __init__(self, items: Iterable[str], *, pad: bool = True, unk: bool = True) -> None:
        self.pad, self.unk = pad, unk
        specials = [PAD] * pad + [UNK] * unk
        self.itos: list[str] = specials + [i for i in items if i not in specials]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary items repeat")

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int | None = None,
                    **kw: bool) -> "Vocab":
        """Items seen at least ``min_count`` times, most frequent first (ties by item)."""
        items = sorted((k for k, n in counts.items() if n >= min_count), key=lambda k: (-counts[k], k))
        return cls(items[:max_size], **kw)

    @property
    def unk_index(self) -> int | None:
        return self.stoi[UNK] if self.unk else None

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def index(self, item: str) -> int:
        i = self.stoi.get(item)
        if i is None:
            if not self.unk:
                raise KeyError(item)
            return self.stoi[UNK]
        return i

    def encode(self, items: Sequence[str]) -> np.ndarray:
        return np.array([self.index(i) for i in items], dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def to_dict(self) -> dict:
        return {"items": self.itos[self.pad + self.unk:], "pad": self.pad, "unk": self.unk}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        return cls(d["items"], pad=d["pad"], unk=d["unk"])


class TagVocab(Vocab):
    """Tags, no padding or unknown entry; unseen tags encode as O (or index 0) and are counted."""

    def __init__(self, items: Iterable[str]) -> None:
        super().__init__(items, pad=False, unk=False)
        self.fallback = self.stoi.get("O", 0)
        self.unknown: Counter[str] = Counter()

    @classmethod
    def build(cls, tags: Iterable[str], scheme: str | None = None, complete: bool = True) -> "TagVocab":
        """O first, then by type and prefix; ``complete`` adds every prefix of ``scheme`` per type."""
        seen = set(tags) - {"O"}
        if scheme is not None and complete:
            types = {split_tag(t)[1] for t in seen}
            seen |= {f"{p}-{k}" for k in types for p in PREFIXES[normalize_scheme(scheme)]}
        order = "BIESO"
        return cls(["O"] + sorted(seen, key=lambda t: (split_tag(t)[1], order.find(split_tag(t)[0]), t)))

    def index(self, item: str) -> int:
        i = self.stoi.get(item)
        if i is None:
            self.unknown[item] += 1
            return self.fallback
        return i

    def report_unknown(self) -> str | None:
        """One line naming the unseen tags (None when every tag was known)."""
        if not self.unknown:
            return None
        listed = ", ".join(f"{t} x{n}" for t, n in self.unknown.most_common())
        return (f"{sum(self.unknown.values())} tags not seen in training were encoded as "
                f"{self.itos[self.fallback]!r}: {listed}")

    @classmethod
    def from_dict(cls, d: dict) -> "TagVocab":
        return cls(d["items"])


@dataclass
class Vocabs:
    words: Vocab
    chars: Vocab
    cases: Vocab
    tags: TagVocab
    features: list[Vocab] = field(default_factory=list)
    lower: bool = True

    def word_key(self, token: str) -> str:
        return token.lower() if self.lower else token

    def to_dict(self) -> dict:
        return {"words": self.words.to_dict(), "chars": self.chars.to_dict(), "cases": self.cases.to_dict(),
                "tags": self.tags.to_dict(), "features": [f.to_dict() for f in self.features], "lower": self.lower}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabs":
        return cls(Vocab.from_dict(d["words"]), Vocab.from_dict(d["chars"]), Vocab.from_dict(d["cases"]),
                   TagVocab.from_dict(d["tags"]), [Vocab.from_dict(f) for f in d["features"]], d["lower"])


def build_vocabs(train: Sequence[Sentence], *, scheme: str | None = "BIO", min_word_count: int = 1,
                 min_char_count: int = 1, lower: bool = True, complete_tags: bool = True) -> Vocabs:
    """Vocabularies from the training sentences only."""
    words = Counter(t.lower() if lower else t for s in train for t in s.tokens)
    chars = Counter(ch for s in train for t in s.tokens for ch in t)
    n_feat = len(train[0].features[0]) if train and train[0].features else 0
    feats = [Vocab.from_counts(Counter(s.features[t][k] for s in train for t in range(len(s))))
             for k in range(n_feat)]
    return Vocabs(Vocab.from_counts(words, min_word_count), Vocab.from_counts(chars, min_char_count),
                  Vocab(CASES, unk=False), TagVocab.build((t for s in train for t in s.tags), scheme, complete_tags),
                  feats, lower)


class Encoded(NamedTuple):
    words: np.ndarray      # (T,)
    chars: np.ndarray      # (T, C) character ids, 0-padded to the sentence's longest token
    char_lengths: np.ndarray  # (T,)
    cases: np.ndarray      # (T,)
    features: np.ndarray   # (T, F)
    tags: np.ndarray       # (T,)
    lm: np.ndarray | None = None  # (T, D) frozen char-LM features (rnnlab.tasks.tagging.lm), if any


def encode(sentences: Sequence[Sentence], vocabs: Vocabs, max_word_len: int | None = None,
           lm: Any = None) -> list[Encoded]:
    """Index arrays of every sentence (tokens longer than ``max_word_len`` keep their start);
    with ``lm`` (an :class:`~rnnlab.tasks.tagging.lm.LMFeatures`), each sentence's LM features."""
    known: dict[str, tuple[int, int, list[int]]] = {}  # tokens repeat: look each up once

    def lookup(tok: str) -> tuple[int, int, list[int]]:
        spelled = tok if max_word_len is None else tok[:max_word_len]
        known[tok] = (vocabs.words.index(vocabs.word_key(tok)), vocabs.cases.index(case_feature(tok)),
                      [vocabs.chars.index(ch) for ch in spelled])
        return known[tok]

    out = []
    feats_lm = lm([s.tokens for s in sentences]) if lm is not None else [None] * len(sentences)
    for s, f_lm in zip(sentences, feats_lm):
        T = len(s)
        entries = [known.get(tok) or lookup(tok) for tok in s.tokens]
        lens = np.array([len(e[2]) for e in entries], dtype=np.int64)
        chars = np.zeros((T, int(lens.max())), dtype=np.int64)
        for t, e in enumerate(entries):
            chars[t, :lens[t]] = e[2]
        feats = np.array([[v.index(s.features[t][k]) for k, v in enumerate(vocabs.features)] for t in range(T)],
                         dtype=np.int64).reshape(T, len(vocabs.features))
        out.append(Encoded(np.array([e[0] for e in entries], dtype=np.int64), chars, lens,
                           np.array([e[1] for e in entries], dtype=np.int64), feats, vocabs.tags.encode(s.tags),
                           f_lm))
    return out


@dataclass
class Batch:
    words: np.ndarray         # (B, T) int64, 0 on padding
    chars: np.ndarray         # (B, T, C)
    char_lengths: np.ndarray  # (B, T), 0 on padding
    cases: np.ndarray         # (B, T)
    features: np.ndarray      # (B, T, F)
    tags: np.ndarray          # (B, T), 0 on padding
    mask: np.ndarray          # (B, T) bool, True for the first lengths[b] positions
    lengths: np.ndarray       # (B,)
    index: np.ndarray         # (B,) positions of the rows' sentences in the encoded list
    lm: np.ndarray | None = None  # (B, T, D) float32 char-LM features, 0 on padding
    word_classes: np.ndarray | None = None  # (B, T) word-LM classes of the words (training, --word-lm-weight)
    span: np.ndarray | None = None  # (B, 2) --context: offset and length of each row's own sentence (context.py)

    @property
    def size(self) -> int:
        return len(self.lengths)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())


def collate(encoded: Sequence[Encoded], index: Sequence[int]) -> Batch:
    rows = [encoded[i] for i in index]
    B, T = len(rows), max(len(r.words) for r in rows)
    C, F = max(r.chars.shape[1] for r in rows), rows[0].features.shape[1]
    b = Batch(np.zeros((B, T), np.int64), np.zeros((B, T, C), np.int64), np.zeros((B, T), np.int64),
              np.zeros((B, T), np.int64), np.zeros((B, T, F), np.int64), np.zeros((B, T), np.int64),
              np.zeros((B, T), bool), np.array([len(r.words) for r in rows]), np.asarray(index, dtype=np.int64))
    for k, r in enumerate(rows):
        L = len(r.words)
        b.words[k, :L], b.cases[k, :L], b.tags[k, :L], b.features[k, :L] = r.words, r.cases, r.tags, r.features
        b.chars[k, :L, :r.chars.shape[1]], b.char_lengths[k, :L] = r.chars, r.char_lengths
        b.mask[k, :L] = True
    if rows[0].lm is not None:
        b.lm = np.zeros((B, T, rows[0].lm.shape[1]), np.float32)
        for k, r in enumerate(rows):
            b.lm[k, :len(r.words)] = r.lm
    return b


def make_batches(encoded: Sequence[Encoded], batch_size: int = 32, *, shuffle: bool = False, seed: int = 0,
                 max_tokens: int | None = None, pool: int = 50) -> list[Batch]:
    """Length-bucketed batches. Without ``shuffle``: sorted by length, shortest first. With it:
    a seeded permutation, sorted by length within pools of ``pool`` batches, batches in seeded
    random order. ``max_tokens`` caps B x T (a longer single sentence still gets its own batch)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    lengths = np.array([len(e.words) for e in encoded])
    if shuffle:
        rng = np.random.default_rng(seed)
        perm, span = rng.permutation(len(encoded)), batch_size * pool
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")]
                                for p in (perm[i:i + span] for i in range(0, len(perm), span))] or [perm])
    else:
        order = np.argsort(lengths, kind="stable")
    groups: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order.tolist():
        grown = max(longest, lengths[i])
        if current and (len(current) == batch_size or (max_tokens and (len(current) + 1) * grown > max_tokens)):
            groups.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        groups.append(current)
    if shuffle:
        groups = [groups[k] for k in rng.permutation(len(groups))]
    return [collate(encoded, g) for g in groups]
