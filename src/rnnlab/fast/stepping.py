"""One time step for generation, fused: the fast path of :class:`rnnlab.generate.Stepper`.

Generation advances a small batch (1 for sampling, the beam width for beam
search) one character at a time, so each step is a few matrix-vector
products plus work on vectors of a few hundred numbers, where NumPy's cost is
the number of calls, not the arithmetic. The reference stepper calls the
cell's readable ``step_forward``; these runners compute the same equations
with fewer, larger calls:

* all gate nonlinearities of a step in one ``tanh``, with the sigmoid columns'
  weights halved once at construction (``sigmoid(a) = 0.5 + 0.5 tanh(a/2)``,
  as in the training kernels);
* LSTM layers above the first: ``[x_t, h_{t-1}] [W_x; W_h]`` as ONE product
  over the stacked weights (one pass over 2 MB at H=256 instead of two calls);
* the first layer's input projection is a row of a (V, G*H) table (the
  stepper folds the embedding in), so it costs a lookup;
* every intermediate lives in a buffer made once, and the state is updated
  in place;
* with numba installed, the element-wise part of a layer's step is one
  compiled call (:mod:`rnnlab.fast.accel`) instead of about ten NumPy calls.

The tanh RNN and the IRNN have a runner too (:class:`RNNRunner`: one product
with ``W_h``, then the kernel's step), and so have the LN-LSTM and the BN-LSTM
in eval mode (:class:`NormLSTMRunner`: the kernels' normalisation of the input
side, then their step; a BN-LSTM in training mode steps through its own code,
which updates its population statistics).

Under ``--precision bf16`` (:mod:`rnnlab.blas.precision`) the LSTM, GRU and RNN runners' products
go through :func:`rnnlab.fast.bf16.fixed`: weights rounded to bf16 and packed once per runner,
the step's input rounded at each call, float32 accumulation, as in the training and evaluation
loops; the first layer's table stays float32 (evaluation's token path projects in float32 too).

``runner.step(inp, state, t) -> state``: ``inp`` is the (B,) ids for the first
layer and the (B, D) output of the layer below otherwise. ``tests/test_generate.py``
asserts that the runners equal the reference stepper and the full forward.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cells import BNLSTMCell
from . import accel, bf16, bnlstm, gru, lnlstm, lstm, rnn


class CellRunner:
    """The reference step of one layer: ``cell.step_forward`` (the first layer reads its table)."""

    def __init__(self, cell: Any, table: np.ndarray | None, batch: int, dtype: Any) -> None:
        self.cell, self.table = cell, table
        self.xw = np.empty((batch, cell.params["W_x"].shape[1]), dtype)
        self.hw = np.empty((batch, cell.params["W_h"].shape[1]), dtype)

    def step(self, inp: np.ndarray, state: tuple, t: int) -> tuple:
        p = self.cell.params
        if self.table is not None:
            np.take(self.table, inp, axis=0, out=self.xw)
        else:
            np.matmul(inp, p["W_x"], out=self.xw)
            if self.cell.project_bias:
                self.xw += p["b"]
        np.matmul(state[0], p["W_h"], out=self.hw)
        return self.cell.step_forward(t, self.xw, self.hw, state)[0]


class LSTMRunner:
    def __init__(self, cell: Any, table: np.ndarray | None, batch: int, dtype: Any) -> None:
        H, D = cell.hidden_size, cell.input_size
        self.scale, self.shift = lstm.preact_scale(H, dtype), lstm.preact_shift(H, dtype)
        scale, p = self.scale, cell.params
        self.table = None if table is None else np.ascontiguousarray(table * scale, dtype=dtype)
        if table is not None:  # first layer: a table row (b included) plus h W_h
            self.W_h = np.ascontiguousarray(p["W_h"] * scale, dtype=dtype)
            self.prod_h = bf16.fixed(self.W_h, batch)
            self.hw = np.empty((batch, 4 * H), dtype=dtype)
            self.b = np.zeros(4 * H, dtype=dtype)
        else:  # one product over [x, h] and the stacked weights, then b
            self.W = np.ascontiguousarray(np.vstack([p["W_x"], p["W_h"]]) * scale, dtype=dtype)
            self.b = (p["b"] * scale).astype(dtype)
            self.hw = np.zeros((1, 4 * H), dtype=dtype)   # nothing more to add
            self.xh = np.empty((batch, D + H), dtype=dtype)
            # batch 1: (G, D+H) @ (D+H,) is the faster matrix-vector product (18 vs 24 us at H=256)
            self.prod = bf16.fixed(self.W, batch)
            self.W_T = np.ascontiguousarray(self.W.T) if batch == 1 and not bf16.active(self.W) else None
        self.D = D
        self.a = np.empty((batch, 4 * H), dtype=dtype)
        self.tmp, self.tmp2 = np.empty((batch, H), dtype=dtype), np.empty((batch, H), dtype=dtype)

    def step(self, inp: np.ndarray, state: tuple, t: int = 0) -> tuple:
        h, c = state
        a = self.a
        if self.table is not None:
            np.take(self.table, inp, axis=0, out=a)
            self.prod_h(h, self.hw)
        else:
            self.xh[:, :self.D] = inp
            self.xh[:, self.D:] = h
            if self.W_T is not None:
                np.matmul(self.W_T, self.xh[0], out=a[0])
            else:
                self.prod(self.xh, a)
        compiled = accel.steps(a.dtype)
        if compiled is not None:  # one compiled loop: a + hw + b -> gates -> c, h in place
            compiled.lstm_forward(a, self.hw, self.b, self.scale, self.shift, c, c, self.tmp, h)
        else:
            lstm.forward_step(a, self.hw, self.b, self.scale, self.shift, c, c, self.tmp, h, self.tmp2)
        return state


class GRURunner:
    def __init__(self, cell: Any, table: np.ndarray | None, batch: int, dtype: Any) -> None:
        H = cell.hidden_size
        scale = gru.preact_scale(H, dtype)
        p = cell.params
        self.table = None if table is None else np.ascontiguousarray(table * scale, dtype=dtype)
        # the first layer reads table rows (which include b); the others multiply by W_x, then add b
        self.W_x = None if table is not None else np.ascontiguousarray(p["W_x"] * scale, dtype=dtype)
        self.b = np.zeros(3 * H, dtype=dtype) if table is not None else (p["b"] * scale).astype(dtype)
        self.W_h = np.ascontiguousarray(p["W_h"] * scale, dtype=dtype)
        self.prod_x = None if self.W_x is None else bf16.fixed(self.W_x, batch)
        self.prod_h = bf16.fixed(self.W_h, batch)
        self.b_hn = p["b_hn"].astype(dtype)
        self.xw = np.empty((batch, 3 * H), dtype=dtype)
        self.hw = np.empty((batch, 3 * H), dtype=dtype)
        self.tmp = np.empty((batch, H), dtype=dtype)

    def step(self, inp: np.ndarray, state: tuple, t: int = 0) -> tuple:
        (h,) = state
        if self.table is not None:
            np.take(self.table, inp, axis=0, out=self.xw)
        else:
            self.prod_x(inp, self.xw)
        self.prod_h(h, self.hw)
        compiled = accel.steps(h.dtype)
        step = compiled.gru_forward if compiled is not None else gru.forward_step
        step(self.xw, self.hw, self.b, self.b_hn, h, self.tmp, h)
        return state


class RNNRunner:
    """The tanh RNN and the IRNN: h = phi(xw + h W_h), xw a table row (b included) or x W_x + b."""

    def __init__(self, cell: Any, table: np.ndarray | None, batch: int, dtype: Any) -> None:
        H, p = cell.hidden_size, cell.params
        self.relu = cell.nonlinearity == "relu"
        self.table = table
        self.W_x = None if table is not None else np.ascontiguousarray(p["W_x"], dtype=dtype)
        self.b = np.zeros(H, dtype=dtype) if table is not None else p["b"].astype(dtype)
        self.W_h = np.ascontiguousarray(p["W_h"], dtype=dtype)
        self.prod_x = None if self.W_x is None else bf16.fixed(self.W_x, batch)
        self.prod_h = bf16.fixed(self.W_h, batch)
        self.xw, self.a = np.empty((batch, H), dtype=dtype), np.empty((batch, H), dtype=dtype)

    def step(self, inp: np.ndarray, state: tuple, t: int = 0) -> tuple:
        (h,) = state
        if self.table is not None:
            np.take(self.table, inp, axis=0, out=self.xw)
        else:
            self.prod_x(inp, self.xw)
        self.prod_h(h, self.a)
        compiled = accel.steps(h.dtype)
        (compiled.rnn_forward if compiled is not None else rnn.forward_step)(self.a, self.xw, self.b, self.relu)
        np.copyto(h, self.a)
        return state


class NormLSTMRunner:
    """LN-LSTM, and BN-LSTM in eval mode (statistics of population slot ``cell.stat_index(t)``)."""

    def __init__(self, cell: Any, table: np.ndarray | None, batch: int, dtype: Any) -> None:
        H, p = cell.hidden_size, cell.params
        G = 4 * H
        self.cell, self.bn = cell, isinstance(cell, BNLSTMCell)
        self.fallback = CellRunner(cell, table, batch, dtype) if self.bn and cell.training else None
        self.scale, self.shift = lstm.preact_scale(H, dtype), lstm.preact_shift(H, dtype)
        self.gx, self.gh, self.bias = ((p[k] * self.scale).astype(dtype) for k in ("gamma_x", "gamma_h", "b"))
        self.gamma_c, self.beta_c = p["gamma_c"].astype(dtype), p["beta_c"].astype(dtype)
        self.table = table    # a cell that normalises xw adds b itself: not in the table
        self.W_x = None if table is not None else np.ascontiguousarray(p["W_x"], dtype=dtype)
        self.W_h = np.ascontiguousarray(p["W_h"], dtype=dtype)
        self.xw, self.xh = np.empty((1, batch, G), dtype), np.empty((batch, G), dtype)
        self.act = np.empty((batch, G), dtype)
        self.xc, self.tu = np.empty((batch, H), dtype), np.empty((batch, H), dtype)
        self.tmp, self.tmp_h = np.empty((batch, G), dtype), np.empty((batch, H), dtype)
        if self.bn:
            self.slots: dict[int, tuple] = {}
        else:
            self.groups_x, self.groups_h = cell.groups("x"), cell.groups("h")
            self.s_x, self.s_h = np.empty((1, batch, self.groups_x), dtype), np.empty((batch, self.groups_h), dtype)
            self.s_c = np.empty((batch, 1), dtype)

    def _stats(self, t: int) -> tuple:
        """(mean, var, s) of x, h and c for population slot stat_index(t), made once per slot."""
        k = self.cell.stat_index(t)
        if k not in self.slots:
            out = []
            for key in ("x", "h", "c"):
                mean = self.cell.buffers[f"mean_{key}"][k].astype(self.xh.dtype)
                var = self.cell.buffers[f"var_{key}"][k].astype(self.xh.dtype)
                out.append((mean, var, (1.0 / np.sqrt(var + self.cell.eps)).astype(self.xh.dtype)))
            self.slots[k] = tuple(out)
        return self.slots[k]

    def step(self, inp: np.ndarray, state: tuple, t: int = 0) -> tuple:
        if self.fallback is not None:
            return self.fallback.step(inp, state, t)
        h, c = state
        xw = self.xw
        if self.table is not None:
            np.take(self.table, inp, axis=0, out=xw[0])
        else:
            np.matmul(inp, self.W_x, out=xw[0])
        compiled, eps = accel.steps(h.dtype), self.cell.eps
        if self.bn:
            (mu_x, var_x, s_x), (mu_h, var_h, s_h), (mu_c, var_c, s_c) = self._stats(t)
            args = (xw, False, eps, mu_x[None], var_x[None], s_x[None])
            compiled.bn_normalize(*args) if compiled is not None else bnlstm.bn_normalize(*args, tmp=self.tmp)
            np.matmul(h, self.W_h, out=self.xh)
            args = (xw[0], self.xh, False, eps, mu_h, var_h, s_h, self.gx, self.gh, self.bias, self.scale, self.shift,
                    c, self.act, c, mu_c, var_c, s_c, self.gamma_c, self.beta_c, self.xc, self.tu, h)
            if compiled is not None:
                compiled.bnlstm_forward(*args)
            else:
                bnlstm.forward_step(*args, tmp=self.tmp, tmp_h=self.tmp_h)
            return state
        if compiled is not None:
            compiled.ln_rows(xw, self.groups_x, eps, self.s_x)
        else:
            lnlstm.ln_rows(xw, self.groups_x, eps, self.s_x, tmp=self.tmp)
        np.matmul(h, self.W_h, out=self.xh)
        args = (xw[0], self.xh, self.groups_h, eps, self.gx, self.gh, self.bias, self.scale, self.shift, c,
                self.gamma_c, self.beta_c, self.act, self.s_h, c, self.xc, self.s_c, self.tu, h)
        if compiled is not None:
            compiled.lnlstm_forward(*args)
        else:
            lnlstm.forward_step(*args, tmp=self.tmp, tmp_h=self.tmp_h)
        return state


RUNNERS: dict[Any, type] = {lstm: LSTMRunner, gru: GRURunner, rnn: RNNRunner, lnlstm: NormLSTMRunner,
                            bnlstm: NormLSTMRunner}
