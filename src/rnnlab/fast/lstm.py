"""Fused NumPy kernel for the LSTM time loop (reference: :mod:`rnnlab.cells.lstm`).

The equations are the reference's. What changes is how many passes over
memory and how many NumPy calls one step costs.

Forward, per step (the loop delivers a' = a * s with s = 1/2 on the i, f, o
columns and 1 on g; scaling by a power of two is exact)::

    A = tanh(h_{t-1} (W_h s) + XW'_t + b')   one GEMM, then add, tanh, in place in XW
    A = A * s + s                          -> [sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)]
    c_t = f * c_{t-1} + i * g ;  h_t = o * tanh(c_t)

Backward, per step, all four gate derivatives in one full-width product::

    sigmoid'(a) = y (1 - y),  tanh'(a) = 1 - y^2   ==   y * (M - y) + K
    with M = 1, K = 0 on the sigmoid columns and M = 0, K = 1 on g.
    da = [dc * g, dc * c_{t-1}, dc * i, dh * tanh(c_t)] * (A * (M - A) + K)

The element-wise part of each step is a function with a compiled twin in
:mod:`rnnlab.fast.compiled` (one loop instead of 9 and 15 NumPy calls), used when
numba is installed (:mod:`rnnlab.fast.accel`); the matrix products are the same in both.

Variable lengths (``active``, see :mod:`rnnlab.fast`): step t runs the same
equations on rows [:n_t] (C-contiguous row slices) and copies h, c of rows
[n_t:]; backward zeroes their dA and leaves their dh, dc untouched.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterator

import numpy as np

from ..blas import choice as blas_choice
from ..cells.lstm import LSTMStepCache
from ..workspace import Workspace
from . import accel, bf16, lstm_infer
from .lstm_gates import _blocks, _per_gate, backward_step, forward_step, preact_scale, preact_shift  # noqa: F401

SUPPORTS_ACTIVE = True  # forward/backward take ``active`` (rows per step) for variable lengths
READS_TOKEN_ROWS = True  # forward with keep=False takes a lstm_infer.TokenRows as XW (no gather)


def forward(cell: Any, XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray,
            state0: tuple, ws: Workspace, keep: bool = True, active: list | None = None) -> tuple[tuple, list | None]:
    if not keep:   # no_grad: the forward-only loop (rnnlab.fast.lstm_infer), nothing kept
        return lstm_infer.forward(XW, b, W_h, hs, state0, ws, active)
    if active is not None:
        return _forward_active(XW, b, W_h, hs, state0, ws, active)
    T, B, G = XW.shape
    H = G // 4
    scale = preact_scale(H, XW.dtype)       # also the shift: 0.5 + 0.5 tanh(a/2)
    shift = preact_shift(H, XW.dtype)
    # The gates are computed in place in XW (the input projection, no longer needed after its
    # step): no second (T, B, 4H) array.
    act = XW
    hw = ws.empty("hw", (B, G), hs.dtype)
    cs = ws.empty("c", hs.shape, hs.dtype)
    tanh_c = ws.empty("tanh_c", (T, B, H), hs.dtype)
    compiled = accel.steps(hs.dtype)
    step = compiled.lstm_forward if compiled is not None else partial(forward_step, ig=ws.empty("ig", (B, H), hs.dtype))
    cs[0] = state0[1]
    # hs[t] @ W_h: OpenBLAS or packed oneMKL (RNNLAB_BLAS), or packed bf16 (--precision bf16)
    product = (bf16.stepper if bf16.active(hs, W_h) else blas_choice.stepper)(hs, W_h, hw)
    for t in range(T):
        product(t)
        step(act[t], hw, b, scale, shift, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])
    steps = [LSTMStepCache(act[t], cs[t], tanh_c[t]) for t in range(T)]
    return (hs[T].copy(), cs[T].copy()), steps


def backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
             chunk: int, ws: Workspace, active: list | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(t0, t1, dA, dA)`` for blocks of ``chunk`` steps, last block first (dxw == dhw
    for the LSTM, so one array serves both); leaves (dh_0, dc_0) in ``dstate``."""
    if active is not None:
        return _backward_active(dyt, dstate, steps, W_h, chunk, ws, active)
    return _backward(dyt, dstate, steps, W_h, chunk, ws)


def _backward(dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
              chunk: int, ws: Workspace) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    T, (B, H), G = len(steps), dstate[0].shape, W_h.shape[1]
    dtype = dstate[0].dtype
    W_hT = ws.empty("W_hT", W_h.shape[::-1], dtype)
    np.copyto(W_hT, W_h.T)
    block = ws.empty("dA", (min(chunk, T), B, G), dtype)  # reused: the caller consumes each block first
    compiled = accel.steps(dtype)
    step = compiled.lstm_backward if compiled is not None else partial(
        backward_step, M=_per_gate(H, (1.0, 1.0, 0.0, 1.0), dtype), K=_per_gate(H, (0.0, 0.0, 1.0, 0.0), dtype),
        deriv=ws.empty("deriv", (B, G), dtype), tmp=ws.empty("tmp", (B, H), dtype))
    dh, dc = dstate
    # the block is reused: one packing per call
    product = (bf16.stepper if bf16.active(block, W_hT) else blas_choice.stepper)(block, W_hT, dh)
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            act, c_prev, tc = steps[t]
            step(act, c_prev, tc, dh, dh if dyt is None else dyt[t], dyt is not None, dc, block[t - t0])
            product(t - t0)                                  # dh_{t-1} = dA_t W_h^T
        yield t0, t1, block[:t1 - t0], block[:t1 - t0]


# -- variable lengths: step t computes rows [:n_t], rows [n_t:] keep their state --------------------
def _forward_active(XW: np.ndarray, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray, state0: tuple,
                    ws: Workspace, active: list) -> tuple[tuple, list]:
    """:func:`forward` with ``active``: h_t, c_t = step(rows [:n_t]); rows [n_t:] copy h_{t-1}, c_{t-1}.
    The step caches hold the n_t computed rows."""
    T, B, G = XW.shape
    H = G // 4
    scale, shift = preact_scale(H, XW.dtype), preact_shift(H, XW.dtype)
    hw = ws.empty("hw", (B, G), hs.dtype)
    cs = ws.empty("c", hs.shape, hs.dtype)
    tanh_c = ws.empty("tanh_c", (T, B, H), hs.dtype)
    compiled = accel.steps(hs.dtype)
    ig = None if compiled is not None else ws.empty("ig", (B, H), hs.dtype)
    cs[0] = state0[1]
    for t, n in enumerate(active):
        c_prev, c = cs[t], cs[t + 1]
        np.matmul(hs[t, :n], W_h, out=hw[:n])
        args = (XW[t, :n], hw[:n], b, scale, shift, c_prev[:n], c[:n], tanh_c[t, :n], hs[t + 1, :n])
        if compiled is not None:
            compiled.lstm_forward(*args)
        else:
            forward_step(*args, ig=ig[:n])
        if n < B:   # finished rows: the state carries over unchanged
            hs[t + 1, n:] = hs[t, n:]
            c[n:] = c_prev[n:]
    steps = [LSTMStepCache(XW[t, :n], cs[t, :n], tanh_c[t, :n]) for t, n in enumerate(active)]
    return (hs[T].copy(), cs[T].copy()), steps


def _backward_active(dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray, chunk: int,
                     ws: Workspace, active: list) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """:func:`backward` with ``active``: rows [:n_t] of step t as usual; rows [n_t:] get dA = 0 and
    keep dh, dc (the gradient of a copy is the identity)."""
    T, (B, H), G = len(steps), dstate[0].shape, W_h.shape[1]
    dtype = dstate[0].dtype
    W_hT = ws.empty("W_hT", W_h.shape[::-1], dtype)
    np.copyto(W_hT, W_h.T)
    block = ws.empty("dA", (min(chunk, T), B, G), dtype)
    compiled = accel.steps(dtype)
    if compiled is None:
        M, K = _per_gate(H, (1.0, 1.0, 0.0, 1.0), dtype), _per_gate(H, (0.0, 0.0, 1.0, 0.0), dtype)
        deriv, tmp = ws.empty("deriv", (B, G), dtype), ws.empty("tmp", (B, H), dtype)
    dh, dc = dstate
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            n = active[t]
            act, c_prev, tc = steps[t]
            da, dh_n = block[t - t0], dh[:n]
            args = (act[:n], c_prev[:n], tc[:n], dh_n, dh_n if dyt is None else dyt[t, :n], dyt is not None,
                    dc[:n], da[:n])
            if compiled is not None:
                compiled.lstm_backward(*args)
            else:
                backward_step(*args, M=M, K=K, deriv=deriv[:n], tmp=tmp[:n])
            np.matmul(da[:n], W_hT, out=dh_n)           # dh_{t-1} of the running rows
            da[n:] = 0
        yield t0, t1, block[:t1 - t0], block[:t1 - t0]
