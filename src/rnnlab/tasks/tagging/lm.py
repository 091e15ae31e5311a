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
from ...layers import Recurrent
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


def boundaries(tokens: Sequence[str]) -> tuple[str, np.ndarray, np.ndarray]:
    """The text the LMs read, and each word's first and last character position in it."""
    lens = np.fromiter((len(t) for t in tokens), np.int64, len(tokens))
    starts = 1 + np.cumsum(lens + 1) - (lens + 1)
    return " " + " ".join(tokens) + " ", starts, starts + np.maximum(lens, 1) - 1


def _states(lm: CharLM, texts: Sequence[str], lengths: Sequence[int], rows: np.ndarray,
            positions: np.ndarray) -> np.ndarray:
    """(N, H) top-layer states of ``lm`` at (rows[n], positions[n]), in its reading order: row b
    reads the first ``lengths[b]`` characters of texts[b], or of the reversed text for a backward
    LM, whose position i then holds the state after reading texts[b] from its end back to character
    ``len(texts[b]) - 1 - i``. Each row runs its own length (the forward-only loop over packed
    rows: no step is spent on padding).

    Only the requested states are read: the top layer runs with ``outputs=False`` and they are
    picked from its step-major states (``hs[1 + step, sorted row]``, the map
    :meth:`~rnnlab.layers.packing.Packing.scatter` applies), not from a (B, L, H) array scattered
    first; the same values (a block of 256 CoNLL-2000 sentences spent 12 % of its time on that
    scatter). A stack with a projection gets its outputs the plain way."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = np.full((len(texts), int(lengths.max())), lm.fallback, dtype=np.int64)
    stoi, fallback = lm.stoi, lm.fallback
    for b, t in enumerate(texts):
        n = int(lengths[b])
        ids[b, :n] = [stoi.get(ch, fallback) for ch in (t[::-1] if lm.reverse else t)[:n]]
    model = lm.model
    rnn = model.rnn
    with no_grad():
        x = model.embed.tokens(ids) if model.fuse_input(ids) else model.embed.forward(ids)[0]
        if rnn.proj is not None or not isinstance(rnn.layers[-1], Recurrent):
            (h, _), _ = rnn.forward(x, None, lengths)
            return np.asarray(h)[rows, positions]
        h = x
        for k, (layer, drop) in enumerate(zip(rnn.layers, rnn.drops)):   # RNNStack.forward's loop
            if drop is not None:
                h, _ = drop.forward(h)
            (h, _), cache = layer.forward(h, None, lengths, outputs=k < len(rnn.layers) - 1)
    pack = cache.packing
    return cache.hs[1 + pack.step_of[positions, rows], pack.rank[rows]]


class LMFeatures:
    """Frozen features of a forward and a backward char LM, cached per sentence.

    New sentences are read ``batch`` at a time (at most ``max_positions`` characters in all),
    sorted by length, so each group's rows have nearly equal lengths and each step's product
    is one (rows, H) x (H, 4H) GEMM with many rows: an LSTM step's time grows far less than its
    row count (docs/tagging.md, "Speed against PyTorch"). Neither LM reads a character whose state
    no word uses: the forward LM stops at the last word's last character, the backward one at the
    first word's first character (the text's outer spaces are each read by one LM only).
    """

    def __init__(self, fwd: str | Path, bwd: str | Path, batch: int = 128, max_positions: int = 1 << 16) -> None:
        self.fwd, self.bwd = load_charlm(fwd), load_charlm(bwd)
        if self.fwd.reverse or not self.bwd.reverse:
            raise ConfigError(f"--lm FWD_RUN,BWD_RUN: {self.fwd.path} must read forwards and {self.bwd.path} "
                              "backwards (train it with `rnnlab train --reverse`)")
        self.dim = self.fwd.model.rnn.output_size + self.bwd.model.rnn.output_size
        self.batch, self.max_positions = batch, max_positions
        self.cache: dict[tuple[str, ...], np.ndarray] = {}

    def groups(self, todo: Sequence[tuple[str, ...]]) -> list[list[tuple[str, ...]]]:
        """``todo`` (sorted by length) cut into groups of at most ``batch`` sentences whose rows
        x longest text stay within ``max_positions`` (a longer sentence gets a group of its own)."""
        out: list[list[tuple[str, ...]]] = [[]]
        for tokens in todo:
            longest = sum(map(len, tokens)) + len(tokens) + 1
            if out[-1] and (len(out[-1]) >= self.batch or (len(out[-1]) + 1) * longest > self.max_positions):
                out.append([])
            out[-1].append(tokens)
        return [g for g in out if g]

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """(T, dim) float32 features per sentence (tokens)."""
        todo = sorted({tuple(s) for s in sentences if tuple(s) not in self.cache},
                      key=lambda s: sum(map(len, s)) + len(s))
        for group in self.groups(todo):
            parts = [boundaries(tokens) for tokens in group]
            sizes = np.array([len(text) for text, _, _ in parts], dtype=np.int64)
            counts = np.array([len(tokens) for tokens in group])
            rows = np.repeat(np.arange(len(group)), counts)
            starts = np.concatenate([p[1] for p in parts]) if rows.size else rows
            ends = np.concatenate([p[2] for p in parts]) if rows.size else rows
            texts = [text for text, _, _ in parts]
            # forward: read up to the last word's last character (len - 2); backward: from the end
            # back to the first word's first character (position 1, reversed position len - 2)
            hf = _states(self.fwd, texts, [p[2].max() + 1 if len(p[2]) else 1 for p in parts], rows, ends)
            hb = _states(self.bwd, texts, [len(p[0]) - p[1].min() if len(p[1]) else 1 for p in parts], rows,
                         sizes[rows] - 1 - starts)
            feats = np.concatenate([hf, hb], axis=1).astype(np.float32)
            for tokens, f in zip(group, np.split(feats, np.cumsum(counts)[:-1])):
                self.cache[tokens] = f
        return [self.cache[tuple(s)] for s in sentences]
