"""Fused kernel for the BN-LSTM time loop (reference: :mod:`rnnlab.cells.bnlstm`, :mod:`rnnlab.cells.norm`).

BN^(t)(v) normalises each feature of step t over the batch (training: that step's batch
statistics, which couple the rows; eval: population slot ``cell.stat_index(t)``)::

    BN(v) = (v - mu) * s,   s = (var + eps)^(-1/2)

Forward: as :mod:`rnnlab.fast.lnlstm`, with batch instead of layer statistics. The input
side is normalised for all T steps at once, in place in XW; the sigmoid halving S is
folded into gamma_x, gamma_h and b (never into W_x, W_h: BN(S v) != S BN(v) with eps)::

    XW  = BN_x(X W_x)                            per step t, every step at once
    xh  = BN_h(h_{t-1} W_h)                      GEMM into xh, statistics, normalise in place
    A   = tanh(XW_t (gamma_x S) + xh (gamma_h S) + b S) * S + (1 - S)   -> [i, f, g, o]
    c_t = f c_{t-1} + i g ;  xc = BN_c(c_t) ;  tu = tanh(gamma_c xc + beta_c) ;  h_t = o tu

In training, the population statistics are then updated from the per-step mu and var with the
reference's own arithmetic (``mean <- (1-m) mean + m mu``, ``var <- (1-m) var + m n/(n-1) var_t``),
slot by slot; steps at or past ``max_steps - 1`` update the last slot in order.

Backward, per step, with BN'(dv) = s (gamma dv - mean_b(gamma dv) - xhat mean_b(gamma dv xhat))
in training and s gamma dv in eval (fixed statistics carry no gradient)::

    dtu = dh o (1 - tu^2) ;  dc = dc_next + BN_c'(dtu) ;  da = gate gradients ;  dc_{t-1} = dc f
    dHW_t = BN_h'(da) ;  dh_{t-1} = dHW_t W_h^T
and per block of steps: dXW_t = BN_x'(da_t); the sums of dtu xc, dtu, da xh, da XW and da give
the gradients of gamma_c, beta_c, gamma_h, gamma_x and b.

Batch statistics couple the rows, so the batch-split loop (:mod:`rnnlab.fast.parallel`) cannot
run this kernel in training: it raises instead of normalising each row block on its own.
Each element-wise function has a compiled twin in :mod:`rnnlab.fast.compiled`.
Variable lengths (``active``): step t runs (and takes statistics over) rows [:n_t] only.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..cells.norm import NormCache, NormLSTMStepCache
from ..errors import ConfigError
from ..workspace import Workspace
from . import accel, lstm
from .lnlstm import _spans, backward_buffers, backward_loop, gate_grads, normed_gates_and_cell

SUPPORTS_ACTIVE = True


def can_split(cell: Any) -> bool:
    """Whether the batch-split loop may run this cell (rows independent): eval mode only; consulted by
    :class:`rnnlab.layers.Recurrent` before it splits a batch over threads."""
    return not cell.training


def preact_scale(H: int, dtype: Any) -> None:
    """No scaling by the loop: the kernel folds the sigmoid halving into gamma_x, gamma_h and b."""
    return None


# -- the NumPy steps ----------------------------------------------------------------------------
def col_stats(x: np.ndarray, eps: float, mu: np.ndarray, var: np.ndarray, s: np.ndarray, tmp: np.ndarray) -> None:
    """Batch statistics of x (B, F): mu, biased var, s = (var + eps)^-1/2 (as ``norm.batch_stats``)."""
    np.mean(x, axis=0, out=mu)
    np.subtract(x, mu, out=tmp)
    np.multiply(tmp, tmp, out=tmp)
    np.mean(tmp, axis=0, out=var)
    np.add(var, eps, out=s)
    np.sqrt(s, out=s)
    np.divide(1.0, s, out=s)


def bn_grad(dy: np.ndarray, xhat: np.ndarray, s: np.ndarray, gamma: np.ndarray, coupled: bool, dx: np.ndarray,
            col1: np.ndarray, col2: np.ndarray, acc_g: np.ndarray, acc_b: np.ndarray, tmp: np.ndarray) -> None:
    """Batch-norm backward of one step (B, F) into dx (may be dy); acc_g += sum dy xhat, acc_b += sum dy."""
    np.sum(dy, axis=0, out=col1)
    np.multiply(dy, xhat, out=tmp)
    np.sum(tmp, axis=0, out=col2)
    acc_b += col1
    acc_g += col2
    np.multiply(dy, gamma, out=tmp)
    if coupled:
        for col in (col1, col2):   # the means of gamma dy and gamma dy xhat over the batch
            col *= gamma
            col /= dy.shape[0]
        tmp -= col1
        np.multiply(xhat, col2, out=dx)
        np.subtract(tmp, dx, out=dx)
        dx *= s
    else:
        np.multiply(tmp, s, out=dx)


def bn_normalize(x: np.ndarray, coupled: bool, eps: float, mu: np.ndarray, var: np.ndarray, s: np.ndarray,
                 *, tmp: np.ndarray) -> None:
    """x (T, B, F) normalised in place step by step; coupled: mu, var, s (T, F) from x, else read
    (compiled twin: ``compiled.bn_normalize``)."""
    for t in range(x.shape[0]):
        if coupled:
            col_stats(x[t], eps, mu[t], var[t], s[t], tmp[:x.shape[1]])
        x[t] -= mu[t]
        x[t] *= s[t]


def bn_backward(dy: np.ndarray, xhat: np.ndarray, s: np.ndarray, gamma: np.ndarray, coupled: bool, dx: np.ndarray,
                col1: np.ndarray, col2: np.ndarray, acc_g: np.ndarray, acc_b: np.ndarray, *, tmp: np.ndarray) -> None:
    """Batch-norm backward of (T, B, F), s (T, F) (compiled twin: ``compiled.bn_backward``)."""
    for t in range(dy.shape[0]):
        bn_grad(dy[t], xhat[t], s[t], gamma, coupled, dx[t], col1, col2, acc_g, acc_b, tmp[:dy.shape[1]])


def forward_step(xhat_x: np.ndarray, xh: np.ndarray, coupled: bool, eps: float, mu_h: np.ndarray,
                 var_h: np.ndarray, s_h: np.ndarray, gx: np.ndarray, gh: np.ndarray, bias: np.ndarray,
                 scale: np.ndarray, shift: np.ndarray, c_prev: np.ndarray, act: np.ndarray, c: np.ndarray,
                 mu_c: np.ndarray, var_c: np.ndarray, s_c: np.ndarray, gamma_c: np.ndarray, beta_c: np.ndarray,
                 xc: np.ndarray, tu: np.ndarray, h: np.ndarray, *, tmp: np.ndarray, tmp_h: np.ndarray) -> None:
    """One step (compiled twin: ``compiled.bnlstm_forward``): xh = BN_h(h W_h) in place (statistics
    computed when coupled, else read), gates in act, c, xc = BN_c(c), tu, h."""
    if coupled:
        col_stats(xh, eps, mu_h, var_h, s_h, tmp)
    xh -= mu_h
    xh *= s_h
    o = normed_gates_and_cell(xhat_x, xh, gx, gh, bias, scale, shift, c_prev, act, c, tmp, tmp_h)
    if coupled:
        col_stats(c, eps, mu_c, var_c, s_c, tmp_h)
    np.subtract(c, mu_c, out=xc)
    xc *= s_c
    np.multiply(xc, gamma_c, out=tu)
    tu += beta_c
    np.tanh(tu, out=tu)
    np.multiply(o, tu, out=h)


def backward_step(act: np.ndarray, c_prev: np.ndarray, tu: np.ndarray, xc: np.ndarray, s_c: np.ndarray,
                  gamma_c: np.ndarray, xh: np.ndarray, s_h: np.ndarray, gamma_h: np.ndarray, coupled: bool,
                  dh: np.ndarray, dy: np.ndarray, has_dy: bool, dc: np.ndarray, da: np.ndarray, dhw: np.ndarray,
                  dtu: np.ndarray, col1: np.ndarray, col2: np.ndarray, acc_gc: np.ndarray, acc_bc: np.ndarray,
                  acc_gh: np.ndarray, acc_bh: np.ndarray, *, tmp: np.ndarray, tmp_h: np.ndarray) -> None:
    """One step back (compiled twin: ``compiled.bnlstm_backward``): da (gates, before BN_x), dhw;
    dc -> dc_{t-1}; dh is spent; acc_gc, acc_bc, acc_gh += this step's gamma_c, beta_c, gamma_h
    gradients (acc_bh: a throwaway sum of da). dtu (B, H), col1, col2 (4H,) scratch."""
    if has_dy:
        dh += dy
    H = dh.shape[1]
    np.multiply(tu, tu, out=dtu)
    np.subtract(1.0, dtu, out=dtu)
    dtu *= act[:, 3 * H:]
    dtu *= dh
    bn_grad(dtu, xc, s_c, gamma_c, coupled, dtu, col1[:H], col2[:H], acc_gc, acc_bc, tmp_h)
    dc += dtu
    gate_grads(act, c_prev, tu, dh, dc, da, tmp)
    bn_grad(da, xh, s_h, gamma_h, coupled, dhw, col1, col2, acc_gh, acc_bh, tmp)


# -- the kernel ---------------------------------------------------------------------------------
def forward(cell: Any, XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray,
            state0: tuple, ws: Workspace, keep: bool = True, active: list | None = None) -> tuple[tuple, list | None]:
    T, B, G = XW.shape
    H, dt, p, eps, coupled = G // 4, hs.dtype, cell.params, cell.eps, cell.training
    if coupled and T and min(active or [B]) < 2:
        raise ConfigError("BN-LSTM in training mode needs a batch of at least 2 (batch statistics of one "
                          "example are degenerate); use eval() for one stream, e.g. when sampling")
    if coupled and not hs.flags.c_contiguous:
        raise RuntimeError("BN-LSTM training cannot run on a batch split over threads (its batch statistics "
                           "couple the rows): set RNNLAB_THREADS=1")
    scale, shift = lstm.preact_scale(H, dt), lstm.preact_shift(H, dt)
    gx = np.multiply(p["gamma_x"], scale, out=ws.empty("gx", (G,), dt))
    gh = np.multiply(p["gamma_h"], scale, out=ws.empty("gh", (G,), dt))
    bias = np.multiply(b, scale, out=ws.empty("b'", (G,), dt))
    # mu, var, s per step: training fills them from the batch, eval from the population slots
    mu_x, var_x, s_x = ws.empty("stats_x", (3, T, G), dt)
    mu_h, var_h, s_h = ws.empty("stats_h", (3, T, G), dt)
    mu_c, var_c, s_c = ws.empty("stats_c", (3, T, H), dt)
    if not coupled:
        slots = [cell.stat_index(t) for t in range(T)]
        for key, mu, var, s in (("x", mu_x, var_x, s_x), ("h", mu_h, var_h, s_h), ("c", mu_c, var_c, s_c)):
            np.take(cell.buffers[f"mean_{key}"], slots, axis=0, out=mu)
            np.take(cell.buffers[f"var_{key}"], slots, axis=0, out=var)
            np.add(var, eps, out=s)
            np.sqrt(s, out=s)
            np.divide(1.0, s, out=s)
    compiled = accel.steps(dt)
    tmp, tmp_h = ws.empty("tmp", (B, G), dt), ws.empty("tmp_h", (B, H), dt)
    for t0, t1, n in _spans(T, B, active):          # BN of the input side, every step at once
        args = (XW[t0:t1, :n], coupled, eps, mu_x[t0:t1], var_x[t0:t1], s_x[t0:t1])
        if compiled is not None:
            compiled.bn_normalize(*args)
        else:
            bn_normalize(*args, tmp=tmp)
    K = T if keep else 1    # keep=False (no_grad): one step's intermediates, reused
    act, xh = ws.empty("act", (K, B, G), dt), ws.empty("xh", (K, B, G), dt)
    xc, tu = ws.empty("xc", (K, B, H), dt), ws.empty("tu", (K, B, H), dt)
    cs = ws.empty("c", hs.shape, dt) if keep else ws.empty("c2", (2, B, H), dt)
    cs[0] = state0[1]
    for t in range(T):
        n = B if active is None else active[t]
        k, c_prev, c = (t, cs[t], cs[t + 1]) if keep else (0, cs[t % 2], cs[(t + 1) % 2])
        np.matmul(hs[t, :n], W_h, out=xh[k, :n])
        args = (XW[t, :n], xh[k, :n], coupled, eps, mu_h[t], var_h[t], s_h[t], gx, gh, bias, scale, shift,
                c_prev[:n], act[k, :n], c[:n], mu_c[t], var_c[t], s_c[t], p["gamma_c"], p["beta_c"], xc[k, :n],
                tu[k, :n], hs[t + 1, :n])
        if compiled is not None:
            compiled.bnlstm_forward(*args)
        else:
            forward_step(*args, tmp=tmp[:n], tmp_h=tmp_h[:n])
        if n < B:   # finished rows: the state carries over unchanged
            hs[t + 1, n:] = hs[t, n:]
            c[n:] = c_prev[n:]
    if coupled:
        rows = [B] * T if active is None else list(active)
        for key, mu, var in (("x", mu_x, var_x), ("h", mu_h, var_h), ("c", mu_c, var_c)):
            update_population(cell, key, mu, var, rows)
    if not keep:
        return (hs[T].copy(), cs[T % 2].copy()), None
    steps = []
    for t in range(T):
        n = B if active is None else active[t]
        steps.append(NormLSTMStepCache(act[t, :n], cs[t, :n], tu[t, :n], NormCache(XW[t, :n], s_x[t], coupled),
                                       NormCache(xh[t, :n], s_h[t], coupled), NormCache(xc[t, :n], s_c[t], coupled)))
    return (hs[T].copy(), cs[T].copy()), steps


def update_population(cell: Any, key: str, mu: np.ndarray, var: np.ndarray, rows: list[int]) -> None:
    """The reference's update (``BNLSTMCell._update_population``) for steps 0..T-1: the leading
    steps with their own slot and the same batch size at once (the same arithmetic, element by
    element), the rest one step at a time through the reference's own method."""
    T, m = len(rows), cell.momentum
    L = 0
    while L < min(T, cell.max_steps - 1) and rows[L] == rows[0]:
        L += 1
    if L:
        n = rows[0]
        mean_buf, var_buf = cell.buffers[f"mean_{key}"][:L], cell.buffers[f"var_{key}"][:L]
        mean_buf *= 1.0 - m
        mean_buf += m * mu[:L]
        var_buf *= 1.0 - m
        var_buf += (m * n / (n - 1)) * var[:L]
        trained = cell.buffers["trained_steps"]
        trained[0] = max(trained[0], L)
    for t in range(L, T):
        cell._update_population(key, t, mu[t], var[t], rows[t])


def backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
             chunk: int, ws: Workspace, active: list | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(t0, t1, dXW, dHW)`` for blocks of ``chunk`` steps, last block first; accumulates
    the gradients of b, gamma_x, gamma_h, gamma_c and beta_c; leaves (dh_0, dc_0) in ``dstate``."""
    T, (B, H) = len(steps), dstate[0].shape
    G, dt, p = 4 * H, dstate[0].dtype, cell.params
    W_hT, dXW, dHW, acc = backward_buffers(W_h, T, B, H, chunk, ws, dt)
    acc_gx, acc_b, acc_gh, acc_gc, acc_bc = acc[0], acc[1], acc[2], acc[3, :H], acc[3, H:2 * H]
    spare = ws.empty("spare", (3, G), dt)    # col1, col2 scratch and the throwaway sum of da
    col1, col2, acc_bh = spare
    acc_bh.fill(0)    # thrown away, but workspace garbage (NaN, inf) would raise NumPy's invalid-value warnings
    dtu = ws.empty("dtu", (B, H), dt)
    compiled = accel.steps(dt)
    tmp, tmp_h = (None, None) if compiled is not None else (ws.empty("tmp", (B, G), dt), ws.empty("tmp_h", (B, H), dt))

    def step(st: Any, dy: np.ndarray, dh_n: np.ndarray, dc_n: np.ndarray, da: np.ndarray, dhw: np.ndarray,
             n: int) -> None:
        args = (st.gates, st.c_prev, st.tanh_u, st.norm_c.xhat, st.norm_c.inv_std, p["gamma_c"], st.norm_h.xhat,
                st.norm_h.inv_std, p["gamma_h"], st.norm_h.coupled, dh_n, dy, dyt is not None, dc_n, da, dhw,
                dtu[:n], col1, col2, acc_gc, acc_bc, acc_gh, acc_bh)
        if compiled is not None:
            compiled.bnlstm_backward(*args)
        else:
            backward_step(*args, tmp=tmp[:n], tmp_h=tmp_h[:n])

    def norm_x(nx: NormCache, block: np.ndarray) -> None:   # BN_x backward, in place in dXW
        args = (block, nx.xhat[None], nx.inv_std[None], p["gamma_x"], nx.coupled, block, col1, col2, acc_gx, acc_b)
        if compiled is not None:
            compiled.bn_backward(*args)
        else:
            bn_backward(*args, tmp=tmp)

    yield from backward_loop(cell, dyt, dstate, steps, W_hT, dXW, dHW, acc, chunk, active, step, norm_x)
