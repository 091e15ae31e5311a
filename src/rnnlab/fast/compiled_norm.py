"""The compiled steps of the normalised LSTMs (numba): layer norm and batch norm, the LN-LSTM
and BN-LSTM steps (twins in :mod:`rnnlab.fast.lnlstm` and :mod:`rnnlab.fast.bnlstm`). Part of
the :mod:`rnnlab.fast.compiled` namespace (re-exported there); the gate gradients are the
LSTM's own (:func:`rnnlab.fast.compiled_base.lstm_gate_grads`).
"""
from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .compiled_base import _jit, _tanh, lstm_gate_grads

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
        lstm_gate_grads(ar, c_prev[b], tr, dhr, dcr, dar)
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
        lstm_gate_grads(act[b], c_prev[b], tu[b], dh[b], dcr, da[b])
    _bn_grad_into(da, xh, s_h, gamma_h, coupled, dhw, col1, col2, acc_gh, acc_bh)
