"""Memory order of batch-first arrays.

A recurrent layer returns its (B, T, H) output as a view of time-major (T, B, H)
memory (see :mod:`rnnlab.layers.recurrent`). Layers that work element by
element or row by row can keep that order instead of copying the array into
batch-first order.
"""
from __future__ import annotations

import numpy as np


def is_time_major_view(x: np.ndarray) -> bool:
    """True when ``x`` is (B, T, D) whose memory is (T, B, D) C order, and not batch-first C order."""
    return x.ndim == 3 and not x.flags.c_contiguous and x.transpose(1, 0, 2).flags.c_contiguous
