"""GRU cell in PyTorch's formulation (Cho et al. 2014; gate order r, z, n).

Forward, with xw = x_t W_x + b and hw = h_{t-1} W_h split in three::

    r = sigmoid(xw_r + hw_r)
    z = sigmoid(xw_z + hw_z)
    n = tanh(xw_n + r * (hw_n + b_hn))     # r gates the *projected* state
    h_t = (1 - z) * n + z * h_{t-1}

b holds b_ir+b_hr, b_iz+b_hz and b_in; b_hn stays separate because r
multiplies it. Backward, given dh_t::

    dn = dh_t * (1 - z)        dz = dh_t * (h_{t-1} - n)     dh_{t-1} (direct) = dh_t * z
    da_n = dn * (1 - n^2)      dr = da_n * (hw_n + b_hn)
    da_r = dr * r(1-r)         da_z = dz * z(1-z)
    dxw = [da_r, da_z, da_n]   dhw = [da_r, da_z, da_n * r]    db_hn = sum_batch(da_n * r)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .base import Cell, State, sigmoid


class GRUStepCache(NamedTuple):
    rz: np.ndarray      # (B, 2H): activated r, z
    n: np.ndarray       # (B, H)
    hn: np.ndarray      # (B, H): hw_n + b_hn
    h_prev: np.ndarray  # (B, H)


class GRUCell(Cell):
    gates = 3
    state_size = 1

    def __init__(self, input_size: int, hidden_size: int, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, **kw)
        self.add_param("b_hn", np.zeros(hidden_size, dtype=self.params["b"].dtype))

    def step_forward(self, t: int, xw: np.ndarray, hw: np.ndarray, state: State) -> tuple[State, GRUStepCache]:
        (h_prev,) = state
        H = self.hidden_size
        rz = sigmoid(np.add(xw[:, :2 * H], hw[:, :2 * H]))
        r, z = rz[:, :H], rz[:, H:]
        hn = np.add(hw[:, 2 * H:], self.params["b_hn"])
        n = np.tanh(xw[:, 2 * H:] + r * hn)
        h = n + z * (h_prev - n)
        return (h,), GRUStepCache(rz, n, hn, h_prev)

    def step_backward(self, dstate: State, cache: GRUStepCache) -> tuple[np.ndarray, np.ndarray, tuple]:
        (dh,) = dstate
        H = self.hidden_size
        rz, n, hn, h_prev = cache
        r, z = rz[:, :H], rz[:, H:]
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        dxw = np.empty((dh.shape[0], 3 * H), dtype=dh.dtype)
        dxw[:, :H] = da_n * hn * r * (1.0 - r)
        dxw[:, H:2 * H] = dh * (h_prev - n) * z * (1.0 - z)
        dxw[:, 2 * H:] = da_n
        dhw = dxw.copy()
        dhw[:, 2 * H:] *= r
        self.grads["b_hn"] += dhw[:, 2 * H:].sum(axis=0)
        return dxw, dhw, (dh * z,)
