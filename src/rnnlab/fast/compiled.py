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


# -- normalised LSTMs (twins in rnnlab.fast.lnlstm and rnnlab.fast.bnlstm) -----------------------
# Row sums may be reassociated (so that they vectorise); reassoc never turns NaN or inf finite.
_jit_sum = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract", "reassoc"})


@_jit_sum
def _sum(u: Any) -> Any:
    acc = u.dtype.type(0.0)
    for j in range(u.shape[0]):
        acc += u[j]
    return acc


@_jit_sum
def _dot(u: Any, v: Any) -> Any:
    acc = u.dtype.type(0.0)
    for j in range(u.shape[0]):
        acc += u[j] * v[j]
    return acc


@_jit_sum
def _dot3(u: Any, v: Any, w: Any) -> Any:
    acc = u.dtype.type(0.0)
    for j in range(u.shape[0]):
        acc += u[j] * v[j] * w[j]
    return acc


@_jit
def _ln_row(r: Any, groups: int, eps: float, s: Any) -> None:
    """Row r (F,) normalised in place per group of F/groups features; s (groups,) = (var + eps)^-1/2."""
    n = r.shape[0] // groups
    ty = r.dtype.type
    for k in range(groups):
        seg = r[k * n:(k + 1) * n]
        mu = _sum(seg) / ty(n)
        for j in range(n):
            seg[j] -= mu
        sk = ty(1.0) / np.sqrt(_dot(seg, seg) / ty(n) + ty(eps))
        s[k] = sk
        for j in range(n):
            seg[j] *= sk


@_jit
def _ln_row_backward(dy: Any, xhat: Any, s: Any, gamma: Any, groups: int, dx: Any) -> None:
    """dx = s (gamma dy - mean(gamma dy) - xhat mean(gamma dy xhat)) per group (dx may be dy)."""
    n = dy.shape[0] // groups
    ty = dy.dtype.type
    for k in range(groups):
        # Slices indexed from 0, not offsets into the row: an offset index (j in range(lo, hi))
        # kept this loop from vectorising (measured 6x slower).
        g, d, x, out = gamma[k * n:(k + 1) * n], dy[k * n:(k + 1) * n], xhat[k * n:(k + 1) * n], dx[k * n:(k + 1) * n]
        m1 = _dot(g, d) / ty(n)
        m2 = _dot3(g, d, x) / ty(n)
        sk = s[k]
        for j in range(n):
            out[j] = sk * (g[j] * d[j] - m1 - x[j] * m2)


@_jit
def ln_rows(x: Any, groups: int, eps: float, s: Any) -> None:
    """x (T, B, F) layer-normalised in place, each row per group; s (T, B, groups). (twin: ``lnlstm.ln_rows``)"""
    T, B = x.shape[0], x.shape[1]
    for t in range(T):
        for b in range(B):
            _ln_row(x[t, b], groups, eps, s[t, b])


@_jit
def ln_backward(dy: Any, xhat: Any, s: Any, gamma: Any, groups: int, dx: Any, acc_g: Any, acc_b: Any) -> None:
    """Layer-norm backward of (T, B, F) rows into dx (may be dy); acc_g += sum dy xhat,
    acc_b += sum dy (twin: ``lnlstm.ln_backward``)."""
    T, B, F = dy.shape
    for t in range(T):
        for b in range(B):
            dyr, xr = dy[t, b], xhat[t, b]
            for j in range(F):
                acc_g[j] += dyr[j] * xr[j]
            for j in range(F):
                acc_b[j] += dyr[j]
            _ln_row_backward(dyr, xr, s[t, b], gamma, groups, dx[t, b])


@_jit
def lnlstm_forward(xhat_x: Any, xh: Any, groups: int, eps: float, gx: Any, gh: Any, bias: Any, scale: Any,
                   shift: Any, c_prev: Any, gamma_c: Any, beta_c: Any, act: Any, s_h: Any, c: Any, xc: Any,
                   s_c: Any, tu: Any, h: Any) -> None:
    """One LN-LSTM step: xh (B, 4H) = h W_h in, its LN out (s_h (B, groups)); gates into act from
    xhat_x gx + xh gh + bias (all scaled: tanh then scale, shift); c; xc = LN(c) (s_c (B, 1));
    tu = tanh(gamma_c xc + beta_c); h = o tu. (twin: ``lnlstm.forward_step``)"""
    B, G = act.shape
    H = G // 4
    for b in range(B):
        xr, hr, ar = xhat_x[b], xh[b], act[b]
        _ln_row(hr, groups, eps, s_h[b])
        for j in range(G):
            ar[j] = _tanh(xr[j] * gx[j] + hr[j] * gh[j] + bias[j]) * scale[j] + shift[j]
        i, f, g, o = ar[:H], ar[H:2 * H], ar[2 * H:3 * H], ar[3 * H:]
        cp, cr, xcr = c_prev[b], c[b], xc[b]
        for j in range(H):
            cr[j] = f[j] * cp[j] + i[j] * g[j]
        for j in range(H):
            xcr[j] = cr[j]
        _ln_row(xcr, 1, eps, s_c[b])
        tr, out = tu[b], h[b]
        for j in range(H):
            tr[j] = _tanh(xcr[j] * gamma_c[j] + beta_c[j])
        for j in range(H):
            out[j] = o[j] * tr[j]


@_jit
def _norm_lstm_gate_grads(ar: Any, cp: Any, tr: Any, dhr: Any, dcr: Any, dar: Any) -> None:
    """da (4H,) of one row from dc (already through N_c and the carry) and do = dh tu; dc *= f."""
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


@_jit
def lnlstm_backward(act: Any, c_prev: Any, tu: Any, xc: Any, s_c: Any, gamma_c: Any, xh: Any, s_h: Any,
                    gamma_h: Any, groups: int, dh: Any, dy: Any, has_dy: bool, dc: Any, da: Any, dhw: Any,
                    acc_gc: Any, acc_bc: Any, acc_gh: Any) -> None:
    """One LN-LSTM step back: da = dxw (before LN_x), dhw; dc becomes dc_{t-1}; dh is spent;
    acc_gc, acc_bc, acc_gh += the step's gamma_c, beta_c, gamma_h gradients. (twin: ``lnlstm.backward_step``)"""
    B, H = dh.shape
    one = dh.dtype.type(1.0)
    for b in range(B):
        ar, dhr, dcr, dar, tr, xcr, xhr = act[b], dh[b], dc[b], da[b], tu[b], xc[b], xh[b]
        if has_dy:
            dyr = dy[b]
            for j in range(H):
                dhr[j] += dyr[j]
        dtu, o = dhw[b, :H], ar[3 * H:]   # dtu: scratch, the row of dhw is written last
        for j in range(H):
            dtu[j] = dhr[j] * o[j] * (one - tr[j] * tr[j])
        for j in range(H):
            acc_gc[j] += dtu[j] * xcr[j]
        for j in range(H):
            acc_bc[j] += dtu[j]
        _ln_row_backward(dtu, xcr, s_c[b], gamma_c, 1, dtu)
        for j in range(H):
            dcr[j] += dtu[j]
        _norm_lstm_gate_grads(ar, c_prev[b], tr, dhr, dcr, dar)
        for j in range(4 * H):
            acc_gh[j] += dar[j] * xhr[j]
        _ln_row_backward(dar, xhr, s_h[b], gamma_h, groups, dhw[b])


@_jit
def _col_stats(x: Any, eps: float, mu: Any, var: Any, s: Any) -> None:
    """Batch statistics of x (B, F): mu, biased var and s = (var + eps)^-1/2 per feature."""
    B, F = x.shape
    ty = x.dtype.type
    for j in range(F):
        mu[j] = ty(0.0)
    for b in range(B):
        xr = x[b]
        for j in range(F):
            mu[j] += xr[j]
    for j in range(F):
        mu[j] /= ty(B)
    for j in range(F):
        var[j] = ty(0.0)
    for b in range(B):
        xr = x[b]
        for j in range(F):
            d = xr[j] - mu[j]
            var[j] += d * d
    for j in range(F):
        var[j] /= ty(B)
        s[j] = ty(1.0) / np.sqrt(var[j] + ty(eps))


@_jit
def bn_normalize(x: Any, coupled: bool, eps: float, mu: Any, var: Any, s: Any) -> None:
    """x (T, B, F) batch-normalised in place per step; coupled: mu, var, s (T, F) are computed
    from x (training), else read (population statistics, s given). (twin: ``bnlstm.bn_normalize``)"""
    T, B, F = x.shape
    for t in range(T):
        if coupled:
            _col_stats(x[t], eps, mu[t], var[t], s[t])
        m, st = mu[t], s[t]
        for b in range(B):
            xr = x[t, b]
            for j in range(F):
                xr[j] = (xr[j] - m[j]) * st[j]


@_jit
def _bn_grad_into(dy: Any, xhat: Any, s: Any, gamma: Any, coupled: bool, dx: Any, col1: Any, col2: Any,
                  acc_g: Any, acc_b: Any) -> None:
    """Batch-norm backward of one step (B, F) into dx (may be dy); col1, col2 (F,) scratch."""
    B, F = dy.shape
    ty = dy.dtype.type
    for j in range(F):
        col1[j] = ty(0.0)
        col2[j] = ty(0.0)
    for b in range(B):
        dyr, xr = dy[b], xhat[b]
        for j in range(F):
            col1[j] += dyr[j]
        for j in range(F):
            col2[j] += dyr[j] * xr[j]
    for j in range(F):
        acc_b[j] += col1[j]
        acc_g[j] += col2[j]
        if coupled:
            col1[j] = gamma[j] * col1[j] / ty(B)
            col2[j] = gamma[j] * col2[j] / ty(B)
        else:
            col1[j] = ty(0.0)
            col2[j] = ty(0.0)
    for b in range(B):
        dyr, xr, out = dy[b], xhat[b], dx[b]
        for j in range(F):
            out[j] = s[j] * (gamma[j] * dyr[j] - col1[j] - xr[j] * col2[j])


@_jit
def bn_backward(dy: Any, xhat: Any, s: Any, gamma: Any, coupled: bool, dx: Any, col1: Any, col2: Any,
                acc_g: Any, acc_b: Any) -> None:
    """Batch-norm backward of (T, B, F), step by step (s (T, F)), into dx (may be dy);
    acc_g += sum dy xhat, acc_b += sum dy. (twin: ``bnlstm.bn_backward``)"""
    for t in range(dy.shape[0]):
        _bn_grad_into(dy[t], xhat[t], s[t], gamma, coupled, dx[t], col1, col2, acc_g, acc_b)


@_jit
def bnlstm_forward(xhat_x: Any, xh: Any, coupled: bool, eps: float, mu_h: Any, var_h: Any, s_h: Any, gx: Any,
                   gh: Any, bias: Any, scale: Any, shift: Any, c_prev: Any, act: Any, c: Any, mu_c: Any,
                   var_c: Any, s_c: Any, gamma_c: Any, beta_c: Any, xc: Any, tu: Any, h: Any) -> None:
    """One BN-LSTM step: xh (B, 4H) = h W_h in, BN_h(.) out (statistics computed when coupled,
    else read); gates into act; c; xc = BN_c(c); tu = tanh(gamma_c xc + beta_c); h = o tu
    (twin: ``bnlstm.forward_step``)."""
    B, G = act.shape
    H = G // 4
    if coupled:
        _col_stats(xh, eps, mu_h, var_h, s_h)
    for b in range(B):
        xr, hr, ar = xhat_x[b], xh[b], act[b]
        for j in range(G):
            hr[j] = (hr[j] - mu_h[j]) * s_h[j]
        for j in range(G):
            ar[j] = _tanh(xr[j] * gx[j] + hr[j] * gh[j] + bias[j]) * scale[j] + shift[j]
        i, f, g = ar[:H], ar[H:2 * H], ar[2 * H:3 * H]
        cp, cr = c_prev[b], c[b]
        for j in range(H):
            cr[j] = f[j] * cp[j] + i[j] * g[j]
    if coupled:
        _col_stats(c, eps, mu_c, var_c, s_c)
    for b in range(B):
        o, cr, xcr, tr, out = act[b, 3 * H:], c[b], xc[b], tu[b], h[b]
        for j in range(H):
            xcr[j] = (cr[j] - mu_c[j]) * s_c[j]
        for j in range(H):
            tr[j] = _tanh(xcr[j] * gamma_c[j] + beta_c[j])
        for j in range(H):
            out[j] = o[j] * tr[j]


@_jit
def bnlstm_backward(act: Any, c_prev: Any, tu: Any, xc: Any, s_c: Any, gamma_c: Any, xh: Any, s_h: Any,
                    gamma_h: Any, coupled: bool, dh: Any, dy: Any, has_dy: bool, dc: Any, da: Any, dhw: Any,
                    dtu: Any, col1: Any, col2: Any, acc_gc: Any, acc_bc: Any, acc_gh: Any, acc_bh: Any) -> None:
    """One BN-LSTM step back: da (gates, before BN_x), dhw; dc becomes dc_{t-1}; dh is spent;
    dtu (B, H), col1, col2 (4H,) scratch; acc_* += the step's gamma_c, beta_c, gamma_h gradients
    (acc_bh: a throwaway sum of da). (twin: ``bnlstm.backward_step``)"""
    B, H = dh.shape
    one = dh.dtype.type(1.0)
    for b in range(B):
        dhr, o, tr, dtr = dh[b], act[b, 3 * H:], tu[b], dtu[b]
        if has_dy:
            dyr = dy[b]
            for j in range(H):
                dhr[j] += dyr[j]
        for j in range(H):
            dtr[j] = dhr[j] * o[j] * (one - tr[j] * tr[j])
    _bn_grad_into(dtu, xc, s_c, gamma_c, coupled, dtu, col1[:H], col2[:H], acc_gc, acc_bc)
    for b in range(B):
        dcr, dtr = dc[b], dtu[b]
        for j in range(H):
            dcr[j] += dtr[j]
        _norm_lstm_gate_grads(act[b], c_prev[b], tu[b], dh[b], dcr, da[b])
    _bn_grad_into(da, xh, s_h, gamma_h, coupled, dhw, col1, col2, acc_gh, acc_bh)
