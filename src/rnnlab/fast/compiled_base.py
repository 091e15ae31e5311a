"""The pieces every compiled step shares (numba): the jit flags tanh (float32: Eigen's
rational approximation, which vectorises), and the LSTM gate gradients of one row. Used by :mod:`rnnlab.fast.compiled` and
:mod:`rnnlab.fast.compiled_norm`; see :mod:`rnnlab.fast.accel` for why and for the numerics.
"""
from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba.extending import overload

_CLAMP = 7.90531110763549805  # beyond this the float32 tanh is +-1 to within rounding
# error_model="numpy": no zero-division check, which would stop the loops from vectorising.
# fastmath: FMA contraction only; the no-NaN/no-inf flags would let a NaN come out finite.
_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})


def _tanh(x):  # type: ignore[no-untyped-def]
    """tanh in the compiled steps: float32 -> :func:`_tanh32`, float64 -> libm (NumPy outside numba)."""
    return np.tanh(x)


@overload(_tanh)
def _tanh_for(x):  # type: ignore[no-untyped-def]
    if isinstance(x, numba.types.Float) and x.bitwidth == 32:
        return _tanh32
    return lambda x: math.tanh(x)


def _tanh32(x):  # type: ignore[no-untyped-def]
    """Eigen's rational float32 tanh: vectorises, unlike a libm call; |error| < 2.7e-7."""
    c = np.float32(_CLAMP)
    x = c if x > c else x          # written so that NaN falls through both tests
    x = -c if x < -c else x
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return x * p / q


@_jit
def tanh_into(x: Any, out: Any) -> None:
    """out = tanh(x) elementwise, 1-D (the float32 approximation is tested through this)."""
    for k in range(x.size):
        out[k] = _tanh(x[k])


@_jit
def lstm_gate_grads(ar: Any, cp: Any, tr: Any, dhr: Any, dcr: Any, dar: Any) -> None:
    """da (4H,) of one row from the gates ar, c_{t-1}, tanh-term tr, dh and dc (already through
    tanh(c) or the normalisation, and the carry); dc *= f. Shared by the LSTM, LN-LSTM and
    BN-LSTM backward steps. One loop per output: a loop that writes several arrays needs more
    runtime alias checks than LLVM will emit, and then runs scalar (measured 2.5x slower)."""
    H = dhr.shape[0]
    one = ar.dtype.type(1.0)
    i, f, g, o = ar[:H], ar[H:2 * H], ar[2 * H:3 * H], ar[3 * H:]
    da_i, da_f, da_g, da_o = dar[:H], dar[H:2 * H], dar[2 * H:3 * H], dar[3 * H:]
    for j in range(H):
        da_i[j] = dcr[j] * g[j] * (i[j] * (one - i[j]))
    for j in range(H):
        da_f[j] = dcr[j] * cp[j] * (f[j] * (one - f[j]))
    for j in range(H):
        da_g[j] = dcr[j] * i[j] * (one - g[j] * g[j])
    for j in range(H):
        da_o[j] = dhr[j] * tr[j] * (o[j] * (one - o[j]))
    for j in range(H):
        dcr[j] *= f[j]
