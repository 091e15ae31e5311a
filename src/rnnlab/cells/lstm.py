"""LSTM cell (Hochreiter & Schmidhuber 1997; gate order i, f, g, o as in PyTorch).

Forward, for one step, with a = x_t W_x + b + h_{t-1} W_h split in four::

    i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Backward, given dh_t and dc_t (from step t+1)::

    do     = dh_t * tanh(c_t)
    dc     = dc_t + dh_t * o * (1 - tanh(c_t)^2)
    di = dc * g    df = dc * c_{t-1}    dg = dc * i    dc_{t-1} = dc * f
    da_i = di * i(1-i)   da_f = df * f(1-f)   da_g = dg * (1-g^2)   da_o = do * o(1-o)
    dxw_t = dhw_t = da                 (dh_{t-1} = da W_h^T is added by the loop)

The forget-gate bias starts at 1 (Gers et al. 2000; Jozefowicz et al. 2015)
so the cell remembers by default.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import init as initializers
from .base import Cell, State, sigmoid


class LSTMStepCache(NamedTuple):
    gates: np.ndarray   # (B, 4H): activated i, f, g, o
    c_prev: np.ndarray  # (B, H)
    tanh_c: np.ndarray  # (B, H): tanh(c_t)


class LSTMCell(Cell):
    gates = 4
    state_size = 2

    def __init__(self, input_size: int, hidden_size: int, *, forget_bias: float = 1.0, **kw: Any) -> None:
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, **kw)

    def init_bias(self, size: int) -> np.ndarray:
        return initializers.forget_bias(np.zeros(size), self.hidden_size, self.forget_bias)

    def step_forward(self, t: int, xw: np.ndarray, hw: np.ndarray, state: State) -> tuple[State, LSTMStepCache]:
        h_prev, c_prev = state
        H = self.hidden_size
        act = np.add(xw, hw)
        c = activate_gates(act, c_prev, H)
        tanh_c = np.tanh(c)
        h = act[:, 3 * H:] * tanh_c
        return (h, c), LSTMStepCache(act, c_prev, tanh_c)

    def step_backward(self, dstate: State, cache: LSTMStepCache) -> tuple[np.ndarray, np.ndarray, tuple]:
        dh, dc_next = dstate
        H = self.hidden_size
        act, c_prev, tanh_c = cache
        f, o = act[:, H:2 * H], act[:, 3 * H:]
        dc = dh * o * (1.0 - tanh_c * tanh_c)
        if dc_next is not None:
            dc += dc_next
        da = gate_grads(act, c_prev, dc, dh * tanh_c, H)
        return da, da, (None, dc * f)


def activate_gates(act: np.ndarray, c_prev: np.ndarray, H: int) -> np.ndarray:
    """Turn pre-activations into i, f, g, o in place and return c_t = f * c_{t-1} + i * g."""
    sigmoid(act[:, :2 * H], out=act[:, :2 * H])             # i, f
    np.tanh(act[:, 2 * H:3 * H], out=act[:, 2 * H:3 * H])   # g
    sigmoid(act[:, 3 * H:], out=act[:, 3 * H:])             # o
    c = act[:, H:2 * H] * c_prev
    c += act[:, :H] * act[:, 2 * H:3 * H]
    return c


def gate_grads(act: np.ndarray, c_prev: np.ndarray, dc: np.ndarray, do: np.ndarray, H: int) -> np.ndarray:
    """Gradient of the four gate pre-activations from dc_t and do (shared with the normalised LSTMs)."""
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    da = np.empty_like(act)
    da[:, :H] = dc * g * i * (1.0 - i)
    da[:, H:2 * H] = dc * c_prev * f * (1.0 - f)
    da[:, 2 * H:3 * H] = dc * i * (1.0 - g * g)
    da[:, 3 * H:] = do * o * (1.0 - o)
    return da
