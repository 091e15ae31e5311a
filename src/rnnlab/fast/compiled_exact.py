"""The compiled twin of :func:`rnnlab.blas.exact.matmul_numpy` (numba): a float32 matrix product
whose every element is summed in one fixed order, so that it rounds the same on every CPU.

``out[i, j] = (...((a[i, 0] b[0, j] + a[i, 1] b[1, j]) + a[i, 2] b[2, j]) + ...)``: each product
rounded to float32, then added in ascending ``k``, no FMA (no ``fastmath`` at all: LLVM fuses a
multiply with an add only when told it may). The loop over ``j`` is the inner one, so it
vectorises across *independent* outputs (lanes never meet), and a 4-, 8- or 16-lane machine
computes the same bits; BLAS kernels instead split ``k`` across lanes and registers in a way that
depends on the CPU (OpenBLAS's Haswell and SkylakeX kernels round differently, for one).
"""
from __future__ import annotations

from typing import Any

import numba
import numpy as np

_jit_exact = numba.njit(nogil=True, cache=True, error_model="numpy")   # no fastmath: no contraction


@_jit_exact
def matmul_into(a: Any, b: Any, out: Any, accumulate: bool) -> None:
    """``out = a @ b`` (``out += a @ b`` with ``accumulate``: the product first, then one addition)
    for 2-D float32 operands of any strides. Four rows at a time share each load of ``b[k]`` (about
    1.7x faster than one row at a time on small products); each element's order is the same."""
    M, K = a.shape
    N = b.shape[1]
    acc = np.empty((4, N), np.float32)
    for i0 in range(0, M, 4):
        r = min(4, M - i0)
        acc[:] = np.float32(0.0)
        if r == 4:
            for k in range(K):
                a0, a1, a2, a3 = a[i0, k], a[i0 + 1, k], a[i0 + 2, k], a[i0 + 3, k]
                for j in range(N):
                    bk = b[k, j]
                    acc[0, j] += a0 * bk
                    acc[1, j] += a1 * bk
                    acc[2, j] += a2 * bk
                    acc[3, j] += a3 * bk
        else:
            for k in range(K):
                for i in range(r):
                    aik = a[i0 + i, k]
                    for j in range(N):
                        acc[i, j] += aik * b[k, j]
        for i in range(r):
            if accumulate:
                for j in range(N):
                    out[i0 + i, j] += acc[i, j]
            else:
                for j in range(N):
                    out[i0 + i, j] = acc[i, j]
