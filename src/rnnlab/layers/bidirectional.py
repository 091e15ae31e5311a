"""Bidirectional wrapper: one cell reads left-to-right, another right-to-left.

    (y_f, s_f) = fwd(x)        (y_b, s_b) = bwd(x reversed in time, outputs re-reversed)
    y = [y_f ; y_b]            (B, T, 2H), as torch.nn.LSTM(bidirectional=True)

Backward splits dy in halves, runs both directions' BPTT and adds the two
input gradients. The state is the pair (state_f, state_b).

With ``lengths`` (rnnlab.layers.packing) the backward direction of row b
starts at its own last token, position lengths[b]-1, and runs to 0; both
halves of y are 0 on the padding.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..cells.base import Cell
from ..module import Module
from .recurrent import Recurrent, RecurrentCache


class BidirectionalCache(NamedTuple):
    fwd: RecurrentCache
    bwd: RecurrentCache


class Bidirectional(Module):
    def __init__(self, cell_fwd: Cell, cell_bwd: Cell) -> None:
        super().__init__()
        self.fwd = self.add_child("fwd", Recurrent(cell_fwd))
        self.bwd = self.add_child("bwd", Recurrent(cell_bwd, reverse=True))

    @property
    def input_size(self) -> int:
        return self.fwd.input_size

    @property
    def output_size(self) -> int:
        return 2 * self.fwd.hidden_size

    def forward(self, x: np.ndarray, state0: tuple | None = None,
                lengths: np.ndarray | None = None) -> tuple[tuple, BidirectionalCache]:
        s_f, s_b = state0 if state0 is not None else (None, None)
        (y_f, sT_f), c_f = self.fwd.forward(x, s_f, lengths)
        (y_b, sT_b), c_b = self.bwd.forward(x, s_b, lengths)
        return (np.concatenate([y_f, y_b], axis=-1), (sT_f, sT_b)), BidirectionalCache(c_f, c_b)

    def backward(self, dout: tuple, cache: BidirectionalCache) -> tuple[np.ndarray, tuple]:
        dy, dstate = dout
        H = self.fwd.hidden_size
        ds_f, ds_b = dstate if dstate is not None else (None, None)
        dy_f = None if dy is None else dy[..., :H]
        dy_b = None if dy is None else dy[..., H:]
        dx_f, ds0_f = self.fwd.backward((dy_f, ds_f), cache.fwd)
        dx_b, ds0_b = self.bwd.backward((dy_b, ds_b), cache.bwd)
        return dx_f + dx_b, (ds0_f, ds0_b)
