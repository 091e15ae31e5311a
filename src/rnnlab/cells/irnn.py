"""IRNN: a ReLU RNN whose recurrent matrix starts as a (scaled) identity.

Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks of
Rectified Linear Units" (arXiv 1504.00941)::

    h_t = relu(x_t W_x + h_{t-1} W_h + b)
    W_h = scale * I,   W_x ~ N(0, input_std^2) (0.001 in the paper),   b = 0

At initialisation the state is copied forward unchanged, so gradients neither
vanish nor explode through time; the price is that nothing bounds h_t. With
too high a learning rate the identity drifts above 1 in norm, h_t grows
geometrically and the softmax overflows; clip gradients, keep the learning
rate small, or use scale < 1 (the paper used 0.01*I on TIMIT).
Forward and backward are those of :class:`~rnnlab.cells.rnn.RNNCell` with
``nonlinearity='relu'``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as initializers
from .rnn import RNNCell


class IRNNCell(RNNCell):
    """ReLU RNN with identity-initialised recurrence."""

    def __init__(self, input_size: int, hidden_size: int, *, identity_scale: float = 1.0,
                 input_std: float = 0.001, **kw: Any) -> None:
        self.identity_scale = identity_scale
        self.input_std = input_std
        kw.setdefault("nonlinearity", "relu")
        super().__init__(input_size, hidden_size, **kw)

    def init_input_weights(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return initializers.normal(self.input_std)(shape, rng)

    def init_recurrent_weights(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return initializers.scaled_identity(self.identity_scale)(shape, rng)
