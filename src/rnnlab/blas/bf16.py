"""bfloat16 conversions in NumPy: float32 <-> bf16 stored as ``uint16`` bit patterns.

bf16 is the upper half of a float32: 1 sign bit, the same 8 exponent bits, 7
stored mantissa bits (8 significant bits, unit roundoff u = 2^-8). NumPy has no
bf16 dtype, so a bf16 array here is a ``uint16`` array of those bit patterns,
which is exactly what oneMKL's ``MKL_BF16`` is.

Rounding is IEEE round-to-nearest, ties to even, on the bit pattern: add
``0x7FFF + (bit 16)`` to the float32 bits and keep the upper half. The carry
runs into the exponent exactly when it should, so this is correct for
subnormals, for the binade boundaries and for overflow (values at or above
``0x7F7F_8000`` in magnitude round to inf, as IEEE overflow under
round-to-nearest does). Infinities and signed zeros are kept. NaN is the one
special case (adding the bias could carry a NaN's payload into inf): a NaN
becomes a quiet NaN with its sign and upper payload bits, ``(bits >> 16) | 0x40``.

oneMKL has no public float32 -> bf16 conversion routine (its bf16 GEMMs take
bf16 inputs), so there is nothing faster to call there; these run at a few
passes over memory (see ``benchmarks/gemm_mkl.py`` for their cost).

Only float32 is accepted: converting float64 through float32 would round twice
(float64 -> float32 -> bf16 can differ from a direct rounding in the last bit).
"""
from __future__ import annotations

import numpy as np

EXP_MASK = np.uint32(0x7F80_0000)
ABS_MASK = np.uint32(0x7FFF_FFFF)


def _float32_bits(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"bf16 conversion takes float32 (got {x.dtype}); float64 would be rounded twice, "
                        "convert it to float32 yourself if that is what you want")
    return x.view(np.uint32)


def _rounded_bits(u: np.ndarray) -> np.ndarray:
    """u + 0x7FFF + bit 16 of u (uint32, a new C-ordered array): its upper half is u rounded to
    bf16, except for NaNs (see :func:`to_bf16`)."""
    t = np.right_shift(u, 16, order="C")
    t &= 1
    t += 0x7FFF
    t += u
    return t


def _nan_mask(u: np.ndarray) -> np.ndarray | None:
    """Where u holds a NaN, or None when nowhere (one reduction, no temporary, in the usual case)."""
    if u.size == 0 or not np.isnan(u.view(np.float32).max()):
        return None
    return (u & ABS_MASK) > EXP_MASK


def to_bf16(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 array -> bf16 bit patterns (``uint16``, same shape), round to nearest even.

    ``out``: a ``uint16`` array of the same shape to write into (returned).
    """
    u = _float32_bits(x)
    if out is None:
        out = np.empty(u.shape, np.uint16)
    elif out.dtype != np.uint16 or out.shape != u.shape:
        raise ValueError(f"out must be uint16 of shape {u.shape}, got {out.dtype} {out.shape}")
    np.right_shift(_rounded_bits(u), 16, out=out, casting="unsafe")   # the upper half, one pass
    nan = _nan_mask(u)
    if nan is not None:
        out[nan] = (u[nan] >> 16) | 0x0040
    return out


def from_bf16(b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """bf16 bit patterns (``uint16``) -> float32 (exact: every bf16 value is a float32)."""
    b = np.asarray(b)
    if b.dtype != np.uint16:
        raise TypeError(f"bf16 arrays are uint16 bit patterns, got {b.dtype}")
    if out is None:
        out = np.empty(b.shape, np.float32)
    elif out.dtype != np.float32 or out.shape != b.shape:
        raise ValueError(f"out must be float32 of shape {b.shape}, got {out.dtype} {out.shape}")
    bits = out.view(np.uint32)
    np.copyto(bits, b, casting="safe")
    bits <<= 16
    return out


def round_bf16(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 -> float32 holding the bf16-rounded values (what a bf16 product sees), in
    fewer passes than ``from_bf16(to_bf16(x))``; ``out`` may be ``x`` itself."""
    u = _float32_bits(x)
    nan = _nan_mask(u)
    keep = u[nan] if nan is not None else None
    t = _rounded_bits(u)
    t &= np.uint32(0xFFFF_0000)
    if keep is not None:
        t[nan] = (keep & np.uint32(0xFFFF_0000)) | np.uint32(0x0040_0000)
    if out is None:
        return t.view(np.float32)
    if out.dtype != np.float32 or out.shape != u.shape:
        raise ValueError(f"out must be float32 of shape {u.shape}, got {out.dtype} {out.shape}")
    np.copyto(out.view(np.uint32), t)
    return out


__all__ = ["from_bf16", "round_bf16", "to_bf16"]
