"""Inverted dropout (Srivastava et al. 2014).

Training::  m ~ Bernoulli(1 - p) / (1 - p),   y = x * m
Eval::      y = x
Backward::  dx = dy * m      (the same mask; identity in eval mode)

Scaling by 1/(1-p) at training time keeps E[y] = x, so evaluation needs no
rescaling. The mask comes from the layer's own generator, whose state is
saved with checkpoints so that a resumed run draws the same masks.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..module import Module


class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # None in eval mode or when p == 0


class Dropout(Module):
    def __init__(self, p: float = 0.5, *, seed: int | np.random.Generator | None = 0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(seed)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, DropoutCache]:
        if not self.training or self.p == 0.0:
            return x, DropoutCache(None)
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        mask = keep.astype(x.dtype)
        mask *= 1.0 / (1.0 - self.p)
        return x * mask, DropoutCache(mask)

    def backward(self, dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
        return dout if cache.mask is None else dout * cache.mask
