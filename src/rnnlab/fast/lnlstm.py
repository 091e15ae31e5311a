"""Fused kernel for the LN-LSTM time loop (reference: :mod:`rnnlab.cells.lnlstm`, :mod:`rnnlab.cells.norm`).

LN(v) normalises each row of v over groups of features (4 gate blocks of H, or one of
4H with ``per_gate=False``; the cell state is one group of H)::

    LN(v) = (v - mu) * s,   mu, var over the group,   s = (var + eps)^(-1/2)

Forward. The input side does not depend on the recurrence, so it is normalised for
all T steps at once, in place in XW; each step is then one GEMM and one element-wise
call. With S = 1/2 on the i, f, o columns and 1 on g (sigmoid(a) = 0.5 + 0.5 tanh(a/2),
as in :mod:`rnnlab.fast.lstm`), folded into gamma_x, gamma_h and b once per sequence
(exact: powers of two; W_x and W_h stay as they are, since LN(S v) != S LN(v) with eps)::

    XW  = LN(X W_x)                              all steps, in place
    xh  = LN(h_{t-1} W_h)                        GEMM into xh, then LN in place
    A   = tanh(XW_t (gamma_x S) + xh (gamma_h S) + b S) * S + (1 - S)   -> [i, f, g, o]
    c_t = f c_{t-1} + i g ;  xc = LN(c_t) ;  tu = tanh(gamma_c xc + beta_c) ;  h_t = o tu

Backward, per step (section 13.6 of docs/derivations.md), with LN'(dv) = s (dv - mean(dv) -
xhat mean(dv xhat)) over each group::

    dtu = dh o (1 - tu^2) ;  dc = dc_next + LN_c'(gamma_c dtu)
    da  = gate gradients (as the LSTM's) ;  dc_{t-1} = dc f
    dHW_t = LN_h'(gamma_h da) ;  dh_{t-1} = dHW_t W_h^T
    dgamma_c += sum dtu xc,  dbeta_c += sum dtu,  dgamma_h += sum da xh
and per block of steps, all rows at once: dXW = LN_x'(gamma_x da), dgamma_x += sum da XW, db += sum da.

Each element-wise function has a compiled twin in :mod:`rnnlab.fast.compiled` (same name,
``lnlstm_`` prefix for the steps), used when numba is installed (:mod:`rnnlab.fast.accel`).
Variable lengths (``active``): step t runs rows [:n_t] only; rows [n_t:] copy h, c forward,
and in backward get dXW = dHW = 0 and keep dh, dc.
"""
from __future__ import annotations

import threading
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np

from ..cells.norm import NormCache, NormLSTMStepCache
from ..workspace import Workspace
from . import accel, lstm

SUPPORTS_ACTIVE = True
_grads_lock = threading.Lock()   # a batch split over threads adds its gamma/beta/b gradients one block at a time


def preact_scale(H: int, dtype: Any) -> None:
    """No scaling by the loop: the kernel folds the sigmoid halving into gamma_x, gamma_h and b."""
    return None


# -- the NumPy steps ----------------------------------------------------------------------------
def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """A view (..., groups, F / groups) of ``a`` (..., F), never a copy."""
    return np.reshape(a, a.shape[:-1] + (groups, a.shape[-1] // groups), copy=False)


def layer_norm_(x: np.ndarray, groups: int, eps: float, s: np.ndarray, tmp: np.ndarray) -> None:
    """x (..., F) normalised in place per group; s (..., groups) = (var + eps)^-1/2; tmp like x."""
    xg, tg, sg = _grouped(x, groups), _grouped(tmp, groups), s[..., None]
    np.mean(xg, axis=-1, keepdims=True, out=sg)
    xg -= sg
    np.multiply(xg, xg, out=tg)
    np.mean(tg, axis=-1, keepdims=True, out=sg)
    sg += eps
    np.sqrt(sg, out=sg)
    np.divide(1.0, sg, out=sg)
    xg *= sg


def layer_norm_grad(dy: np.ndarray, xhat: np.ndarray, s: np.ndarray, gamma: np.ndarray, groups: int,
                    dx: np.ndarray, tmp: np.ndarray, m: np.ndarray) -> None:
    """dx = s (g - mean(g) - xhat mean(g xhat)), g = gamma dy, per group (dx may be dy); tmp like
    dy, m (..., groups, 2) scratch."""
    np.multiply(dy, gamma, out=tmp)
    tg, xg, dxg = _grouped(tmp, groups), _grouped(xhat, groups), _grouped(dx, groups)
    m1, m2 = m[..., 0:1], m[..., 1:2]
    np.mean(tg, axis=-1, keepdims=True, out=m1)
    np.multiply(tg, xg, out=dxg)
    np.mean(dxg, axis=-1, keepdims=True, out=m2)
    np.subtract(tg, m1, out=dxg)
    np.multiply(xg, m2, out=tg)
    dxg -= tg
    dxg *= s[..., None]


def ln_rows(x: np.ndarray, groups: int, eps: float, s: np.ndarray, *, tmp: np.ndarray) -> None:
    """x (T, B, F) layer-normalised in place, s (T, B, groups) (compiled twin: ``compiled.ln_rows``)."""
    for t in range(x.shape[0]):
        layer_norm_(x[t], groups, eps, s[t], tmp[:x.shape[1]])


def ln_backward(dy: np.ndarray, xhat: np.ndarray, s: np.ndarray, gamma: np.ndarray, groups: int, dx: np.ndarray,
                acc_g: np.ndarray, acc_b: np.ndarray, *, tmp: np.ndarray, m: np.ndarray, col: np.ndarray) -> None:
    """Layer-norm backward of (T, B, F) into dx (may be dy), acc_g += sum dy xhat, acc_b += sum dy
    (compiled twin: ``compiled.ln_backward``)."""
    for t in range(dy.shape[0]):
        n = dy.shape[1]
        np.sum(dy[t], axis=0, out=col)
        acc_b += col
        np.multiply(dy[t], xhat[t], out=tmp[:n])
        np.sum(tmp[:n], axis=0, out=col)
        acc_g += col
        layer_norm_grad(dy[t], xhat[t], s[t], gamma, groups, dx[t], tmp[:n], m[:n])


def normed_gates_and_cell(xhat_x: np.ndarray, xh: np.ndarray, gx: np.ndarray, gh: np.ndarray, bias: np.ndarray,
                          scale: np.ndarray, shift: np.ndarray, c_prev: np.ndarray, act: np.ndarray, c: np.ndarray,
                          tmp: np.ndarray, tmp_h: np.ndarray) -> np.ndarray:
    """The step shared by the LN- and BN-LSTM once both products are normalised: the gates
    act = [sigma, sigma, tanh, sigma](gx xhat_x + gh xh + b) (one tanh, pre-scaled columns) and
    c = f c_prev + i g; returns the output gate o (a view of act)."""
    np.multiply(xhat_x, gx, out=act)
    np.multiply(xh, gh, out=tmp)
    act += tmp
    act += bias
    np.tanh(act, out=act)
    act *= scale
    act += shift
    i, f, g, o = lstm._blocks(act, c.shape[1])
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=tmp_h)
    c += tmp_h
    return o


def forward_step(xhat_x: np.ndarray, xh: np.ndarray, groups: int, eps: float, gx: np.ndarray, gh: np.ndarray,
                 bias: np.ndarray, scale: np.ndarray, shift: np.ndarray, c_prev: np.ndarray, gamma_c: np.ndarray,
                 beta_c: np.ndarray, act: np.ndarray, s_h: np.ndarray, c: np.ndarray, xc: np.ndarray,
                 s_c: np.ndarray, tu: np.ndarray, h: np.ndarray, *, tmp: np.ndarray, tmp_h: np.ndarray) -> None:
    """One step (compiled twin: ``compiled.lnlstm_forward``): xh = LN(h W_h) in place, gates in
    act, c, xc = LN(c), tu, h; tmp (B, 4H), tmp_h (B, H) scratch."""
    layer_norm_(xh, groups, eps, s_h, tmp)
    o = normed_gates_and_cell(xhat_x, xh, gx, gh, bias, scale, shift, c_prev, act, c, tmp, tmp_h)
    np.copyto(xc, c)
    layer_norm_(xc, 1, eps, s_c, tmp_h)
    np.multiply(xc, gamma_c, out=tu)
    tu += beta_c
    np.tanh(tu, out=tu)
    np.multiply(o, tu, out=h)


def gate_grads(act: np.ndarray, c_prev: np.ndarray, tu: np.ndarray, dh: np.ndarray, dc: np.ndarray,
               da: np.ndarray, deriv: np.ndarray) -> None:
    """da from dc (through N_c and the carry) and do = dh tu, as the LSTM's; then dc *= f."""
    H = dh.shape[1]
    i, f, g, o = lstm._blocks(act, H)
    da_i, da_f, da_g, da_o = lstm._blocks(da, H)
    np.multiply(dc, g, out=da_i)
    np.multiply(dc, c_prev, out=da_f)
    np.multiply(dc, i, out=da_g)
    np.multiply(dh, tu, out=da_o)
    np.subtract(1.0, act, out=deriv)           # sigmoid' = y (1 - y); tanh' = 1 - y^2 on g
    deriv *= act
    np.multiply(g, g, out=deriv[:, 2 * H:3 * H])
    np.subtract(1.0, deriv[:, 2 * H:3 * H], out=deriv[:, 2 * H:3 * H])
    da *= deriv
    dc *= f


def backward_step(act: np.ndarray, c_prev: np.ndarray, tu: np.ndarray, xc: np.ndarray, s_c: np.ndarray,
                  gamma_c: np.ndarray, xh: np.ndarray, s_h: np.ndarray, gamma_h: np.ndarray, groups: int,
                  dh: np.ndarray, dy: np.ndarray, has_dy: bool, dc: np.ndarray, da: np.ndarray, dhw: np.ndarray,
                  acc_gc: np.ndarray, acc_bc: np.ndarray, acc_gh: np.ndarray, *, tmp: np.ndarray,
                  tmp_h: np.ndarray, dtu: np.ndarray, m: np.ndarray, col: np.ndarray) -> None:
    """One step back (compiled twin: ``compiled.lnlstm_backward``): da (the gates' gradient,
    before LN_x), dhw; dc -> dc_{t-1}; dh is spent; acc_* += this step's gamma_c, beta_c and
    gamma_h gradients. tmp (B, 4H), tmp_h, dtu (B, H), m (B, 4, 2), col (4H,) scratch."""
    if has_dy:
        dh += dy
    H = dh.shape[1]
    o = act[:, 3 * H:]
    np.multiply(tu, tu, out=dtu)
    np.subtract(1.0, dtu, out=dtu)
    dtu *= o
    dtu *= dh
    np.multiply(dtu, xc, out=tmp_h)
    acc_gc += np.sum(tmp_h, axis=0, out=col[:H])
    acc_bc += np.sum(dtu, axis=0, out=col[:H])
    layer_norm_grad(dtu, xc, s_c, gamma_c, 1, dtu, tmp_h, m[:, :1])
    dc += dtu
    gate_grads(act, c_prev, tu, dh, dc, da, tmp)
    np.multiply(da, xh, out=tmp)
    acc_gh += np.sum(tmp, axis=0, out=col)
    layer_norm_grad(da, xh, s_h, gamma_h, groups, dhw, tmp, m[:, :groups])


# -- the kernel ---------------------------------------------------------------------------------
def forward(cell: Any, XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray,
            state0: tuple, ws: Workspace, keep: bool = True, active: list | None = None) -> tuple[tuple, list | None]:
    T, B, G = XW.shape
    H, dt, p, eps = G // 4, hs.dtype, cell.params, cell.eps
    gx_groups, gh_groups = cell.groups("x"), cell.groups("h")
    scale, shift = lstm.preact_scale(H, dt), lstm.preact_shift(H, dt)
    gx = np.multiply(p["gamma_x"], scale, out=ws.empty("gx", (G,), dt))
    gh = np.multiply(p["gamma_h"], scale, out=ws.empty("gh", (G,), dt))
    bias = np.multiply(b, scale, out=ws.empty("b'", (G,), dt))
    compiled = accel.steps(dt)
    tmp, tmp_h = ws.empty("tmp", (B, G), dt), ws.empty("tmp_h", (B, H), dt)
    s_x = ws.empty("s_x", (T, B, gx_groups), dt)
    for t0, t1, n in _spans(T, B, active):          # LN of the input side, every step at once
        if compiled is not None:
            compiled.ln_rows(XW[t0:t1, :n], gx_groups, eps, s_x[t0:t1, :n])
        else:
            ln_rows(XW[t0:t1, :n], gx_groups, eps, s_x[t0:t1, :n], tmp=tmp)
    K = T if keep else 1    # keep=False (no_grad): one step's intermediates, reused
    act, xh = ws.empty("act", (K, B, G), dt), ws.empty("xh", (K, B, G), dt)
    s_h, s_c = ws.empty("s_h", (K, B, gh_groups), dt), ws.empty("s_c", (K, B, 1), dt)
    xc, tu = ws.empty("xc", (K, B, H), dt), ws.empty("tu", (K, B, H), dt)
    cs = ws.empty("c", hs.shape, dt) if keep else ws.empty("c2", (2, B, H), dt)
    step = compiled.lnlstm_forward if compiled is not None else partial(forward_step, tmp=tmp, tmp_h=tmp_h)
    cs[0] = state0[1]
    for t in range(T):
        n = B if active is None else active[t]
        k, c_prev, c = (t, cs[t], cs[t + 1]) if keep else (0, cs[t % 2], cs[(t + 1) % 2])
        if compiled is None:
            step = partial(forward_step, tmp=tmp[:n], tmp_h=tmp_h[:n])
        np.matmul(hs[t, :n], W_h, out=xh[k, :n])
        step(XW[t, :n], xh[k, :n], gh_groups, eps, gx, gh, bias, scale, shift, c_prev[:n], p["gamma_c"],
             p["beta_c"], act[k, :n], s_h[k, :n], c[:n], xc[k, :n], s_c[k, :n], tu[k, :n], hs[t + 1, :n])
        if n < B:   # finished rows: the state carries over unchanged
            hs[t + 1, n:] = hs[t, n:]
            c[n:] = c_prev[n:]
    if not keep:
        return (hs[T].copy(), cs[T % 2].copy()), None
    steps = []
    for t in range(T):
        n = B if active is None else active[t]
        steps.append(NormLSTMStepCache(act[t, :n], cs[t, :n], tu[t, :n],
                                       NormCache(XW[t, :n], s_x[t, :n, :, None], True),
                                       NormCache(xh[t, :n], s_h[t, :n, :, None], True),
                                       NormCache(xc[t, :n], s_c[t, :n, :, None], True)))
    return (hs[T].copy(), cs[T].copy()), steps


def _spans(T: int, B: int, active: list | None) -> list[tuple[int, int, int]]:
    """(t0, t1, n): runs of steps with the same number n of running rows (one run without ``active``)."""
    if active is None:
        return [(0, T, B)] if T else []
    spans: list[tuple[int, int, int]] = []
    for t, n in enumerate(active):
        if spans and spans[-1][2] == n:
            spans[-1] = (spans[-1][0], t + 1, n)
        else:
            spans.append((t, t + 1, n))
    return spans


def backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
             chunk: int, ws: Workspace, active: list | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(t0, t1, dXW, dHW)`` for blocks of ``chunk`` steps, last block first; accumulates
    the gradients of b, gamma_x, gamma_h, gamma_c and beta_c; leaves (dh_0, dc_0) in ``dstate``."""
    T, (B, H) = len(steps), dstate[0].shape
    G, dt, p = 4 * H, dstate[0].dtype, cell.params
    gx_groups, gh_groups = cell.groups("x"), cell.groups("h")
    W_hT, dXW, dHW, acc = backward_buffers(W_h, T, B, H, chunk, ws, dt)
    acc_gx, acc_b, acc_gh, acc_gc, acc_bc = acc[0], acc[1], acc[2], acc[3, :H], acc[3, H:2 * H]
    compiled = accel.steps(dt)
    scratch = {} if compiled is not None else dict(
        tmp=ws.empty("tmp", (B, G), dt), tmp_h=ws.empty("tmp_h", (B, H), dt), dtu=ws.empty("dtu", (B, H), dt),
        m=ws.empty("m", (B, 4, 2), dt), col=ws.empty("col", (G,), dt))

    def step(st: Any, dy: np.ndarray, dh_n: np.ndarray, dc_n: np.ndarray, da: np.ndarray, dhw: np.ndarray,
             n: int) -> None:
        args = (st.gates, st.c_prev, st.tanh_u, st.norm_c.xhat, st.norm_c.inv_std[:, :, 0], p["gamma_c"],
                st.norm_h.xhat, st.norm_h.inv_std[:, :, 0], p["gamma_h"], gh_groups, dh_n, dy, dyt is not None,
                dc_n, da, dhw, acc_gc, acc_bc, acc_gh)
        if compiled is not None:
            compiled.lnlstm_backward(*args)
        else:
            backward_step(*args, **{k: (v if k == "col" else v[:n]) for k, v in scratch.items()})

    def norm_x(nx: NormCache, block: np.ndarray) -> None:   # LN_x backward, in place in dXW
        args = (block, nx.xhat[None], nx.inv_std[None, :, :, 0], p["gamma_x"], gx_groups, block, acc_gx, acc_b)
        if compiled is not None:
            compiled.ln_backward(*args)
        else:
            ln_backward(*args, tmp=scratch["tmp"], m=scratch["m"][:, :gx_groups], col=scratch["col"])

    yield from backward_loop(cell, dyt, dstate, steps, W_hT, dXW, dHW, acc, chunk, active, step, norm_x)


def backward_loop(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_hT: np.ndarray,
                  dXW: np.ndarray, dHW: np.ndarray, acc: np.ndarray, chunk: int, active: list | None,
                  step: Callable[..., None], norm_x: Callable[[Any, np.ndarray], None]
                  ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """The LN- and BN-LSTM backward's time loop over the buffers of :func:`backward_buffers`. For each
    block of ``chunk`` steps, last first: each step back, ``step(st, dy, dh, dc, da, dhw, n)`` on its
    ``n`` running rows, then ``dh_{t-1} = dhw W_h^T``; then the input normalisation's backward,
    ``norm_x(st.norm_x, block)``, in place in dXW (finished rows' dXW and dHW zeroed); then the
    accumulated gradients are added (:func:`_add_grads`) and ``(t0, t1, dXW, dHW)`` yielded."""
    T, B = len(steps), dstate[0].shape[0]
    dh, dc = dstate
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            n = B if active is None else active[t]
            dh_n = dh[:n]
            step(steps[t], dh_n if dyt is None else dyt[t, :n], dh_n, dc[:n], dXW[t - t0, :n], dHW[t - t0, :n], n)
            np.matmul(dHW[t - t0, :n], W_hT, out=dh_n)   # dh_{t-1} of the running rows
        for t in range(t0, t1):
            n = B if active is None else active[t]
            norm_x(steps[t].norm_x, dXW[t - t0:t - t0 + 1, :n])
            if n < B:
                dXW[t - t0, n:] = 0
                dHW[t - t0, n:] = 0
        _add_grads(cell, acc)
        yield t0, t1, dXW[:t1 - t0], dHW[:t1 - t0]


def backward_buffers(W_h: np.ndarray, T: int, B: int, H: int, chunk: int, ws: Workspace,
                     dt: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The backward's buffers, shared by the LN- and BN-LSTM: ``W_h.T`` (contiguous), the ``(chunk, B, 4H)``
    blocks dXW and dHW (reused: the caller consumes each block first) and the zeroed ``(4, 4H)``
    accumulator of gamma_x, b, gamma_h and [gamma_c, beta_c] (see :func:`_add_grads`)."""
    G = 4 * H
    W_hT = ws.empty("W_hT", W_h.shape[::-1], dt)
    np.copyto(W_hT, W_h.T)
    dXW = ws.empty("dXW", (min(chunk, T), B, G), dt)
    dHW = ws.empty("dHW", dXW.shape, dt)
    acc = ws.empty("acc", (4, G), dt)
    acc[...] = 0
    return W_hT, dXW, dHW, acc


def _add_grads(cell: Any, acc: np.ndarray) -> None:
    H = acc.shape[1] // 4
    with _grads_lock:
        for name, g in (("gamma_x", acc[0]), ("b", acc[1]), ("gamma_h", acc[2]), ("gamma_c", acc[3, :H]),
                        ("beta_c", acc[3, H:2 * H])):
            cell.grads[name] += g
    acc[...] = 0
