"""Fused NumPy kernel for the GRU time loop (reference: :mod:`rnnlab.cells.gru`).

Forward, per step (the loop delivers the r, z columns of XW and W_h halved,
exactly, so that one tanh gives both sigmoids)::

    hw = h_{t-1} (W_h s)                            one GEMM (B, 3H)
    [r, z] = 0.5 + 0.5 tanh(xw'_rz + hw'_rz)        one tanh over (B, 2H)
    hn = hw_n + b_hn ;  n = tanh(xw_n + r * hn) ;  h_t = n + z * (h_{t-1} - n)

Backward, per step, with the r and z derivatives in one (B, 2H) product::

    da_n = dh (1 - z)(1 - n^2)
    [dxw_r, dxw_z] = [da_n * hn, dh * (h_{t-1} - n)] * [r, z] * (1 - [r, z])
    dxw = [dxw_r, dxw_z, da_n]    dhw = [dxw_r, dxw_z, da_n * r]
    dh_{t-1} = dh * z + dhw W_h^T
    db_hn = sum over t and batch of (da_n * r), once after the loop

The element-wise part of each step is a function with a compiled twin in
:mod:`rnnlab.fast.compiled`, used when numba is installed (:mod:`rnnlab.fast.accel`).

Variable lengths (``active``, see :mod:`rnnlab.fast`): step t runs the same
equations on rows [:n_t] (C-contiguous row slices) and copies h of rows
[n_t:]; backward zeroes their dXW, dHW and leaves their dh untouched.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterator

import numpy as np

from ..blas import choice as blas_choice
from ..cells.gru import GRUStepCache
from ..workspace import Workspace
from . import accel, bf16

SUPPORTS_ACTIVE = True  # forward/backward take ``active`` (rows per step) for variable lengths


def preact_scale(H: int, dtype: Any) -> np.ndarray:
    """1/2 on the sigmoid gates r, z; the n block stays as it is."""
    return np.repeat(np.asarray((0.5, 0.5, 1.0), dtype=dtype), H)


def forward_step(xw: np.ndarray, hw: np.ndarray, bias: np.ndarray, b_hn: np.ndarray, h_prev: np.ndarray,
                 hn: np.ndarray, h: np.ndarray) -> None:
    """One step in NumPy, for training and generation (compiled twin: ``compiled.gru_forward``).

    r, z, n in place in ``xw`` (after adding ``bias``, (3H,)); hn = hw_n + b_hn;
    h = n + z (h_prev - n) (``h`` may be ``h_prev``); ``hw``'s r columns serve as scratch.
    """
    H = h.shape[1]
    xw += bias
    rz, n = xw[:, :2 * H], xw[:, 2 * H:]
    rz += hw[:, :2 * H]
    np.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    r, z = rz[:, :H], rz[:, H:]
    np.add(hw[:, 2 * H:], b_hn, out=hn)
    n += np.multiply(r, hn, out=hw[:, :H])   # hw's r columns are free by now
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n


class Steps(list):
    """The per-step caches (the cell's own, views), and ``gates``: the (T, B, 3H) array of
    [r, z, n] they view, whose whole rows the backward steps read (unit stride throughout)."""
    gates: np.ndarray


def _forward_setup(cell: Any, XW: np.ndarray, hs: np.ndarray, ws: Workspace, keep: bool) -> tuple:
    """The forward's ``T, B, H``, ``b_hn``, the hn buffer (keep=False, no_grad: one, reused), the (B, 3H) hw
    buffer and the step (compiled, or :func:`forward_step`)."""
    T, B, G = XW.shape
    H = G // 3
    hns = ws.empty("hn", (T, B, H), hs.dtype) if keep else ws.empty("hn1", (1, B, H), hs.dtype)
    hw = ws.empty("hw", (B, G), hs.dtype)
    compiled = accel.steps(hs.dtype)
    return T, B, H, cell.params["b_hn"], hns, hw, (compiled.gru_forward if compiled is not None else forward_step)


def forward(cell: Any, XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray,
            state0: tuple, ws: Workspace, keep: bool = True, active: list | None = None) -> tuple[tuple, list | None]:
    if active is not None:
        return _forward_active(cell, XW, b, W_h, hs, ws, keep, active)
    # r, z and n are computed in place in XW (the input projection, no longer needed after its
    # step): rz in its first 2H columns, n in the last H.
    T, B, H, b_hn, hns, hw, step = _forward_setup(cell, XW, hs, ws, keep)
    # hs[t] @ W_h: OpenBLAS or packed oneMKL (RNNLAB_BLAS), or packed bf16 (--precision bf16)
    product = (bf16.stepper if bf16.active(hs, W_h) else blas_choice.stepper)(hs, W_h, hw)
    for t in range(T):
        product(t)
        step(XW[t], hw, b, b_hn, hs[t], hns[t if keep else 0], hs[t + 1])
    if not keep:
        return (hs[T].copy(),), None
    steps = Steps(GRUStepCache(XW[t, :, :2 * H], XW[t, :, 2 * H:], hns[t], hs[t]) for t in range(T))
    steps.gates = XW
    return (hs[T].copy(),), steps


def backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
             chunk: int, ws: Workspace, active: list | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(t0, t1, dXW, dHW)`` for blocks of ``chunk`` steps, last block first;
    accumulates db_hn; leaves dh_0 in ``dstate``."""
    if active is not None:
        return _backward_active(cell, dyt, dstate, steps, W_h, chunk, ws, active)
    return _backward(cell, dyt, dstate, steps, W_h, chunk, ws)


def _backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
              chunk: int, ws: Workspace) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    T, (B, H) = len(steps), dstate[0].shape
    dtype = dstate[0].dtype
    W_hT = ws.empty("W_hT", W_h.shape[::-1], dtype)
    np.copyto(W_hT, W_h.T)
    dXW = ws.empty("dXW", (min(chunk, T), B, 3 * H), dtype)   # reused: the caller consumes each block first
    dHW = ws.empty("dHW", dXW.shape, dtype)
    compiled = accel.steps(dtype)
    step = compiled.gru_backward if compiled is not None else partial(
        backward_step, deriv=ws.empty("deriv", (B, 2 * H), dtype), dn=ws.empty("dn", (B, H), dtype))
    direct = ws.empty("direct", (B, H), dtype)   # dh z, the path h_{t-1} -> h_t
    (dh,) = dstate
    # dHW_t W_h^T: OpenBLAS, packed oneMKL or packed bf16 (the block is reused: one packing per call)
    product = (bf16.stepper if bf16.active(dHW, W_hT) else blas_choice.stepper)(dHW, W_hT, dh)
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            _, _, hn, h_prev = steps[t]
            step(steps.gates[t], hn, h_prev, dh, dh if dyt is None else dyt[t], dyt is not None,
                 dXW[t - t0], dHW[t - t0], direct)
            product(t - t0)
            dh += direct
        n = t1 - t0
        cell.grads["b_hn"] += dHW[:n, :, 2 * H:].sum(axis=(0, 1))
        yield t0, t1, dXW[:n], dHW[:n]


def backward_step(gates: np.ndarray, hn: np.ndarray, h_prev: np.ndarray, dh: np.ndarray,
                  dy: np.ndarray, has_dy: bool, dx: np.ndarray, dhw: np.ndarray, tmp: np.ndarray, *,
                  deriv: np.ndarray, dn: np.ndarray) -> None:
    """One step in NumPy (compiled twin: ``compiled.gru_backward``), from a step's gates
    [r, z, n] (B, 3H), hn and h_prev, and dh_t (+ dy_t when ``has_dy``): fills dx = dxw, dhw and
    tmp = dh z (the direct path h_{t-1} -> h_t). dh is spent; deriv and dn are scratch."""
    if has_dy:
        dh += dy
    H = hn.shape[1]
    rz, n = gates[:, :2 * H], gates[:, 2 * H:]
    r, z = rz[:, :H], rz[:, H:]
    dx_r, dx_z, da_n = dx[:, :H], dx[:, H:2 * H], dx[:, 2 * H:]
    # da_n = dh * (1 - z) * (1 - n^2)
    np.subtract(1.0, z, out=dn)
    dn *= dh
    np.multiply(n, n, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    np.multiply(dn, tmp, out=da_n)
    # r and z: partner factors, then both sigmoid derivatives in one product
    np.multiply(da_n, hn, out=dx_r)
    np.subtract(h_prev, n, out=dx_z)
    dx_z *= dh
    np.subtract(1.0, rz, out=deriv)
    deriv *= rz
    dx[:, :2 * H] *= deriv
    dhw[:, :2 * H] = dx[:, :2 * H]
    np.multiply(da_n, r, out=dhw[:, 2 * H:])
    np.multiply(dh, z, out=tmp)           # the direct path h_{t-1} -> h_t


# -- variable lengths: step t computes rows [:n_t], rows [n_t:] keep their state --------------------
def _forward_active(cell: Any, XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray, ws: Workspace,
                    keep: bool, active: list) -> tuple[tuple, list | None]:
    """:func:`forward` with ``active``: h_t = step(rows [:n_t]); rows [n_t:] copy h_{t-1}.
    The step caches hold the n_t computed rows; ``gates`` stays the whole (T, B, 3H) array."""
    T, B, H, b_hn, hns, hw, step = _forward_setup(cell, XW, hs, ws, keep)
    for t, n in enumerate(active):
        np.matmul(hs[t, :n], W_h, out=hw[:n])
        step(XW[t, :n], hw[:n], b, b_hn, hs[t, :n], hns[t if keep else 0, :n], hs[t + 1, :n])
        if n < B:   # finished rows: the state carries over unchanged
            hs[t + 1, n:] = hs[t, n:]
    if not keep:
        return (hs[T].copy(),), None
    steps = Steps(GRUStepCache(XW[t, :n, :2 * H], XW[t, :n, 2 * H:], hns[t, :n], hs[t, :n])
                  for t, n in enumerate(active))
    steps.gates = XW
    return (hs[T].copy(),), steps


def _backward_active(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
                     chunk: int, ws: Workspace, active: list) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """:func:`backward` with ``active``: rows [:n_t] of step t as usual; rows [n_t:] get
    dXW = dHW = 0 and keep dh (the gradient of a copy is the identity)."""
    T, (B, H) = len(steps), dstate[0].shape
    dtype = dstate[0].dtype
    W_hT = ws.empty("W_hT", W_h.shape[::-1], dtype)
    np.copyto(W_hT, W_h.T)
    dXW = ws.empty("dXW", (min(chunk, T), B, 3 * H), dtype)
    dHW = ws.empty("dHW", dXW.shape, dtype)
    compiled = accel.steps(dtype)
    if compiled is None:
        deriv, dn = ws.empty("deriv", (B, 2 * H), dtype), ws.empty("dn", (B, H), dtype)
    direct = ws.empty("direct", (B, H), dtype)
    (dh,) = dstate
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            n = active[t]
            _, _, hn, h_prev = steps[t]
            dh_n, dx, dw = dh[:n], dXW[t - t0], dHW[t - t0]
            args = (steps.gates[t, :n], hn[:n], h_prev[:n], dh_n, dh_n if dyt is None else dyt[t, :n],
                    dyt is not None, dx[:n], dw[:n], direct[:n])
            if compiled is not None:
                compiled.gru_backward(*args)
            else:
                backward_step(*args, deriv=deriv[:n], dn=dn[:n])
            np.matmul(dw[:n], W_hT, out=dh_n)
            dh_n += direct[:n]
            dx[n:] = 0
            dw[n:] = 0
        k = t1 - t0
        cell.grads["b_hn"] += dHW[:k, :, 2 * H:].sum(axis=(0, 1))
        yield t0, t1, dXW[:k], dHW[:k]
