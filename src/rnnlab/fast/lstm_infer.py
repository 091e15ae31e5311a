"""Forward-only LSTM time loop: the fused kernel's path under :func:`rnnlab.no_grad`.

Same equations, same order of operations as :func:`rnnlab.fast.lstm.forward`
(so the outputs are equal to its training forward), but nothing is kept for a
backward pass, which lets each step do less::

    hw  = h_{t-1} W_h'                          one GEMM into a (B, 4H) scratch
    hw  = tanh(XW'_t + hw + b') * s + s0         gates [i, f, g, o], written into hw
    c   = f * c + i * g                          in place: one cell-state array, not T+1
    h_t = o * tanh(c)                            straight into hs[t+1]

* XW (the input projection of all T steps, one GEMM or one token lookup before
  the loop) is only read: the gates go to the small scratch ``hw``, which stays
  in cache, instead of being written back over XW.
* tanh(c) is not stored (training keeps it for backward), and the compiled step
  (``compiled.lstm_infer``) runs three loops of one output each (gates, c, h);
  the training step's cell loop writes c, tanh(c) and h together. A probe at
  B = 64, one thread, float32 (thread CPU time on a shared machine): about 31 /
  43 / 81 us a step at H = 128 / 256 / 512 against 37 / 68 / 108 us for the
  training step. The loop stays bound by its products (docs/performance.md).
* Nothing is allocated inside the loop: hw, c and the NumPy twin's scratch come
  from the layer's workspace.

* Token input (the first layer of a character model, :mod:`rnnlab.layers.tokens`):
  XW may be a :class:`TokenRows`, the (V, 4H) table ``P = E W_x'`` and the ids;
  each step then reads its rows ``P[ids[t]]`` (in cache: V is small) instead of
  a (T, B, 4H) array gathered before the loop (written once, read once: 8 MB at
  H = 128, 32 MB at H = 512 for B = T = 64). :class:`~rnnlab.layers.Recurrent`
  passes one under no_grad to a kernel with ``READS_TOKEN_ROWS``.

Variable lengths (``active``): step t computes rows [:n_t]; rows [n_t:] copy
h_{t-1} into hs[t+1] and keep c untouched (c is updated in place, so a
finished row's cell state simply stays).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..blas import choice as blas_choice
from ..workspace import Workspace
from . import accel, bf16, lstm_gates


class TokenRows(NamedTuple):
    """The input projection as a lookup: XW[t, b] = table[ids[t, b]], never gathered."""
    table: np.ndarray   # (V, G): E W_x' (or W_x' for one-hot input)
    ids: np.ndarray     # (T, B) time-major ids (any strides: a reversed layer's are a view)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.ids.shape, self.table.shape[1])


def infer_step(xw: np.ndarray, hw: np.ndarray, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray,
               c: np.ndarray, h: np.ndarray, ig: np.ndarray) -> None:
    """One step in NumPy (compiled twin: ``compiled.lstm_infer``): hw (B, 4H) holds h_{t-1} W_h'
    in and the gates out; c (B, H) is c_{t-1} in and c_t out; h = h_t; ``ig`` (B, H) is scratch.
    The arithmetic is :func:`rnnlab.fast.lstm_gates.forward_step`'s, operand for operand."""
    H = h.shape[1]
    hw += xw                  # (xw + hw) + b, as the training step adds them
    hw += bias
    np.tanh(hw, out=hw)
    hw *= scale
    hw += shift
    i, f, g, o = hw[:, :H], hw[:, H:2 * H], hw[:, 2 * H:3 * H], hw[:, 3 * H:]
    c *= f
    np.multiply(i, g, out=ig)
    c += ig
    np.tanh(c, out=ig)
    np.multiply(o, ig, out=h)


def forward(XW: np.ndarray | TokenRows, b: np.ndarray, W_h: np.ndarray, hs: np.ndarray, state0: tuple,
            ws: Workspace, active: list | None = None) -> tuple[tuple, None]:
    """Fill hs[1:] (hs[0] = h_0 set by the caller) from XW (T, B, 4H) or its :class:`TokenRows`
    (scaled, bias not added) and return ((h_T, c_T), None). ``active``: rows per step (variable
    lengths), or None for all B."""
    T, B, G = XW.shape
    H = G // 4
    scale, shift = lstm_gates.preact_scale(H, hs.dtype), lstm_gates.preact_shift(H, hs.dtype)
    hw = ws.empty("hw", (B, G), hs.dtype)
    c = ws.empty("c_infer", (B, H), hs.dtype)
    c[...] = state0[1]
    compiled = accel.steps(hs.dtype)
    lookup = isinstance(XW, TokenRows)
    if compiled is not None and lookup:
        def step(t: int, n: int) -> None:
            compiled.lstm_infer_rows(XW.table, XW.ids[t, :n], hw[:n], b, scale, shift, c[:n], hs[t + 1, :n])
    elif compiled is not None:
        def step(t: int, n: int) -> None:
            compiled.lstm_infer(XW[t, :n], hw[:n], b, scale, shift, c[:n], hs[t + 1, :n])
    else:
        ig = ws.empty("ig", (B, H), hs.dtype)
        xw = ws.empty("xw", (B, G), hs.dtype) if lookup else None

        def step(t: int, n: int) -> None:
            x = np.take(XW.table, XW.ids[t, :n], axis=0, out=xw[:n]) if lookup else XW[t, :n]
            infer_step(x, hw[:n], b, scale, shift, c[:n], hs[t + 1, :n], ig[:n])
    if active is None:
        # OpenBLAS or packed oneMKL (RNNLAB_BLAS), or packed bf16 (--precision bf16): the training forward's
        # product, with the compiled steps or the NumPy ones (a plain float32 np.matmul here made a bf16
        # evaluation without numba differ from the training forward by ~6e-4)
        product = (bf16.stepper if bf16.active(hs, W_h) else blas_choice.stepper)(hs, W_h, hw)
        if compiled is None:
            for t in range(T):
                product(t)
                step(t, B)
        elif lookup:    # the common cases, without a closure call
            rows, table, ids = compiled.lstm_infer_rows, XW.table, XW.ids
            for t in range(T):
                product(t)
                rows(table, ids[t], hw, b, scale, shift, c, hs[t + 1])
        else:
            infer = compiled.lstm_infer
            for t in range(T):
                product(t)
                infer(XW[t], hw, b, scale, shift, c, hs[t + 1])
        return (hs[T].copy(), c.copy()), None
    for t, n in enumerate(active):
        np.matmul(hs[t, :n], W_h, out=hw[:n])
        step(t, n)
        if n < B:   # finished rows: h carries over, c was not touched
            hs[t + 1, n:] = hs[t, n:]
    return (hs[T].copy(), c.copy()), None


__all__ = ["TokenRows", "forward", "infer_step"]
