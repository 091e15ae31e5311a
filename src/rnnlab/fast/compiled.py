"""The compiled element-wise steps (numba): loaded by :mod:`rnnlab.fast.accel` on first use.

Each function is the twin of a NumPy step in :mod:`rnnlab.fast.lstm` or
:mod:`rnnlab.fast.gru` (named in its docstring), for float32 and float64
alike; ``tests/fast/test_accel.py`` asserts each pair agrees. See
:mod:`rnnlab.fast.accel` for why and for the numerics.
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
def lstm_forward(a: Any, hw: Any, bias: Any, scale: Any, shift: Any, c_prev: Any, c: Any, tc: Any, h: Any) -> None:
    """a (B, 4H): scaled pre-activations in, gates [i, f, g, o] out, after adding hw
    (B or 1 rows) and bias (4H,); c = f c_prev + i g, tc = tanh(c), h = o tc (c may be c_prev)."""
    B, G = a.shape
    H = G // 4
    for b in range(B):
        ar, hr = a[b], hw[b if hw.shape[0] > 1 else 0]
        for j in range(G):
            ar[j] = _tanh(ar[j] + hr[j] + bias[j]) * scale[j] + shift[j]
        cp, cr, tr, out = c_prev[b], c[b], tc[b], h[b]
        for j in range(H):
            v = ar[H + j] * cp[j] + ar[j] * ar[2 * H + j]
            cr[j] = v
            t = _tanh(v)
            tr[j] = t
            out[j] = ar[3 * H + j] * t


@_jit
def lstm_backward(act: Any, c_prev: Any, tc: Any, dh: Any, dy: Any, has_dy: bool, dc: Any, da: Any) -> None:
    """da (B, 4H) from the gates, dh_t (+ dy_t) and dc_t; dc becomes dc_{t-1} in place."""
    B, H = dh.shape
    one = act.dtype.type(1.0)
    for b in range(B):
        ar, cp, tr, dhr, dcr, dar = act[b], c_prev[b], tc[b], dh[b], dc[b], da[b]
        for j in range(H):
            i, f, g, o, t = ar[j], ar[H + j], ar[2 * H + j], ar[3 * H + j], tr[j]
            d_h = dhr[j] + dy[b, j] if has_dy else dhr[j]
            d_c = dcr[j] + d_h * o * (one - t * t)
            dar[j] = d_c * g * (i * (one - i))
            dar[H + j] = d_c * cp[j] * (f * (one - f))
            dar[2 * H + j] = d_c * i * (one - g * g)
            dar[3 * H + j] = d_h * t * (o * (one - o))
            dcr[j] = d_c * f


@_jit
def gru_forward(xw: Any, hw: Any, bias: Any, b_hn: Any, h_prev: Any, hn: Any, h: Any) -> None:
    """xw (B, 3H) scaled in (bias (3H,) added here), [r, z, n] out; hn = hw_n + b_hn;
    h = n + z (h_prev - n)."""
    B, H = h.shape
    half = xw.dtype.type(0.5)
    for b in range(B):
        xr, hr, hp, hnr, out = xw[b], hw[b], h_prev[b], hn[b], h[b]
        for j in range(2 * H):
            xr[j] = half + half * _tanh(xr[j] + bias[j] + hr[j])
        for j in range(H):
            u = hr[2 * H + j] + b_hn[j]
            hnr[j] = u
            n = _tanh(xr[2 * H + j] + bias[2 * H + j] + xr[j] * u)
            xr[2 * H + j] = n
            out[j] = n + xr[H + j] * (hp[j] - n)


@_jit
def gru_backward(rz: Any, n: Any, hn: Any, h_prev: Any, dh: Any, dy: Any, has_dy: bool,
                 dx: Any, dhw: Any, direct: Any) -> None:
    """dx = dxw and dhw (B, 3H) of one step; direct = dh z, the path h_{t-1} -> h_t."""
    B, H = dh.shape
    one = dh.dtype.type(1.0)
    for b in range(B):
        rzr, nr, hnr, hp, dhr, dxr, dwr, dr = rz[b], n[b], hn[b], h_prev[b], dh[b], dx[b], dhw[b], direct[b]
        for j in range(H):
            r, z, nn = rzr[j], rzr[H + j], nr[j]
            d_h = dhr[j] + dy[b, j] if has_dy else dhr[j]
            da_n = d_h * (one - z) * (one - nn * nn)
            d_r = da_n * hnr[j] * (r * (one - r))
            d_z = d_h * (hp[j] - nn) * (z * (one - z))
            dxr[j] = d_r
            dxr[H + j] = d_z
            dxr[2 * H + j] = da_n
            dwr[j] = d_r
            dwr[H + j] = d_z
            dwr[2 * H + j] = da_n * r
            dr[j] = d_h * z
