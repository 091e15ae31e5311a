"""The forecasters' layers: the encoder-decoder network and the pinball (quantile) loss.

They live apart from :mod:`rnnlab.tasks.forecast.model` (which builds the networks from a spec)
so that their gradcheck specs (:mod:`rnnlab.gradcheck.specs_forecast`) import nothing else.

* ``encdec`` -- :class:`EncDecForecaster`::

      states = Enc(x_1..x_L)                               final state of every encoder layer
      d_1..d_H = Dec(u_1..u_H; state0 = states)             u_k: the future step's known inputs
      yhat_k = d_k W + b                                    (B, H, Q)

  ``forward(x, u) -> (yhat, cache)``, ``backward(dyhat, cache) -> (dx, du)``; the gradient of
  the decoder's initial state flows into the encoder's final state.

:class:`PinballLoss` (the quantile loss), for predictions ``p (B, H, Q)``, targets ``y (B, H)``
and levels ``q_j``, ``u = y - p``::

    L   = (1/N) sum_{b,k,j} max(q_j u, (q_j - 1) u)          N = B*H*Q
    dp  = (dL/N) (1[u < 0] - q_j)                           (at the kink u = 0: -q_j / N)

With the single level 0.5 it is half the mean absolute error. Gradcheck specs are in
:mod:`rnnlab.gradcheck.specs_forecast`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from . import Linear, RNNStack
from ..init import child_seeds
from ..module import DEFAULT_DTYPE, Module


class EncDecCache(NamedTuple):
    enc: Any
    dec: Any
    out: Any


class EncDecForecaster(Module):
    """Encoder over the window, decoder over the horizon: ``forward(x, u) -> ((B, H, Q), cache)``."""

    def __init__(self, cell: str, input_size: int, future_size: int, hidden_size: int, quantiles: int = 1, *,
                 num_layers: int = 1, seed: int = 0, dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        s = child_seeds(seed, 3)
        self.enc = self.add_child("enc", RNNStack(cell, input_size, hidden_size, num_layers, seed=s[0], dtype=dtype))
        self.dec = self.add_child("dec", RNNStack(cell, future_size, hidden_size, num_layers, seed=s[1], dtype=dtype))
        self.out = self.add_child("out", Linear(hidden_size, quantiles, seed=s[2], dtype=dtype))

    @property
    def rnn(self) -> RNNStack:  # the stack the divergence guard watches
        return self.enc

    def forward(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, EncDecCache]:
        (_, states), ec = self.enc.forward(x)
        (d, _), dc = self.dec.forward(u, states)
        y, oc = self.out.forward(d)
        return y, EncDecCache(ec, dc, oc)

    def backward(self, dy: np.ndarray, cache: EncDecCache) -> tuple[np.ndarray, np.ndarray]:
        dd = self.out.backward(dy, cache.out)
        du, dstates = self.dec.backward((dd, None), cache.dec)
        dx, _ = self.enc.backward((None, dstates), cache.enc)
        return dx, du


class PinballCache(NamedTuple):
    below: np.ndarray    # 1[u < 0] as the prediction's dtype, (B, H, Q)
    q: np.ndarray        # (Q,)
    count: float


class PinballLoss(Module):
    """``forward(pred (..., Q), target (...), quantiles (Q,)) -> (mean pinball loss, cache)``."""

    def forward(self, pred: np.ndarray, target: np.ndarray,
                quantiles: Sequence[float]) -> tuple[float, PinballCache]:
        q = np.asarray(quantiles, dtype=pred.dtype)
        if pred.shape[:-1] != np.shape(target) or pred.shape[-1] != q.size:
            raise ValueError(f"prediction {pred.shape}, target {np.shape(target)} and {q.size} quantiles disagree")
        u = np.asarray(target, dtype=pred.dtype)[..., None] - pred
        below = (u < 0).astype(pred.dtype)
        loss = u * (q - below)   # = max(q u, (q - 1) u)
        count = float(loss.size)
        return float(loss.sum() / max(count, 1.0)), PinballCache(below, q, count)

    def backward(self, dloss: float, cache: PinballCache) -> np.ndarray:
        return (cache.below - cache.q) * (dloss / max(cache.count, 1.0))
