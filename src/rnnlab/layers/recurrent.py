"""The one time loop shared by every recurrent cell.

``Recurrent(cell)`` runs a :class:`~rnnlab.cells.base.Cell` over a batch-first
sequence ``x`` of shape (B, T, D) from an initial state, and returns the
outputs (B, T, H) and the final state, so that training can carry the state
across batches (truncated BPTT).

Forward::

    XW = X W_x + b                   one product for all T steps (a kernel adds b in its steps)
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

Variable lengths (``forward(x, state0, lengths)``, right-padded rows, as
PyTorch's packed sequences): the rows are sorted by decreasing length and
step t computes only the first n_t (those still running); the others keep
their state (:mod:`rnnlab.layers.packing`). Backward then gives those rows
dXW_t = dHW_t = 0 and passes their dstate through unchanged, so dstate_T
enters each row at its own last step and padding gets no gradient.

For every cell in the registry (LSTM, GRU, tanh RNN, IRNN, BN-LSTM, LN-LSTM)
the per-step part runs in a fused kernel from :mod:`rnnlab.fast`
(preallocated buffers, fewer and larger NumPy or compiled calls); the loop
below, calling the cell's ``step_forward`` / ``step_backward``, is the
readable reference, used for cells without a kernel (subclasses, a user's
own cell) and tested equal to every kernel.
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np

from .. import fast
from ..cells.base import Cell, State
from ..fast import bf16, parallel
from ..fast.lstm_infer import TokenRows
from ..module import Module, grad_enabled
from ..workspace import Workspace
from .packing import Packing
from .tokens import TokenGradient, Tokens, project, projected_table

# The fused kernels hand back the gradients of CHUNK time steps at a time, and
# the weight products run per block: 16 steps x B rows is still a large, fast
# GEMM, while the (T, B, G*H) gradient arrays shrink to (16, B, G*H).
CHUNK = 16


class RecurrentCache(NamedTuple):
    x: np.ndarray | Tokens   # (T, B, D) time-major input, or Tokens with time-major (T, B) ids
    hs: np.ndarray           # (T+1, B, H): h_0 .. h_T
    steps: list              # the cell's per-step caches (one list per row block when split)
    state0_given: bool
    parts: list | None = None  # row blocks run on separate threads (rnnlab.fast.parallel), or None
    packing: Packing | None = None  # variable lengths: rows sorted, x and hs in step order; or None

    def step_lists(self) -> list[tuple[slice, list]]:
        """(rows, per-step caches) pairs, whether or not the batch was split."""
        if self.parts is None:
            return [(slice(None), self.steps)]
        return list(zip(self.parts, self.steps))


def _kernel(cell: Cell, packing: Packing | None) -> Any:
    """The fused kernel, or None for the reference loop (also for lengths a kernel cannot mask)."""
    kernel = fast.kernel_for(cell)
    if packing is not None and not getattr(kernel, "SUPPORTS_ACTIVE", False):
        return None
    return kernel


def _rows(XW: np.ndarray | TokenRows, rows: slice) -> np.ndarray | TokenRows:
    """The batch rows ``rows`` of the input projection (T, B, G), or of its token lookup."""
    return XW._replace(ids=XW.ids[:, rows]) if isinstance(XW, TokenRows) else XW[:, rows]


def _project_rows(xt: np.ndarray, rows: slice, W_x: np.ndarray, ws: Workspace) -> np.ndarray:
    """XW[:, rows] = xt[:, rows] W_x (T, B_k, G), for one block of a forward-only split: the block's
    rows gathered into one (T * B_k, D) operand, one product (bf16 under --precision bf16)."""
    T, D, G = xt.shape[0], xt.shape[2], W_x.shape[1]
    n = len(range(*rows.indices(xt.shape[1])))
    x_k = ws.empty("x_rows", (T, n, D), W_x.dtype)
    np.copyto(x_k, xt[:, rows])
    XW_k = ws.empty("XW", (T, n, G), W_x.dtype)
    bf16.mm(x_k.reshape(T * n, D), W_x, out=XW_k.reshape(T * n, G))
    return XW_k


class Recurrent(Module):
    """Run ``cell`` over (B, T, D); ``forward(x, state0=None, lengths=None) -> ((y, stateT), cache)``.

    ``lengths`` (B,) ints in [1, T]: row b holds lengths[b] real positions, then padding; y is 0
    there, stateT[b] is the state after position lengths[b]-1, and a reverse layer starts each
    row at that position. None: every row runs all T steps. ``outputs=False``: y is
    returned as None (with ``lengths``, never scattered back to (B, T, H)), for a caller that
    reads only stateT (a character model's final states); states and cache are the same.
    """

    def __init__(self, cell: Cell, *, reverse: bool = False) -> None:
        super().__init__()
        self.cell = self.add_child("cell", cell)
        self.reverse = reverse  # process time right-to-left (the backward half of a BiRNN)
        self.workspace = Workspace()  # the fast path's activations, reused between steps

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def forward(self, x: np.ndarray, state0: State | None = None, lengths: np.ndarray | None = None,
                outputs: bool = True) -> tuple[tuple[np.ndarray, State], RecurrentCache]:
        cell = self.cell
        tokens = isinstance(x, Tokens)   # embedding + input projection as one lookup (layers.tokens)
        (B, T), D = (x.ids.shape, x.width) if tokens else (x.shape[:2], x.shape[2])
        if D != cell.input_size:
            raise ValueError(f"input has {D} features, the cell expects {cell.input_size}")
        W_x, W_h, b = cell.params["W_x"], cell.params["W_h"], cell.params["b"]
        pack = None if lengths is None else Packing.build(lengths, B, T, self.reverse)
        kernel = _kernel(cell, pack)
        ws = self.workspace if kernel is not None else Workspace()  # the reference path keeps nothing
        if pack is not None:  # rows sorted by length, each (reversed within its length) in step order
            xt = x._replace(ids=pack.gather(x.ids)) if tokens else pack.gather_input(x, W_x.dtype)
            T = pack.steps
        else:
            xt = x._replace(ids=np.ascontiguousarray(x.ids.T)) if tokens else x.transpose(1, 0, 2)
            if not tokens and not (xt.flags.c_contiguous and xt.dtype == W_x.dtype):
                # A stacked layer's input is the layer below's time-major states: used as they are.
                buf = ws.empty("x", (T, B, D), W_x.dtype)
                np.copyto(buf, xt)
                xt = buf
            if self.reverse:
                xt = xt._replace(ids=xt.ids[::-1]) if tokens else xt[::-1]
        scale = kernel.preact_scale(cell.hidden_size, W_x.dtype) if kernel is not None else None
        if scale is not None:  # the kernel wants some columns pre-scaled (exact: powers of two)
            W_x, W_h, b = (np.multiply(w, scale, out=ws.empty(name, w.shape, w.dtype))
                           for name, w in (("W_x'", W_x), ("W_h'", W_h), ("b'", b)))
        # Rows split over threads only where they are independent (not a BN-LSTM in training mode:
        # batch statistics). Training: RNNLAB_THREADS (rnnlab.fast.parallel). Forward only (no_grad:
        # evaluation, prediction, nothing kept): as many blocks as the BLAS has threads, each block
        # projecting its own rows' input too, so that no product runs outside them.
        keep = grad_enabled()
        splittable = kernel is not None and pack is None and getattr(kernel, "can_split", lambda c: True)(cell)
        parts = (parallel.partition(B) if keep else parallel.forward_partition(B, T * B * W_h.size)) \
            if splittable else [slice(0, B)]
        per_block = not keep and len(parts) > 1 and not tokens
        if per_block:
            XW = None   # each block's rows are projected inside its thread (_project_rows)
        elif tokens and kernel is not None and not keep and getattr(kernel, "READS_TOKEN_ROWS", False):
            # Forward only: the kernel reads the (V, G) table's rows per step, no (T, B, G) gather.
            # (through forward_mm: a product left to a multi-threaded BLAS would wake its spinning threads)
            table = projected_table(xt.table, W_x, lambda a, w: parallel.forward_mm(a, w, np.matmul))   # float32
            XW = TokenRows(table.astype(W_x.dtype, copy=False), xt.ids)
        elif tokens:
            XW = ws.empty("XW", (T, B, W_x.shape[1]), W_x.dtype)
            project(xt.ids, xt.table, W_x, XW)
        else:
            XW = ws.empty("XW", (T, B, W_x.shape[1]), W_x.dtype)
            bf16.mm(xt.reshape(T * B, D), W_x, out=XW.reshape(T * B, -1))   # bf16 under --precision bf16
        # A kernel adds b inside its step (free in the compiled one; a full pass over XW here).
        # project_bias False: the cell adds b itself, after normalising xw (no kernel does that).
        if cell.project_bias and kernel is None and XW is not None:
            XW += b
        state = tuple(s.astype(W_x.dtype, copy=False) for s in state0) if state0 is not None \
            else cell.initial_state(B, W_x.dtype)
        if pack is not None:
            state = tuple(pack.sort_rows(s) for s in state)
        hs = ws.empty("hs", (T + 1, B, cell.hidden_size), W_x.dtype)
        hs[0] = state[0]
        if len(parts) > 1:
            def block(k: int, rows: slice) -> tuple:
                XW_k = _rows(XW, rows) if XW is not None else _project_rows(xt, rows, W_x, ws.sub(k))
                return kernel.forward(cell, XW_k, b, W_h, hs[:, rows], tuple(s[rows] for s in state), ws.sub(k),
                                      keep=keep)
            results = parallel.run(block, parts)
            state = tuple(np.concatenate([r[0][i] for r in results]) for i in range(cell.state_size))
            steps = [r[1] for r in results] if keep else None
        elif kernel is not None and pack is not None:
            state, steps = kernel.forward(cell, XW, b, W_h, hs, state, ws, keep=keep, active=pack.active)
        elif kernel is not None:
            state, steps = kernel.forward(cell, XW, b, W_h, hs, state, ws, keep=keep)
        else:
            state, steps = self._reference_forward(XW, W_h, hs, state, None if pack is None else pack.active)
        if pack is not None:  # back to the caller's rows and positions, zeros on the padding
            return (pack.scatter(hs[1:]) if outputs else None, tuple(pack.unsort_rows(s) for s in state)), \
                RecurrentCache(xt, hs, steps, state0 is not None, None, pack)
        y = hs[1:][::-1] if self.reverse else hs[1:]
        # A batch-first *view* of the cached states, not a copy: a layer stacked
        # on top transposes it straight back (no copy), and memory stays flat.
        y = y.transpose(1, 0, 2) if outputs else None
        return (y, state), RecurrentCache(xt, hs, steps, state0 is not None, parts if len(parts) > 1 and keep else None)

    def _reference_forward(self, XW: np.ndarray, W_h: np.ndarray, hs: np.ndarray, state: State,
                           active: list | None = None) -> tuple[State, list]:
        """The readable loop. ``active`` (n_t per step, or None for all B): step t runs the cell
        on rows [:n_t] only (so batch statistics see only those) and rows [n_t:] keep their state."""
        steps = []
        B = hs.shape[1]
        for t in range(XW.shape[0]):
            n = B if active is None else active[t]
            if n == B:
                state, step_cache = self.cell.step_forward(t, XW[t], hs[t] @ W_h, state)
            else:
                new, step_cache = self.cell.step_forward(t, XW[t, :n], hs[t, :n] @ W_h, tuple(s[:n] for s in state))
                state = tuple(np.concatenate([a, s[n:]]) for a, s in zip(new, state))
            hs[t + 1] = state[0]
            steps.append(step_cache)
        return state, steps

    def backward(self, dout: tuple[np.ndarray | None, State | None],
                 cache: RecurrentCache) -> tuple[np.ndarray, State]:
        cell = self.cell
        dy, dstateT = dout
        xt, hs, steps = cache.x, cache.hs, cache.steps
        if steps is None:
            raise RuntimeError("this forward pass ran under rnnlab.no_grad(): it kept nothing to backpropagate")
        pack = cache.packing
        dyt = None
        if dy is not None and pack is not None:
            dyt = pack.gather(dy)   # (S, B, H), sorted rows in step order; padding never read
        elif dy is not None:
            dyt = dy.transpose(1, 0, 2)
            if self.reverse:
                dyt = dyt[::-1]
        dstate = [np.zeros_like(hs[0]) if s is None else np.array(s, dtype=hs.dtype)
                  for s in (dstateT if dstateT is not None else (None,) * cell.state_size)]
        if pack is not None:
            dstate = [pack.sort_rows(d) for d in dstate]
        W_h = cell.params["W_h"]
        kernel = _kernel(cell, pack)
        if isinstance(xt, Tokens):   # no dx: the rows of dXW are summed per token (layers.tokens)
            token_grad, x_blocks, dxt = TokenGradient(xt, W_h.shape[1], hs.dtype), xt.ids, None
        else:
            token_grad, x_blocks = None, xt
            dxt = self.workspace.empty("dx", xt.shape, hs.dtype) if kernel is not None \
                else np.empty(xt.shape, dtype=hs.dtype)
        if cache.parts is not None:
            dstate = self._split_backward(kernel, dyt, dstate, cache, dxt, token_grad)
        else:
            if kernel is None:
                chunks = self._reference_backward(dyt, dstate, steps, W_h, None if pack is None else pack.active)
            elif pack is not None:
                chunks = kernel.backward(cell, dyt, dstate, steps, W_h, CHUNK, self.workspace, active=pack.active)
            else:
                chunks = kernel.backward(cell, dyt, dstate, steps, W_h, CHUNK, self.workspace)
            for t0, t1, dXW, dHW in chunks:  # from the last time steps to the first; dstate -> dstate_0
                self._weight_grads(x_blocks[t0:t1], hs[t0:t1], dXW, dHW, None if dxt is None else dxt[t0:t1],
                                   cell.grads, token_grad)
        if pack is not None:
            dstate = [pack.unsort_rows(d) for d in dstate]
        if token_grad is not None:
            token_grad.finish(cell.params["W_x"], cell.grads)
            return None, tuple(dstate)
        if pack is not None:   # dXW is 0 on the padding, and so is dx
            return pack.scatter(dxt), tuple(dstate)
        if self.reverse:
            dxt = dxt[::-1]
        # A transposed view, not a copy: the layer below (or an embedding) reads it as it is.
        return dxt.transpose(1, 0, 2), tuple(dstate)

    def _split_backward(self, kernel: Any, dyt: np.ndarray | None, dstate: list, cache: RecurrentCache,
                        dxt: np.ndarray | None, token_grad: TokenGradient | None) -> list:
        """BPTT with the batch rows split over threads (see rnnlab.fast.parallel).

        Each block accumulates its weight gradients privately; they are added
        to the cell's in block order, so the result does not depend on timing.
        """
        cell, W_h, hs = self.cell, self.cell.params["W_h"], cache.hs
        xt = cache.x.ids if token_grad is not None else cache.x

        def block(k: int, rows: slice) -> tuple[dict, np.ndarray | None, list, TokenGradient | None]:
            grads = {name: np.zeros_like(cell.grads[name]) for name in ("W_h", "W_x", "b")}
            dstate_k = [d[rows].copy() for d in dstate]
            x_k, h_k = np.ascontiguousarray(xt[:, rows]), np.ascontiguousarray(hs[:, rows])
            sums_k = None if token_grad is None else TokenGradient(token_grad.tokens, W_h.shape[1], hs.dtype)
            dx_k = None if token_grad is not None else np.empty(x_k.shape, dtype=hs.dtype)
            dy_k = None if dyt is None else dyt[:, rows]
            steps_k, ws_k = cache.steps[k], self.workspace.sub(k)
            for t0, t1, dXW, dHW in kernel.backward(cell, dy_k, dstate_k, steps_k, W_h, CHUNK, ws_k):
                self._weight_grads(x_k[t0:t1], h_k[t0:t1], dXW, dHW, None if dx_k is None else dx_k[t0:t1],
                                   grads, sums_k)
            return grads, dx_k, dstate_k, sums_k

        results = parallel.run(block, cache.parts)
        for (grads, dx_k, _, sums_k), rows in zip(results, cache.parts):
            for name, g in grads.items():
                cell.grads[name] += g
            if token_grad is not None:
                token_grad.merge(sums_k)
            else:
                dxt[:, rows] = dx_k
        return [np.concatenate([r[2][i] for r in results]) for i in range(len(dstate))]

    def _weight_grads(self, xt: np.ndarray, h_prev: np.ndarray, dXW: np.ndarray, dHW: np.ndarray,
                      dxt: np.ndarray | None, grads: dict, token_grad: TokenGradient | None = None) -> None:
        """The products over a block of time steps: dW_h, db and dW_x into ``grads``, dx into ``dxt``;
        for token input, ``xt`` holds the block's ids, whose rows of dXW ``token_grad`` sums instead."""
        cell = self.cell
        n, GH = dXW.shape[0] * dXW.shape[1], dXW.shape[2]
        dXW2 = dXW.reshape(n, GH)
        if cell.project_bias:
            grads["b"] += dXW2.sum(axis=0)
        # one array for both (the LSTM's kernel: dxw == dhw)
        same = dHW.shape == dXW.shape and dHW.strides == dXW.strides and dHW.ctypes.data == dXW.ctypes.data
        if bf16.active(dXW2):   # --precision bf16: each operand rounded once, not once per product
            dXW2 = bf16.convert(dXW2)
        dHW2 = dXW2 if same else dHW.reshape(n, GH)
        # bf16 operands under --precision bf16 (rnnlab.fast.bf16), else NumPy's float32/float64
        bf16.mm(h_prev.reshape(n, -1).T, dHW2, grads["W_h"], accumulate=True)
        if token_grad is not None:
            token_grad.add(xt, dXW.reshape(n, GH))
            return
        D = xt.shape[2]
        bf16.mm(xt.reshape(n, D).T, dXW2, grads["W_x"], accumulate=True)
        bf16.mm(dXW2, cell.params["W_x"].T, out=dxt.reshape(n, D))

    def _reference_backward(self, dyt: np.ndarray | None, dstate: list, steps: list, W_h: np.ndarray,
                            active: list | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """The reference BPTT: all T steps as one block; leaves dstate_0 in ``dstate``.

        ``active`` as in :meth:`_reference_forward`: a step with n_t < B differentiates rows
        [:n_t]; rows [n_t:] only copied their state, so their dXW_t = dHW_t = 0 and their dstate
        passes through unchanged.
        """
        T, B = len(steps), dstate[0].shape[0]
        dXW = np.empty((T, B, W_h.shape[1]), dtype=W_h.dtype)
        dHW = np.empty_like(dXW)
        for t in range(T - 1, -1, -1):
            if active is not None and active[t] < B:
                n = active[t]
                d_n = [d[:n] for d in dstate]   # views: rows [:n] are updated in place
                if dyt is not None:
                    d_n[0] += dyt[t, :n]
                dXW[t, :n], dHW[t, :n], dprev = self.cell.step_backward(tuple(d_n), steps[t])
                dXW[t, n:] = 0
                dHW[t, n:] = 0
                d_n[0][...] = dHW[t, :n] @ W_h.T + (0 if dprev[0] is None else dprev[0])
                for d, v in zip(d_n[1:], dprev[1:]):
                    d[...] = 0 if v is None else v
                continue
            if dyt is not None:
                dstate[0] += dyt[t]
            dXW[t], dHW[t], dprev = self.cell.step_backward(tuple(dstate), steps[t])
            dh_prev = dHW[t] @ W_h.T
            if dprev[0] is not None:
                dh_prev += dprev[0]
            dstate[:] = [dh_prev] + [np.zeros_like(dstate[0]) if d is None else d for d in dprev[1:]]
        yield 0, T, dXW, dHW
