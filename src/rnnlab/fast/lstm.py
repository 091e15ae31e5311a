"""Fused NumPy kernel for the LSTM time loop (reference: :mod:`rnnlab.cells.lstm`).

The equations are the reference's. What changes is how many passes over
memory and how many NumPy calls one step costs.

Forward, per step (the loop delivers a' = a * s with s = 1/2 on the i, f, o
columns and 1 on g; scaling by a power of two is exact)::

    A = tanh(h_{t-1} (W_h s) + XW'_t)     one GEMM, one add, one tanh over (B, 4H)
    A = A * s + s                          -> [sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)]
    c_t = f * c_{t-1} + i * g ;  h_t = o * tanh(c_t)

Backward, per step, all four gate derivatives in one full-width product::

    sigmoid'(a) = y (1 - y),  tanh'(a) = 1 - y^2   ==   y * (M - y) + K
    with M = 1, K = 0 on the sigmoid columns and M = 0, K = 1 on g.
    da = [dc * g, dc * c_{t-1}, dc * i, dh * tanh(c_t)] * (A * (M - A) + K)
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..cells.lstm import LSTMStepCache


def _blocks(a: np.ndarray, H: int) -> tuple[np.ndarray, ...]:
    return a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]


def _per_gate(H: int, values: tuple[float, ...], dtype: Any) -> np.ndarray:
    return np.repeat(np.asarray(values, dtype=dtype), H)


def preact_scale(H: int, dtype: Any) -> np.ndarray:
    """1/2 on the sigmoid gates i, f, o: tanh(a/2) then gives the sigmoid."""
    return _per_gate(H, (0.5, 0.5, 1.0, 0.5), dtype)


def forward(cell: Any, XW: np.ndarray, W_h: np.ndarray, hs: np.ndarray,
            state0: tuple) -> tuple[tuple, list]:
    T, B, G = XW.shape
    H = G // 4
    scale = preact_scale(H, XW.dtype)       # also the shift: 0.5 + 0.5 tanh(a/2)
    shift = _per_gate(H, (0.5, 0.5, 0.0, 0.5), XW.dtype)
    act = np.empty_like(XW)                  # activated gates, kept for backward
    cs = np.empty_like(hs)                   # c_0 .. c_T
    tanh_c = np.empty((T, B, H), dtype=hs.dtype)
    ig = np.empty((B, H), dtype=hs.dtype)
    cs[0] = state0[1]
    for t in range(T):
        a = act[t]
        np.matmul(hs[t], W_h, out=a)
        a += XW[t]
        np.tanh(a, out=a)
        a *= scale
        a += shift
        i, f, g, o = _blocks(a, H)
        np.multiply(f, cs[t], out=cs[t + 1])
        np.multiply(i, g, out=ig)
        cs[t + 1] += ig
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
    steps = [LSTMStepCache(act[t], cs[t], tanh_c[t]) for t in range(T)]
    return (hs[T].copy(), cs[T].copy()), steps


def backward(cell: Any, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
             chunk: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(t0, t1, dA, dA)`` for blocks of ``chunk`` steps, last block first (dxw == dhw
    for the LSTM, so one array serves both); leaves (dh_0, dc_0) in ``dstate``."""
    T, (B, H), G = len(steps), dstate[0].shape, W_h.shape[1]
    dtype = dstate[0].dtype
    W_hT = np.ascontiguousarray(W_h.T)
    M = _per_gate(H, (1.0, 1.0, 0.0, 1.0), dtype)
    K = _per_gate(H, (0.0, 0.0, 1.0, 0.0), dtype)
    block = np.empty((min(chunk, T), B, G), dtype=dtype)  # reused: the caller consumes each block first
    deriv = np.empty((B, G), dtype=dtype)
    tmp = np.empty((B, H), dtype=dtype)
    dh, dc = dstate
    for t1 in range(T, 0, -chunk):
        t0 = max(t1 - chunk, 0)
        for t in range(t1 - 1, t0 - 1, -1):
            act, c_prev, tc = steps[t]
            i, f, g, o = _blocks(act, H)
            if dyt is not None:
                dh += dyt[t]
            # dc = dc_next + dh * o * (1 - tanh(c)^2)
            np.multiply(tc, tc, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            da = block[t - t0]
            da_i, da_f, da_g, da_o = _blocks(da, H)
            np.multiply(dc, g, out=da_i)
            np.multiply(dc, c_prev, out=da_f)
            np.multiply(dc, i, out=da_g)
            np.multiply(dh, tc, out=da_o)
            np.subtract(M, act, out=deriv)
            deriv *= act
            deriv += K
            da *= deriv
            dc *= f                               # dc_{t-1}
            np.matmul(da, W_hT, out=dh)           # dh_{t-1}
        yield t0, t1, block[:t1 - t0], block[:t1 - t0]
