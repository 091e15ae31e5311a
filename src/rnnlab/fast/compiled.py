"""The compiled element-wise steps (numba): loaded by :mod:`rnnlab.fast.accel` on first use.

Each function is the twin of a NumPy function named in its docstring: a kernel
step of :mod:`rnnlab.fast.lstm` or :mod:`rnnlab.fast.gru`, a token lookup of
:mod:`rnnlab.layers.tokens`, or the Adam update; for float32 and float64 alike.
``tests/fast/test_accel.py`` and ``tests/layers/test_tokens.py`` assert that each
pair agrees. See :mod:`rnnlab.fast.accel` for why and for the numerics.
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
    """da (B, 4H) from the gates, dh_t (+ dy_t, added into dh) and dc_t; dc becomes dc_{t-1} in place."""
    B, H = dh.shape
    one = act.dtype.type(1.0)
    for b in range(B):
        # One loop per output: a loop that writes several arrays needs more runtime alias
        # checks than LLVM will emit, and then runs scalar (measured 2.5x slower).
        ar, cp, tr, dhr, dcr, dar = act[b], c_prev[b], tc[b], dh[b], dc[b], da[b]
        i, f, g, o = ar[:H], ar[H:2 * H], ar[2 * H:3 * H], ar[3 * H:]
        da_i, da_f, da_g, da_o = dar[:H], dar[H:2 * H], dar[2 * H:3 * H], dar[3 * H:]
        if has_dy:
            dyr = dy[b]
            for j in range(H):
                dhr[j] += dyr[j]
        for j in range(H):
            dcr[j] += dhr[j] * o[j] * (one - tr[j] * tr[j])
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
def gru_backward(gates: Any, hn: Any, h_prev: Any, dh: Any, dy: Any, has_dy: bool,
                 dx: Any, dhw: Any, direct: Any) -> None:
    """dx = dxw and dhw (B, 3H) of one step from its gates [r, z, n] (B, 3H) and dh_t
    (+ dy_t, added into dh); direct = dh z, the path h_{t-1} -> h_t."""
    B, H = dh.shape
    one = dh.dtype.type(1.0)
    for b in range(B):
        # One loop per output, as in lstm_backward; whole C-contiguous rows, sliced here,
        # so that every operand has unit stride (a strided view would not vectorise).
        gr, hnr, hp, dhr, dxr, dwr, dr = gates[b], hn[b], h_prev[b], dh[b], dx[b], dhw[b], direct[b]
        r, z, n = gr[:H], gr[H:2 * H], gr[2 * H:]
        dx_r, dx_z, da_n = dxr[:H], dxr[H:2 * H], dxr[2 * H:]
        dw_r, dw_z, dw_n = dwr[:H], dwr[H:2 * H], dwr[2 * H:]
        if has_dy:
            dyr = dy[b]
            for j in range(H):
                dhr[j] += dyr[j]
        for j in range(H):
            da_n[j] = dhr[j] * (one - z[j]) * (one - n[j] * n[j])
        for j in range(H):
            dx_r[j] = da_n[j] * hnr[j] * (r[j] * (one - r[j]))
        for j in range(H):
            dx_z[j] = dhr[j] * (hp[j] - n[j]) * (z[j] * (one - z[j]))
        for j in range(H):
            dw_r[j] = dx_r[j]
        for j in range(H):
            dw_z[j] = dx_z[j]
        for j in range(H):
            dw_n[j] = da_n[j] * r[j]
        for j in range(H):
            dr[j] = dhr[j] * z[j]


@_jit
def segment_add(ids: Any, rows: Any, out: Any) -> None:
    """out[v] += sum of rows[k] with ids[k] == v (twin of ``rnnlab.layers.tokens.segment_add``):
    one pass over the rows, in order, while out (V, G) stays in cache. No bounds checks: the
    ids were checked against the vocabulary where the Tokens were made (Embedding.tokens)."""
    G = out.shape[1]
    for k in range(ids.shape[0]):
        o, r = out[ids[k]], rows[k]
        for j in range(G):
            o[j] += r[j]


@_jit
def gather_rows(table: Any, ids: Any, out: Any) -> None:
    """out[t, b] = table[ids[t, b]] (twin of ``np.take(table, ids, axis=0, out=out)``), 5x
    faster than it for (4096, 512) float32 rows; ids checked by the caller, as for segment_add."""
    T, B = ids.shape
    for t in range(T):
        for b in range(B):
            o, r = out[t, b], table[ids[t, b]]
            for j in range(r.shape[0]):
                o[j] = r[j]


@_jit
def adam_update(param: Any, grad: Any, m: Any, v: Any, lr: float, beta1: float, beta2: float, eps: float,
                weight_decay: float, decoupled: bool, step: int) -> None:
    """One Adam/AdamW update of flat (1-D) arrays in one pass (twin of ``rnnlab.optim.Adam._update``
    without AMSGrad), in the parameter's precision, with the same order of operations."""
    ty = param.dtype.type
    b1, b2, c1, c2 = ty(beta1), ty(beta2), ty(1.0 - beta1), ty(1.0 - beta2)
    wd, shrink = ty(weight_decay), ty(1.0 - lr * weight_decay)
    root2, epsilon = ty(math.sqrt(1.0 - beta2 ** step)), ty(eps)
    step_size = ty(lr / (1.0 - beta1 ** step))
    for k in range(param.shape[0]):
        p, d = param[k], grad[k]
        if decoupled:
            p = p * shrink
        elif weight_decay != 0.0:
            d = p * wd + d
        mk = m[k] * b1 + d * c1
        vk = v[k] * b2 + (d * d) * c2
        m[k] = mk
        v[k] = vk
        param[k] = p - mk / (math.sqrt(vk) / root2 + epsilon) * step_size
