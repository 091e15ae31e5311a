"""The compiled element-wise steps (numba): loaded by :mod:`rnnlab.fast.accel` on first use.

Each function is the twin of a NumPy function named in its docstring: a kernel
step of :mod:`rnnlab.fast.lstm`, :mod:`~rnnlab.fast.gru`, :mod:`~rnnlab.fast.rnn`,
:mod:`~rnnlab.fast.lnlstm` or :mod:`~rnnlab.fast.bnlstm`, a token lookup of
:mod:`rnnlab.layers.tokens`, or the Adam update; for float32 and float64 alike.
``tests/fast/test_accel.py``, ``tests/fast/test_accel_more.py``, ``tests/fast/test_lstm_infer.py``
(the forward-only LSTM steps of :mod:`rnnlab.fast.lstm_infer`) and
``tests/layers/test_tokens.py`` assert that each pair agrees. See :mod:`rnnlab.fast.accel` for why and for the numerics.
"""
from __future__ import annotations

import math
from typing import Any

from .compiled_base import _jit, _tanh, lstm_gate_grads, tanh_into  # noqa: F401


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
        ar, tr, dhr, dcr = act[b], tc[b], dh[b], dc[b]
        o = ar[3 * H:]
        if has_dy:
            dyr = dy[b]
            for j in range(H):
                dhr[j] += dyr[j]
        for j in range(H):
            dcr[j] += dhr[j] * o[j] * (one - tr[j] * tr[j])
        lstm_gate_grads(ar, c_prev[b], tr, dhr, dcr, da[b])


@_jit
def _lstm_infer_row(xr: Any, ar: Any, bias: Any, scale: Any, shift: Any, cr: Any, out: Any) -> None:
    H = cr.shape[0]
    for j in range(4 * H):
        ar[j] = _tanh(xr[j] + ar[j] + bias[j]) * scale[j] + shift[j]
    for j in range(H):
        cr[j] = ar[H + j] * cr[j] + ar[j] * ar[2 * H + j]
    for j in range(H):
        out[j] = ar[3 * H + j] * _tanh(cr[j])


@_jit
def lstm_infer(xw: Any, hw: Any, bias: Any, scale: Any, shift: Any, c: Any, h: Any) -> None:
    """Forward-only step (twin of ``rnnlab.fast.lstm_infer.infer_step``): hw (B, 4H) holds
    h_{t-1} W_h' in and the gates out, from xw (B, 4H, read only) and bias; c (B, H) becomes
    c_t in place; h = o tanh(c). lstm_forward's arithmetic, without tanh(c) kept and with one
    output per loop (a probe at B = 64, float32: 1.2-1.6x faster than lstm_forward, H = 128-512)."""
    for b in range(hw.shape[0]):
        _lstm_infer_row(xw[b], hw[b], bias, scale, shift, c[b], h[b])


@_jit
def lstm_infer_rows(table: Any, ids: Any, hw: Any, bias: Any, scale: Any, shift: Any, c: Any, h: Any) -> None:
    """:func:`lstm_infer` with xw[b] = table[ids[b]] read in place (twin: ``lstm_infer.infer_step`` on
    the gathered rows). No bounds checks: the ids were checked where the Tokens were made."""
    for b in range(hw.shape[0]):
        _lstm_infer_row(table[ids[b]], hw[b], bias, scale, shift, c[b], h[b])


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


# -- Elman RNN / IRNN (twins in rnnlab.fast.rnn) --------------------------------------------------
@_jit
def rnn_forward(h: Any, xw: Any, bias: Any, relu: bool) -> None:
    """h (B, H) holds h_{t-1} W_h in and h_t = phi(xw + bias + h) out; phi = relu or tanh
    (relu written so that NaN passes through, as np.maximum does; twin: ``rnn.forward_step``)."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    for b in range(B):
        hr, xr = h[b], xw[b]
        if relu:
            for j in range(H):
                v = xr[j] + bias[j] + hr[j]
                hr[j] = zero if v < zero else v
        else:
            for j in range(H):
                hr[j] = _tanh(xr[j] + bias[j] + hr[j])


@_jit
def rnn_backward(h: Any, dh: Any, dy: Any, has_dy: bool, relu: bool, da: Any) -> None:
    """da = (dh + dy) phi'(a) from the step's output h: 1 - h^2 (tanh) or [h > 0] (relu)
    (twin: ``rnn.backward_step``)."""
    B, H = h.shape
    one, zero = h.dtype.type(1.0), h.dtype.type(0.0)
    for b in range(B):
        hr, dhr, dar = h[b], dh[b], da[b]
        if has_dy:
            dyr = dy[b]
            for j in range(H):
                dhr[j] += dyr[j]
        if relu:
            for j in range(H):
                dar[j] = dhr[j] * (one if hr[j] > zero else zero)
        else:
            for j in range(H):
                dar[j] = dhr[j] * (one - hr[j] * hr[j])


from .compiled_norm import (  # noqa: E402,F401  (the normalised LSTMs' steps, same namespace)
    bn_backward, bn_normalize, bnlstm_backward, bnlstm_forward, ln_backward, ln_rows, lnlstm_backward, lnlstm_forward)
