"""``RNNLAB_BLAS=exact``: float32 products that round the same on every CPU.

A BLAS sums each element of ``a @ b`` in an order of its own choosing: the kernel OpenBLAS picks
for the CPU (Haswell, SkylakeX, Zen, ...), oneMKL's code path, the number of threads, even the
row count can change it. The results agree to float32 rounding, which is all a training run
needs; but a process that feeds its own rounding back thousands of times, as the online anomaly
detector's small networks do (an Adam step every two rows, each step's weights made from the
last), turns a last-bit difference into a different stream of forecasts, and so into different
anomaly scores on an Intel and an AMD core (measured: docs/anomaly.md, "Scores that do not
depend on the CPU").

Here every element is summed in one fixed order, ascending ``k``, each product rounded to float32
before it is added, no FMA::

    out[i, j] = (...((a[i,0] b[0,j] + a[i,1] b[1,j]) + a[i,2] b[2,j]) + ... + a[i,K-1] b[K-1,j])

by a compiled loop (:mod:`rnnlab.fast.compiled_exact`, numba) that vectorises across independent
outputs only, or where numba is absent or ``RNNLAB_ACCEL=0`` by the NumPy loop
:func:`matmul_numpy`, one vectorised multiply-add per ``k`` (the same operations in the same
order: the two give the same bits, ``tests/blas/test_exact.py``). IEEE-754 rounds each of those
operations the same everywhere, so the result does not depend on the CPU, the BLAS, NumPy's SIMD
level or the thread count. It is 2-4x slower than a BLAS on small products and more on large ones:
meant for the online detector (``rnnlab.tasks.anomaly.online.fixed_products``), not for training
large models. float64 products (gradient checks) are not affected.
"""
from __future__ import annotations

import numpy as np

from ..fast import accel


def matmul_numpy(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *,
                 accumulate: bool = False) -> np.ndarray:
    """The fixed-order product (module docstring) in NumPy: one (M, N) multiply and one addition
    per ``k``, the products rounded to float32 before each addition."""
    M, K = a.shape
    N = b.shape[1]
    acc = np.zeros((M, N), np.float32)
    term = np.empty((M, N), np.float32)
    for k in range(K):
        np.multiply(a[:, k:k + 1], b[k:k + 1, :], out=term)
        acc += term
    return _deliver(acc, out, accumulate)


def _deliver(res: np.ndarray, out: np.ndarray | None, accumulate: bool) -> np.ndarray:
    """``res`` itself (no ``out``), or written into ``out`` (added to it with ``accumulate``)."""
    if out is None:
        return res
    if accumulate:
        out += res
    else:
        out[...] = res
    return out


_kernel = None


def _compiled():
    global _kernel
    if _kernel is None:
        from ..fast.compiled_exact import matmul_into

        _kernel = matmul_into
    return _kernel


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, accumulate: bool = False) -> np.ndarray:
    """``a @ b`` (``out += a @ b`` with ``accumulate``) for 2-D float32 operands, in the fixed order;
    the compiled loop where :mod:`rnnlab.fast.accel` is on, else :func:`matmul_numpy` (same bits).

    The compiled loop vectorises over the result's columns, so a product with few columns and many
    rows (an input gradient ``dXW @ W_x.T``: 6 columns) is computed as its transpose,
    ``out.T = b.T @ a.T``: each element is then the same products (``b a = a b`` exactly) summed in the
    same order. Operands are made contiguous first (a transposed view, as in a weight gradient,
    is copied: cheaper than strided reads, and one compiled specialisation serves every call)."""
    M, K = a.shape
    if K != b.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    N = b.shape[1]
    if out is not None and (out.shape != (M, N) or out.dtype != np.float32):
        raise ValueError(f"matmul: out must be float32 of shape {(M, N)}, got {out.dtype} {out.shape}")
    if not accel.enabled():
        return matmul_numpy(a, b, out, accumulate=accumulate)
    kernel = _compiled()
    if N < 16 and M >= 2 * N:
        res = np.empty((N, M), np.float32)
        kernel(np.ascontiguousarray(b.T), np.ascontiguousarray(a.T), res, False)
        return _deliver(np.ascontiguousarray(res.T) if out is None else res.T, out, accumulate)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if out is None or not out.flags.c_contiguous:
        res = np.empty((M, N), np.float32)
        kernel(a, b, res, False)
        return _deliver(res, out, accumulate)
    kernel(a, b, out, accumulate)
    return out


__all__ = ["matmul", "matmul_numpy"]
