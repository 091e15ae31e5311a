"""Stacked recurrent layers with dropout between them and an optional projection.

    h^0 = x
    h^l = Layer_l(Dropout(h^{l-1}))   for l = 1..L (no dropout before layer 1)
    y   = h^L W_p        when proj_size is set (linear, no bias: a bottleneck
                         before the output layer, e.g. the IRNN paper's 1024
                         units projected to 512)

Each layer is a :class:`Recurrent` (or :class:`Bidirectional`) around a cell
from the registry. The state is a list with one entry per layer. Backward
runs the layers in reverse, passing each the gradient of its outputs and of
its final state, and returns dx and the list of initial-state gradients.

``forward(x, states0, lengths)`` passes the per-row lengths to every layer
(rnnlab.layers.packing): each layer's outputs are 0 on the padding, and so
stay dropout's and the bias-free projection's; every layer ignores dy there.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..cells import make_cell
from ..module import DEFAULT_DTYPE, Module
from .bidirectional import Bidirectional
from .dropout import Dropout
from .linear import Linear
from .recurrent import Recurrent


class StackCache(NamedTuple):
    layers: list   # per-layer recurrent caches
    drops: list    # per-layer dropout caches (None for layer 0)
    proj: Any      # LinearCache or None
    pad: np.ndarray | None = None  # (B, T, 1) bool, True on padding; only with lengths and a projection


class RNNStack(Module):
    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int | None = None,
                 seed: int = 0, dtype: Any = DEFAULT_DTYPE, **cell_kw: Any) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.cell_name, self.num_layers, self.bidirectional = cell, num_layers, bidirectional
        self.hidden_size = hidden_size
        seeds = np.random.SeedSequence(seed).spawn(3 * num_layers + 1)
        self.layers: list[Module] = []
        self.drops: list[Dropout | None] = []
        size = input_size
        for k in range(num_layers):
            def new_cell(j: int) -> Any:
                return make_cell(cell, size, hidden_size, seed=np.random.default_rng(seeds[3 * k + j]),
                                 dtype=dtype, **cell_kw)
            layer = Bidirectional(new_cell(0), new_cell(1)) if bidirectional else Recurrent(new_cell(0))
            self.layers.append(self.add_child(f"l{k}", layer))
            drop = None
            if k > 0 and dropout > 0:
                drop = self.add_child(f"drop{k}", Dropout(dropout, seed=np.random.default_rng(seeds[3 * k + 2])))
            self.drops.append(drop)
            size = hidden_size * (2 if bidirectional else 1)
        self.proj = None
        if proj_size:
            self.proj = self.add_child("proj", Linear(size, proj_size, bias=False,
                                                      seed=np.random.default_rng(seeds[-1]), dtype=dtype))
            size = proj_size
        self.output_size = size

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    def forward(self, x: np.ndarray, states0: list | None = None,
                lengths: np.ndarray | None = None) -> tuple[tuple[np.ndarray, list], StackCache]:
        states0 = states0 if states0 is not None else [None] * self.num_layers
        if len(states0) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} initial states, got {len(states0)}")
        layer_caches, drop_caches, statesT = [], [], []
        h = x
        for layer, drop, s0 in zip(self.layers, self.drops, states0):
            dcache = None
            if drop is not None:
                h, dcache = drop.forward(h)
            (h, sT), lcache = layer.forward(h, s0, lengths)
            layer_caches.append(lcache)
            drop_caches.append(dcache)
            statesT.append(sT)
        pcache, pad = None, None
        if self.proj is not None:
            h, pcache = self.proj.forward(h)
            if lengths is not None:  # the projection's dW would read dy there: backward zeroes it
                pad = (np.arange(h.shape[1]) >= np.asarray(lengths)[:, None])[..., None]
        return (h, statesT), StackCache(layer_caches, drop_caches, pcache, pad)

    def backward(self, dout: tuple[np.ndarray | None, list | None], cache: StackCache) -> tuple[np.ndarray, list]:
        dy, dstatesT = dout
        dstatesT = dstatesT if dstatesT is not None else [None] * self.num_layers
        if self.proj is not None and dy is not None:
            if cache.pad is not None:
                dy = np.where(cache.pad, 0.0, dy).astype(dy.dtype, copy=False)
            dy = self.proj.backward(dy, cache.proj)
        dstates0 = [None] * self.num_layers
        for k in range(self.num_layers - 1, -1, -1):
            dy, dstates0[k] = self.layers[k].backward((dy, dstatesT[k]), cache.layers[k])
            if self.drops[k] is not None:
                dy = self.drops[k].backward(dy, cache.drops[k])
        return dy, dstates0
