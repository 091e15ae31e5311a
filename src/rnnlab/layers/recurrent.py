"""The one time loop shared by every recurrent cell.

``Recurrent(cell)`` runs a :class:`~rnnlab.cells.base.Cell` over a batch-first
sequence ``x`` of shape (B, T, D) from an initial state, and returns the
outputs (B, T, H) and the final state, so that training can carry the state
across batches (truncated BPTT).

Forward::

    XW = X W_x + b                   one product for all T steps
    for t = 0 .. T-1:
        HW_t = h_{t-1} W_h            one product per step, all gates at once
        state_t = cell.step(XW_t, HW_t, state_{t-1})

Backward through time (dstate_T from the caller, zero when absent)::

    for t = T-1 .. 0:
        dh_t += dy_t
        dXW_t, dHW_t, dstate_{t-1} = cell.step_backward(dstate_t)
        dh_{t-1} += dHW_t W_h^T
    dW_h = sum_t h_{t-1}^T dHW_t      one (H, T*B) x (T*B, G*H) product
    dW_x = sum_t x_t^T dXW_t          likewise;  db = sum_{t,b} dXW_t
    dx   = dXW W_x^T
(the fused kernels do these products per block of CHUNK steps, to bound memory).

A cell with ``project_bias = False`` (BN-/LN-LSTM) owns b: the loop then
leaves it out of XW and db, and the cell adds and differentiates it itself.

Internally the loop works time-major (T, B, .) so each step reads contiguous
memory.

For the LSTM and the GRU the per-step part runs in a fused kernel from
:mod:`rnnlab.fast` (preallocated buffers, one tanh for all gates); the loop
below, calling the cell's ``step_forward`` / ``step_backward``, is the
readable reference, used for every other cell and tested equal to the kernels.
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np

from .. import fast
from ..cells.base import Cell, State
from ..module import Module

# The fused kernels hand back the gradients of CHUNK time steps at a time, and
# the weight products run per block: 16 steps x B rows is still a large, fast
# GEMM, while the (T, B, G*H) gradient arrays shrink to (16, B, G*H).
CHUNK = 16


class RecurrentCache(NamedTuple):
    x: np.ndarray            # (T, B, D) time-major input
    hs: np.ndarray           # (T+1, B, H): h_0 .. h_T
    steps: list              # the cell's per-step caches
    state0_given: bool


class Recurrent(Module):
    """Run ``cell`` over (B, T, D); ``forward(x, state0=None) -> ((y, stateT), cache)``."""

    def __init__(self, cell: Cell, *, reverse: bool = False) -> None:
        super().__init__()
        self.cell = self.add_child("cell", cell)
        self.reverse = reverse  # process time right-to-left (the backward half of a BiRNN)

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def forward(self, x: np.ndarray, state0: State | None = None) -> tuple[tuple[np.ndarray, State], RecurrentCache]:
        cell = self.cell
        B, T, D = x.shape
        if D != cell.input_size:
            raise ValueError(f"input has {D} features, the cell expects {cell.input_size}")
        W_x, W_h, b = cell.params["W_x"], cell.params["W_h"], cell.params["b"]
        xt = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=W_x.dtype)
        if self.reverse:
            xt = xt[::-1]
        kernel = fast.kernel_for(cell)
        scale = kernel.preact_scale(cell.hidden_size, W_x.dtype) if kernel is not None else None
        if scale is not None:  # the kernel wants some columns pre-scaled (exact: powers of two)
            W_x, W_h, b = W_x * scale, W_h * scale, b * scale
        XW = (xt.reshape(T * B, D) @ W_x).reshape(T, B, -1)
        if cell.project_bias:  # False: the cell adds b itself (after normalising xw)
            XW += b
        state = tuple(s.astype(W_x.dtype, copy=False) for s in state0) if state0 is not None \
            else cell.initial_state(B, W_x.dtype)
        hs = np.empty((T + 1, B, cell.hidden_size), dtype=W_x.dtype)
        hs[0] = state[0]
        if kernel is not None:
            state, steps = kernel.forward(cell, XW, W_h, hs, state)
        else:
            state, steps = self._reference_forward(XW, W_h, hs, state)
        y = hs[1:][::-1] if self.reverse else hs[1:]
        # A batch-first *view* of the cached states, not a copy: a layer stacked
        # on top transposes it straight back (no copy), and memory stays flat.
        y = y.transpose(1, 0, 2)
        return (y, state), RecurrentCache(xt, hs, steps, state0 is not None)

    def _reference_forward(self, XW: np.ndarray, W_h: np.ndarray, hs: np.ndarray, state: State) -> tuple[State, list]:
        steps = []
        for t in range(XW.shape[0]):
            state, step_cache = self.cell.step_forward(t, XW[t], hs[t] @ W_h, state)
            hs[t + 1] = state[0]
            steps.append(step_cache)
        return state, steps

    def backward(self, dout: tuple[np.ndarray | None, State | None],
                 cache: RecurrentCache) -> tuple[np.ndarray, State]:
        cell = self.cell
        dy, dstateT = dout
        xt, hs, steps = cache.x, cache.hs, cache.steps
        T, B, D = xt.shape
        dyt = None
        if dy is not None:
            dyt = dy.transpose(1, 0, 2)
            if self.reverse:
                dyt = dyt[::-1]
        dstate = [np.zeros_like(hs[0]) if s is None else np.array(s, dtype=hs.dtype)
                  for s in (dstateT if dstateT is not None else (None,) * cell.state_size)]
        W_h = cell.params["W_h"]
        kernel = fast.kernel_for(cell)
        chunks = kernel.backward(cell, dyt, dstate, steps, W_h, CHUNK) if kernel is not None \
            else self._reference_backward(dyt, dstate, steps, W_h)
        dxt = np.empty((T, B, D), dtype=hs.dtype)
        for t0, t1, dXW, dHW in chunks:  # from the last time steps to the first; dstate -> dstate_0
            self._weight_grads(xt[t0:t1], hs[t0:t1], dXW, dHW, dxt[t0:t1])
        if self.reverse:
            dxt = dxt[::-1]
        # A transposed view, not a copy: the layer below (or an embedding) reads it as it is.
        return dxt.transpose(1, 0, 2), tuple(dstate)

    def _weight_grads(self, xt: np.ndarray, h_prev: np.ndarray, dXW: np.ndarray, dHW: np.ndarray,
                      dxt: np.ndarray) -> None:
        """The products over a block of time steps: dW_h, dW_x, db, and dx into ``dxt``."""
        cell = self.cell
        n, D, GH = dXW.shape[0] * dXW.shape[1], xt.shape[2], dXW.shape[2]
        dXW2 = dXW.reshape(n, GH)
        cell.grads["W_h"] += h_prev.reshape(n, -1).T @ dHW.reshape(n, GH)
        cell.grads["W_x"] += xt.reshape(n, D).T @ dXW2
        if cell.project_bias:
            cell.grads["b"] += dXW2.sum(axis=0)
        np.matmul(dXW2, cell.params["W_x"].T, out=dxt.reshape(n, D))

    def _reference_backward(self, dyt: np.ndarray | None, dstate: list, steps: list,
                            W_h: np.ndarray) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """The reference BPTT: all T steps as one block; leaves dstate_0 in ``dstate``."""
        T, (B, H) = len(steps), dstate[0].shape
        dXW = np.empty((T, B, W_h.shape[1]), dtype=W_h.dtype)
        dHW = np.empty_like(dXW)
        for t in range(T - 1, -1, -1):
            if dyt is not None:
                dstate[0] += dyt[t]
            dXW[t], dHW[t], dprev = self.cell.step_backward(tuple(dstate), steps[t])
            dh_prev = dHW[t] @ W_h.T
            if dprev[0] is not None:
                dh_prev += dprev[0]
            dstate[:] = [dh_prev] + [np.zeros_like(dstate[0]) if d is None else d for d in dprev[1:]]
        yield 0, T, dXW, dHW
