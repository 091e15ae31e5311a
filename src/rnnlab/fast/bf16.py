"""bf16 matrix products for the kernels and layers under ``--precision bf16``
(:mod:`rnnlab.blas.precision`): bf16 operands, float32 accumulation and result, oneMKL's
``cblas_gemm_bf16bf16f32``.

* :func:`stepper`: a time loop's product ``out = a[t] @ W``; ``W`` is rounded to bf16 and packed
  once per call (once per loop, so once per optimizer step), ``a[t]`` (B rows) is rounded into a
  small bf16 buffer at each step.
* :func:`matmul`: one product of two float32 arrays (the input projection, the weight
  gradients, the output layer), both rounded to bf16 first; :func:`mm` sends such a product here
  under bf16, and in float32 to the library ``RNNLAB_BLAS`` picks (:func:`rnnlab.blas.choice.gemm`).
* :func:`fixed`: generation's per-step product ``out = x @ W`` with a fixed ``W``: packed in bf16
  once (per stepper, i.e. per generated text), ``x`` rounded into a small buffer at each call; in
  fp32 it is NumPy's ``np.matmul``.
* :func:`active`: True where a float32 product should go here (``bf16`` in effect).

Rounding is round-to-nearest-even (:func:`rnnlab.blas.bf16.to_bf16`; with numba, its compiled
twin :func:`rnnlab.fast.compiled_bf16.to_bf16_bits`, one pass, tested equal). Operands that are
transposed views are rounded in their own memory order and handed to BLAS transposed, never
copied first.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..blas import choice as blas_choice
from ..blas import precision
from ..blas.bf16 import to_bf16
from . import accel


def active(*arrays: np.ndarray) -> bool:
    """bf16 products in effect, and every array float32 (or already bf16 bits: uint16)."""
    return precision.current() == "bf16" and all(a.dtype in (np.float32, np.uint16) for a in arrays)


def convert(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 2-D -> bf16 bits (uint16) of the same shape; C-ordered ``out`` unless ``x`` is a
    transposed view (then the result is the transpose of a C-ordered array). bf16 bits (uint16)
    pass through unchanged, so an operand used twice is converted once."""
    if x.dtype == np.uint16 and out is None:
        return x
    if x.ndim != 2:
        raise ValueError(f"convert takes 2-D arrays, got shape {x.shape}")
    if out is None and not x.flags.c_contiguous and x.T.flags.c_contiguous:
        return convert(x.T).T
    if out is None:
        out = np.empty(x.shape, np.uint16)
    if accel.enabled():
        from .compiled_bf16 import to_bf16_bits

        to_bf16_bits(x.view(np.uint32), out)
        return out
    if x.flags.c_contiguous:
        return to_bf16(x, out=out)
    return to_bf16(np.ascontiguousarray(x), out=out)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, beta: float = 0.0) -> np.ndarray:
    """``out = bf16(a) @ bf16(b) + beta * out`` accumulated in float32 (2-D float32 operands)."""
    from ..blas.mkl import gemm_bf16

    return gemm_bf16(convert(a), convert(b), out, beta=beta)


def mm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, accumulate: bool = False) -> np.ndarray:
    """``a @ b`` (``out +=`` it with ``accumulate``): in bf16 where :func:`active`, else through the
    library ``RNNLAB_BLAS`` picks for a whole-sequence product (:func:`rnnlab.blas.choice.gemm`:
    NumPy's, or oneMKL's where it was timed faster on this shape)."""
    if accumulate and out is None:
        raise ValueError("accumulate needs out")
    if a.ndim == 2 and b.ndim == 2 and active(a, b) and (out is None or out.dtype == np.float32):
        return matmul(a, b, out, beta=1.0 if accumulate else 0.0)
    return blas_choice.gemm(a, b, out, accumulate=accumulate)


def stepper(a: np.ndarray, W: np.ndarray, out: np.ndarray) -> Callable[[int], Any]:
    """``run(t)``: ``out[...] = bf16(a[t]) @ bf16(W)`` for a stack ``a`` (T, B, K) and a fixed
    ``W`` (K, N) packed once here; ``out`` (B, N) float32 with contiguous rows."""
    from ..blas.mkl import PackedMatrix

    B = a.shape[1]
    packed = PackedMatrix(W, B, precision="bf16")
    buf = np.empty((B, W.shape[0]), np.uint16)
    product = packed.stepper(buf, out)
    if accel.enabled():
        from .compiled_bf16 import to_bf16_bits

        bits = a.view(np.uint32)

        def run(t: int) -> None:
            to_bf16_bits(bits[t], buf)
            product(0)
    else:
        def run(t: int) -> None:
            convert(a[t], buf)
            product(0)
    run.arrays = (a, W, out, buf, packed)  # type: ignore[attr-defined]
    return run


def fixed(W: np.ndarray, rows: int) -> Callable[[np.ndarray, np.ndarray], Any]:
    """``prod(x, out)``: ``out[...] = x @ W`` for ``x`` of ``rows`` rows and a weight ``W`` (K, N)
    that does not change while ``prod`` is used (generation). Under bf16 (:func:`active`), ``W`` is
    rounded and packed once here and ``x`` rounded at each call, accumulating in float32;
    otherwise it is ``np.matmul(x, W, out=out)``."""
    if not active(W):
        def numpy_product(x: np.ndarray, out: np.ndarray) -> Any:
            return np.matmul(x, W, out=out)
        return numpy_product
    from ..blas.mkl import PackedMatrix

    packed = PackedMatrix(np.ascontiguousarray(W), rows, precision="bf16")
    buf = np.empty((rows, W.shape[0]), np.uint16)

    def bf16_product(x: np.ndarray, out: np.ndarray) -> Any:
        convert(np.ascontiguousarray(x), buf)
        return packed.compute(buf, out)
    bf16_product.arrays = (W, buf, packed)  # type: ignore[attr-defined]
    return bf16_product


__all__ = ["active", "convert", "fixed", "matmul", "mm", "stepper"]
