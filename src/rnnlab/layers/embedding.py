"""Token inputs: a learned embedding table, or one-hot vectors.

Embedding::  y[b, t] = W[ids[b, t]]            W : (V, E)
Backward::   dW[v] = sum over (b, t) with ids[b, t] = v of dy[b, t]

One-hot::    y[b, t] = e_{ids[b, t]} in R^V    (no parameters)

One-hot feeding a recurrent layer computes exactly ``W_x[ids]``: an embedding
whose table is the first projection. It is kept as a first-class input so
that users can compare the two (min-char-rnn and the Keras example use it).
Integer ids have no gradient; both backward passes return ``None``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import init as initializers
from ..module import DEFAULT_DTYPE, Module
from .tokens import Tokens, add_rows


def _check_ids(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token id out of range [0, {vocab_size}): min {ids.min()}, max {ids.max()}")
    return ids


class EmbeddingCache(NamedTuple):
    ids: np.ndarray


class Embedding(Module):
    def __init__(self, vocab_size: int, dim: int, *, seed: int | np.random.Generator | None = 0,
                 std: float = 1.0, dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.vocab_size, self.dim = vocab_size, dim
        rng = np.random.default_rng(seed)
        self.add_param("W", initializers.normal(std)((vocab_size, dim), rng).astype(dtype))  # as torch

    @property
    def output_size(self) -> int:
        return self.dim

    def forward(self, ids: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
        ids = _check_ids(ids, self.vocab_size)
        return self.params["W"][ids], EmbeddingCache(ids)

    def backward(self, dout: np.ndarray, cache: EmbeddingCache) -> None:
        add_rows(cache.ids, dout, self.grads["W"])   # dW[v] += the rows of dout whose id is v
        return None

    def tokens(self, ids: np.ndarray) -> Tokens:
        """The ids as input for a recurrent layer, which then projects this table once
        instead of every position (:mod:`rnnlab.layers.tokens`); gradients go to ``grads["W"]``."""
        return Tokens(_check_ids(ids, self.vocab_size), self.params["W"], self.grads["W"], self.vocab_size)


class OneHot(Module):
    def __init__(self, vocab_size: int, *, dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.out_dtype = np.dtype(dtype)

    @property
    def output_size(self) -> int:
        return self.vocab_size

    def forward(self, ids: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
        ids = _check_ids(ids, self.vocab_size)
        out = np.zeros(ids.shape + (self.vocab_size,), dtype=self.out_dtype)
        np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
        return out, EmbeddingCache(ids)

    def backward(self, dout: np.ndarray, cache: EmbeddingCache) -> None:
        return None

    def tokens(self, ids: np.ndarray) -> Tokens:
        """The ids as input for a recurrent layer, which then reads rows of W_x (one-hot x W_x)."""
        return Tokens(_check_ids(ids, self.vocab_size), None, None, self.vocab_size)

    def astype(self, dtype: Any) -> "OneHot":
        self.out_dtype = np.dtype(dtype)
        return self
