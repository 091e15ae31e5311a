"""The compiled twin of :func:`rnnlab.blas.bf16.to_bf16` (numba): float32 -> bf16 bit patterns in
one pass, for the operands of the bf16 products (:mod:`rnnlab.fast.bf16`); tested equal to it,
NaNs included.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .compiled_base import _jit


@_jit
def to_bf16_bits(u: Any, out: Any) -> None:
    """out[i, j] = bf16 of the float32 whose bits are u[i, j] (uint32, any strides): round to
    nearest even on the bit pattern; a NaN stays a quiet NaN with its sign and upper payload."""
    rows, cols = u.shape
    for i in range(rows):
        for j in range(cols):
            v = np.int64(u[i, j])
            if (v & 0x7FFFFFFF) > 0x7F800000:
                out[i, j] = np.uint16((v >> 16) | 0x40)
            else:
                out[i, j] = np.uint16((v + 0x7FFF + ((v >> 16) & 1)) >> 16)
