"""Inverted dropout (Srivastava et al. 2014).

Training::  m ~ Bernoulli(1 - p) / (1 - p),   y = x * m   (m drawn from 32-bit integers, see _mask)
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
from ..workspace import Workspace
from .layout import is_time_major_view


class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # None in eval mode or when p == 0


class Dropout(Module):
    def __init__(self, p: float = 0.5, *, seed: int | np.random.Generator | None = 0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(seed)
        self.workspace = Workspace()  # the boolean keep-mask, a temporary reused between steps

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, DropoutCache]:
        if not self.training or self.p == 0.0:
            return x, DropoutCache(None)
        # The mask is drawn in x's memory order: a recurrent layer's (B, T, H) output is a view of
        # time-major memory, and keeping that order keeps every pass contiguous and lets the next
        # layer read the result without a copy.
        time_major = is_time_major_view(x)
        shape = (x.shape[1], x.shape[0], x.shape[2]) if time_major else x.shape
        mask = self._mask(shape, x.dtype)
        if time_major:
            mask = mask.transpose(1, 0, 2)
        return x * mask, DropoutCache(mask)

    def _mask(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """Bernoulli(1 - p) / (1 - p). One 32-bit random integer per unit, kept when it is at
        least p 2^32: exact to 2^-32 (a float32 uniform resolves only 2^-24), and twice as fast,
        since each 64-bit draw of the generator serves two units."""
        n = int(np.prod(shape))
        raw = self.rng.bit_generator.random_raw((n + 1) // 2)
        bits = raw.view(np.uint32)[:n].reshape(shape)
        keep = np.greater_equal(bits, np.uint32(min(round(self.p * 2.0 ** 32), 2 ** 32 - 1)),
                                out=self.workspace.empty("keep", shape, np.bool_))
        return np.multiply(keep, 1.0 / (1.0 - self.p), dtype=dtype)

    def backward(self, dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
        return dout if cache.mask is None else dout * cache.mask
