"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016, "Layer Normalization").

Per step (gate order i, f, g, o; derivations in docs/derivations.md, 13.6)::

    a   = LN(x_t W_x; gamma_x) + LN(h_{t-1} W_h; gamma_h) + b
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(LN(c_t; gamma_c, beta_c))

Each example is normalised over its own features, so the cell computes the
same thing in training and evaluation, keeps no running statistics, and
works at batch size 1 (sampling).

**Per gate by default.** ``per_gate=True`` normalises each H-wide gate block
of the two projections on its own (mean and variance over the H units of
that gate); ``per_gate=False`` normalises the whole 4H vector at once, as
Ba et al.'s equations write it. Per gate is the default because the four
blocks feed different nonlinearities and want different scales: a joint
normalisation ties them, so a large candidate block g shrinks the forget
gate's pre-activations of the same example, and a block-wide shift learned
by b is partly undone by the joint mean. Per gate is also the form of
common implementations (e.g. TensorFlow's LayerNormBasicLSTMCell). The cell
state (H features) is one group either way.

As in the BN-LSTM, b is added after the normalisation (``project_bias =
False``: the time loop leaves it out of ``XW``), the projections have no
beta of their own, and beta_c is learned. gamma starts at 1 and beta at 0
(Ba et al.'s initialisation); pass ``gamma=0.1`` to start like the BN-LSTM.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .norm import EPS, NormCache, NormLSTMCell, layer_norm, layer_norm_backward


class LNLSTMCell(NormLSTMCell):
    default_gamma = 1.0

    def __init__(self, input_size: int, hidden_size: int, *, per_gate: bool = True, eps: float = EPS,
                 **kw: Any) -> None:
        self.per_gate, self.eps = per_gate, eps
        super().__init__(input_size, hidden_size, **kw)

    def groups(self, key: str) -> int:
        return self.gates if self.per_gate and key != "c" else 1

    def normalize(self, key: str, t: int, x: np.ndarray) -> tuple[np.ndarray, NormCache]:
        return layer_norm(x, *self.affine(key), groups=self.groups(key), eps=self.eps)

    def normalize_backward(self, key: str, dy: np.ndarray, cache: NormCache) -> np.ndarray:
        dx, dgamma, dbeta = layer_norm_backward(dy, *self.affine(key), cache)
        self.accumulate(key, dgamma, dbeta)
        return dx
