"""Fused kernel for the Elman RNN and the IRNN time loop (reference: :mod:`rnnlab.cells.rnn`).

The IRNN (:mod:`rnnlab.cells.irnn`) differs from ``RNNCell(nonlinearity='relu')``
only in its initialisation, so one kernel serves both; it reads the cell's
``nonlinearity``.

Forward, per step: one GEMM straight into the output row, then the rest in place::

    hs[t+1] = h_{t-1} W_h                  (B, H)
    hs[t+1] = phi(XW_t + b + hs[t+1])      phi = tanh or relu

Backward, per step, the derivative from the stored output (no pre-activation kept)::

    da_t = (dh_t + dy_t) * phi'(a_t)       tanh' = 1 - h_t^2 ;  relu' = [h_t > 0]
    dh_{t-1} = da_t W_h^T                  dXW_t = dHW_t = da_t (one array serves both)

The element-wise part of each step is a function with a compiled twin in
:mod:`rnnlab.fast.compiled` (``rnn_forward``, ``rnn_backward``), used when numba
is installed (:mod:`rnnlab.fast.accel`).

Variable lengths (``active``): step t runs rows [:n_t]; rows [n_t:] copy h_{t-1}
forward, and in backward get dA = 0 and keep their dh.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..cells.rnn import RNNStepCache
from ..workspace import Workspace
from . import accel

SUPPORTS_ACTIVE = True


def preact_scale(H: int, dtype: Any) -> None:
    """No column is scaled: one nonlinearity over the whole (B, H) block."""
    return None


def forward_step(h: np.ndarray, xw: np.ndarray, bias: np.ndarray, relu: bool) -> None:
    """One step in NumPy (compiled twin: ``compiled.rnn_forward``): ``h`` holds h_{t-1} W_h in and
    h_t = phi(xw + bias + h) out."""
    h += xw
    h += bias
    if relu:
        np.maximum(h, 0.0, out=h)
    else:
        np.tanh(h, out=h)


def backward_step(h: np.ndarray, dh: np.ndarray, dy: np.ndarray, has_dy: bool, relu: bool, da: np.ndarray,
                  *, mask: np.ndarray) -> None:
    """One step in NumPy (compiled twin: ``compiled.rnn_backward``): da = (dh + dy) phi'(a) from
    the output h (dy added into dh, which is spent); ``mask`` (B, H) bool scratch."""
    if has_dy:
        dh += dy
    if relu:
        np.greater(h, 0.0, out=mask)
        np.multiply(dh, mask, out=da)
    else:
        np.multiply(h, h, out=da)
        np.subtract(1.0, da, out=da)
        da *= dh


def forward(cell: Any, XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray,
            state0: tuple, ws: Workspace, keep: bool = True, active: list | None = None) -> tuple[tuple, list | None]:
    T, B = XW.shape[:2]
    relu = cell.nonlinearity == "relu"
    compiled = accel.steps(hs.dtype)
    step = compiled.rnn_forward if compiled is not None else forward_step
    for t in range(T):
        n = B if active is None else active[t]
        np.matmul(hs[t, :n], W_h, out=hs[t + 1, :n])
        step(hs[t + 1, :n], XW[t, :n], b, relu)
        if n < B:   # finished rows: the state carries over unchanged
            hs[t + 1, n:] = hs[t, n:]
    if not keep:
        return (hs[T].copy(),), None
    rows = [B] * T if active is None else active
    return (hs[T].copy(),), [RNNStepCache(hs[t + 1, :rows[t]]) for t in range(T)]


def backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
             chunk: int, ws: Workspace, active: list | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(t0, t1, dA, dA)`` for blocks of ``chunk`` steps, last block first; leaves dh_0 in ``dstate``."""
    T, (B, H) = len(steps), dstate[0].shape
    dtype = dstate[0].dtype
    relu = cell.nonlinearity == "relu"
    W_hT = ws.empty("W_hT", W_h.shape[::-1], dtype)
    np.copyto(W_hT, W_h.T)
    block = ws.empty("dA", (min(chunk, T), B, H), dtype)   # reused: the caller consumes each block first
    compiled = accel.steps(dtype)
    mask = None if compiled is not None else ws.empty("mask", (B, H), np.bool_)
    (dh,) = dstate
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            n = B if active is None else active[t]
            da, dh_n = block[t - t0], dh[:n]
            args = (steps[t].h, dh_n, dh_n if dyt is None else dyt[t, :n], dyt is not None, relu, da[:n])
            if compiled is not None:
                compiled.rnn_backward(*args)
            else:
                backward_step(*args, mask=mask[:n])
            np.matmul(da[:n], W_hT, out=dh_n)   # dh_{t-1} of the running rows
            if n < B:
                da[n:] = 0
        yield t0, t1, block[:t1 - t0], block[:t1 - t0]
