"""Elman RNN cell (tanh, or ReLU to match ``torch.nn.RNN(nonlinearity='relu')``).

Forward, for one step (xw_t = x_t W_x + b is precomputed by the time loop)::

    a_t = x_t W_x + b + h_{t-1} W_h
    h_t = phi(a_t)                    phi = tanh  (or relu)

Backward, given dh_t (from the output and from step t+1)::

    da_t   = dh_t * phi'(a_t)         tanh' = 1 - h_t^2 ;  relu' = [a_t > 0]
    dxw_t  = dhw_t = da_t             (the loop turns these into dW_x, dW_h, db, dx)
    dh_{t-1} = da_t W_h^T             (added by the loop)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .base import Cell, State


class RNNStepCache(NamedTuple):
    h: np.ndarray  # h_t = phi(a_t): both derivatives are functions of it


class RNNCell(Cell):
    """Vanilla recurrent cell: ``h_t = phi(x_t W_x + h_{t-1} W_h + b)``."""

    gates = 1
    state_size = 1

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh", **kw: Any) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.nonlinear_kinks = nonlinearity == "relu"
        super().__init__(input_size, hidden_size, **kw)

    def step_forward(self, t: int, xw: np.ndarray, hw: np.ndarray, state: State) -> tuple[State, RNNStepCache]:
        a = np.add(xw, hw)
        if self.nonlinearity == "tanh":
            h = np.tanh(a, out=a)
        else:
            h = np.maximum(a, 0.0, out=a)
        return (h,), RNNStepCache(h)

    def step_backward(self, dstate: State, cache: RNNStepCache) -> tuple[np.ndarray, np.ndarray, tuple]:
        (dh,) = dstate
        h = cache.h
        if self.nonlinearity == "tanh":
            da = dh * (1.0 - h * h)
        else:
            da = dh * (h > 0)
        return da, da, (None,)
