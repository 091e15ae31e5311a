"""The character-level language model: tokens -> recurrent stack -> logits.

    e_t = Embed(x_t)          (embedding of size E, or one-hot of size V)
    h_t = RNNStack(e_t)       (L layers of the chosen cell, dropout between them)
    z_t = Dropout(h_t) W_o + b_o     (V logits per position)

``forward(ids, states0)`` returns ``((logits, statesT), cache)``; the final
states are handed back in by the trainer for truncated BPTT. ``backward``
takes ``(dlogits, dstatesT)`` and returns the initial-state gradients (ids
have none).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..layers import Dropout, Embedding, Linear, OneHot, Recurrent, RNNStack
from ..module import DEFAULT_DTYPE, Module


# Embedding + first input projection as one table lookup (rnnlab.layers.tokens); False: the
# embedding's vectors go through the layer's product, as written (tests compare the two).
FUSE_INPUT = True


@dataclass
class ModelConfig:
    vocab_size: int
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    embedding_size: int = 64     # 0 means one-hot input
    dropout: float = 0.0
    proj_size: int = 0           # 0 means no projection
    cell_options: dict = field(default_factory=dict)  # e.g. {"identity_scale": 0.5} for irnn
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class CharRNNCache(NamedTuple):
    embed: Any
    rnn: Any
    drop: Any
    out: Any


class CharRNN(Module):
    def __init__(self, config: ModelConfig, dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.config = config
        seeds = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)]
        if config.embedding_size > 0:
            self.embed = self.add_child("embed", Embedding(config.vocab_size, config.embedding_size,
                                                           seed=seeds[0], dtype=dtype))
        else:
            self.embed = self.add_child("embed", OneHot(config.vocab_size, dtype=dtype))
        self.rnn = self.add_child("rnn", RNNStack(
            config.cell, self.embed.output_size, config.hidden_size, config.num_layers,
            dropout=config.dropout, proj_size=config.proj_size or None, seed=int(seeds[1].integers(2**31)),
            dtype=dtype, **config.cell_options))
        self.drop = None
        if config.dropout > 0:
            self.drop = self.add_child("drop", Dropout(config.dropout, seed=seeds[2]))
        self.out = self.add_child("out", Linear(self.rnn.output_size, config.vocab_size, seed=seeds[3], dtype=dtype))

    def initial_states(self, batch: int) -> list:
        return [None] * self.config.num_layers

    def forward(self, ids: np.ndarray, states0: list | None = None) -> tuple[tuple[np.ndarray, list], CharRNNCache]:
        if self.fuse_input(ids):
            x, ecache = self.embed.tokens(ids), None   # the first layer looks rows up (layers.tokens)
        else:
            x, ecache = self.embed.forward(ids)
        (h, statesT), rcache = self.rnn.forward(x, states0)
        dcache = None
        if self.drop is not None:
            h, dcache = self.drop.forward(h)
        logits, ocache = self.out.forward(h)
        return (logits, statesT), CharRNNCache(ecache, rcache, dcache, ocache)

    def backward(self, dout: tuple[np.ndarray, list | None], cache: CharRNNCache) -> list:
        dlogits, dstatesT = dout
        dh = self.out.backward(dlogits, cache.out)
        if self.drop is not None:
            dh = self.drop.backward(dh, cache.drop)
        dx, dstates0 = self.rnn.backward((dh, dstatesT), cache.rnn)
        if cache.embed is not None:
            self.embed.backward(dx, cache.embed)
        return dstates0

    def fuse_input(self, ids: np.ndarray) -> bool:
        """Feed the first recurrent layer token ids instead of vectors (same result, fewer FLOPs):
        worth it when the batch has more positions than the vocabulary has rows."""
        return FUSE_INPUT and isinstance(self.rnn.layers[0], Recurrent) and np.size(ids) > self.config.vocab_size

    def rng_modules(self) -> list[tuple[str, Module]]:
        """Modules that own a random generator (dropout), for checkpointing their state."""
        return [(name, m) for name, m in self.modules() if isinstance(m, Dropout)]
