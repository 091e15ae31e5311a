"""What a recurrent cell is, and how the shared time loop talks to it.

A cell owns three fused parameters, gates stacked along the last axis in
PyTorch's order::

    W_x : (D, G*H)   input-to-gates
    W_h : (H, G*H)   hidden-to-gates
    b   : (G*H,)     gate bias (added on the input side)

The time loop in :mod:`rnnlab.layers.recurrent` does the heavy matrix work so
that every cell gets it for free:

* ``XW = X @ W_x + b`` for all time steps in one product before the loop,
* ``HW_t = h_{t-1} @ W_h`` once per step (all gates in one product),
* after the backward loop, ``dW_x``, ``dW_h`` and ``db`` as a few large
  products over all steps instead of T small ones.

A cell only writes the element-wise part of one step:

``step_forward(t, xw, hw, state) -> (new_state, cache)``
    ``state`` is a tuple whose first entry is the hidden state ``h`` (LSTM
    adds the cell state ``c``). ``t`` is the time index (used by cells that
    keep per-step statistics, such as BN-LSTM).

``step_backward(dstate, cache) -> (dxw, dhw, dstate_prev)``
    ``dstate`` is the gradient of the step's output state. Returns the
    gradient of the input pre-activation ``xw``, of the hidden pre-activation
    ``hw`` (they differ for the GRU, whose reset gate multiplies the hidden
    part), and of the previous state through paths *other* than ``hw``
    (``None`` entries mean zero). The loop adds ``dhw @ W_h.T`` to ``dh_prev``.

Parameters beyond the three fused ones (the GRU's ``b_hn``) live in the cell,
which accumulates their gradients itself inside ``step_backward``. A cell
whose ``project_bias`` is False (the normalised LSTMs) also owns ``b``: the
loop leaves it out of ``XW`` and ``db``, and the cell adds and differentiates
it itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as initializers
from ..module import DEFAULT_DTYPE, Module

State = tuple[np.ndarray, ...]


class Cell(Module):
    """Base class for recurrent cells; subclasses set ``gates`` and ``state_size``."""

    abstract = True         # not itself a layer: the gradcheck walk skips it
    gates: int = 1          # G: how many H-wide blocks the fused matrices hold
    state_size: int = 1     # entries of the state tuple: 1 for (h,), 2 for (h, c)
    nonlinear_kinks = False  # True where the cell uses ReLU (gradcheck skips kink crossings)
    # True: the loop adds b to XW and accumulates db = sum(dXW). False: the cell
    # adds ``b`` itself inside step_forward (e.g. after normalising xw, which
    # would cancel a bias added before) and accumulates ``grads["b"]`` in
    # step_backward; the loop then passes xw = x_t W_x without b.
    project_bias: bool = True

    def __init__(self, input_size: int, hidden_size: int, *, seed: int | np.random.Generator | None = 0,
                 dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rng = np.random.default_rng(seed)
        G, H = self.gates, hidden_size
        self.add_param("W_x", self.init_input_weights((input_size, G * H), rng).astype(dtype))
        self.add_param("W_h", self.init_recurrent_weights((H, G * H), rng).astype(dtype))
        self.add_param("b", self.init_bias(G * H).astype(dtype))

    # -- initialisation (override per cell) -------------------------------------
    def init_input_weights(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return initializers.per_gate(initializers.glorot_uniform, self.gates)(shape, rng)

    def init_recurrent_weights(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return initializers.per_gate(initializers.orthogonal, self.gates)(shape, rng)

    def init_bias(self, size: int) -> np.ndarray:
        return np.zeros(size)

    # -- state ------------------------------------------------------------------
    def initial_state(self, batch: int, dtype: Any = None) -> State:
        dtype = dtype or self.dtype
        return tuple(np.zeros((batch, self.hidden_size), dtype=dtype) for _ in range(self.state_size))

    # -- one step (override per cell) -----------------------------------------------
    def step_forward(self, t: int, xw: np.ndarray, hw: np.ndarray, state: State) -> tuple[State, Any]:
        raise NotImplementedError

    def step_backward(self, dstate: State, cache: Any) -> tuple[np.ndarray, np.ndarray, tuple]:
        raise NotImplementedError


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically safe logistic: 0.5 * (1 + tanh(x / 2)) never overflows."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out
