"""Batch-normalised LSTM (Cooijmans, Ballas, Laurent, Gülçehre & Courville 2016, "Recurrent Batch Normalization").

Per step t (gate order i, f, g, o as everywhere in rnnlab; derivations in
docs/derivations.md, section 13.4-13.5)::

    a   = BN_x^(t)(x_t W_x; gamma_x) + BN_h^(t)(h_{t-1} W_h; gamma_h) + b
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(BN_c^(t)(c_t; gamma_c, beta_c))

* The two projections are normalised separately, then b is added: a bias
  inside BN_x would be cancelled by the mean subtraction (value and gradient),
  so this cell sets ``project_bias = False`` and the time loop leaves b out of
  ``XW``. beta_x and beta_h are omitted (b is the shift); beta_c is learned.
* gamma_x = gamma_h = gamma_c = 0.1 and beta_c = 0 at the start, as in the
  paper's experiments: with gamma = 1 the normalised pre-activations have
  unit variance, land in the flat parts of sigmoid and tanh, and the
  gradient through time vanishes. The forget-gate bias starts at 1 as in
  :class:`~rnnlab.cells.lstm.LSTMCell` (b now acts after the normalisation).
* **Training mode**: every BN uses the statistics of step t's batch only (so
  a batch needs B >= 2: one example normalises to beta), and folds them into
  per-step population statistics: ``mean <- (1-m) mean + m mu`` and
  ``var <- (1-m) var + m N/(N-1) sigma^2`` (unbiased, as torch's
  ``running_var``), m = ``momentum``. Steps at or past ``max_steps`` share the
  last slot.
* **Eval mode**: step t uses population slot t; past the last trained step
  (``trained_steps``) it reuses that step's statistics (the paper's rule for
  sequences longer than any trained one). BN is then a fixed affine map per
  feature. Sampling runs in eval mode, which is what makes B = 1 work.

With truncated BPTT, t counts steps within a chunk (the state carries over),
so slot t holds the statistics of chunk position t.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .norm import EPS, NormCache, NormLSTMCell, batch_norm, batch_norm_backward, batch_stats


class BNLSTMCell(NormLSTMCell):
    """BN-LSTM; buffers ``mean_{x,h,c}``, ``var_{x,h,c}`` (max_steps, F) and ``trained_steps`` (1,)."""

    default_gamma = 0.1

    def __init__(self, input_size: int, hidden_size: int, *, max_steps: int = 256, momentum: float = 0.1,
                 eps: float = EPS, **kw: Any) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps, self.momentum, self.eps = max_steps, momentum, eps
        super().__init__(input_size, hidden_size, **kw)
        dtype = self.params["b"].dtype
        for key in ("x", "h", "c"):
            size = self.params[f"gamma_{key}"].size
            self.add_buffer(f"mean_{key}", np.zeros((max_steps, size), dtype=dtype))
            self.add_buffer(f"var_{key}", np.ones((max_steps, size), dtype=dtype))
        # a float so that astype() and checkpoints treat it like every other buffer
        self.add_buffer("trained_steps", np.zeros(1, dtype=dtype))

    def stat_index(self, t: int) -> int:
        """The population slot that eval-mode step t reads: t, capped at the last trained step."""
        last = max(int(self.buffers["trained_steps"][0]), 1) - 1
        return min(t, last)

    def normalize(self, key: str, t: int, x: np.ndarray) -> tuple[np.ndarray, NormCache]:
        gamma, beta = self.affine(key)
        if not self.training:
            k = self.stat_index(t)
            mean, var = self.buffers[f"mean_{key}"][k], self.buffers[f"var_{key}"][k]
            return batch_norm(x, gamma, beta, mean, var, False, self.eps)
        if x.shape[0] < 2:
            raise ConfigError("BN-LSTM in training mode needs a batch of at least 2 (batch statistics of one "
                              "example are degenerate); use eval() for one stream, e.g. when sampling")
        mu, var = batch_stats(x)
        self._update_population(key, t, mu, var, x.shape[0])
        return batch_norm(x, gamma, beta, mu, var, True, self.eps)

    def _update_population(self, key: str, t: int, mu: np.ndarray, var: np.ndarray, n: int) -> None:
        slot, m = min(t, self.max_steps - 1), self.momentum
        mean_buf, var_buf = self.buffers[f"mean_{key}"][slot], self.buffers[f"var_{key}"][slot]
        mean_buf *= 1.0 - m
        mean_buf += m * mu
        var_buf *= 1.0 - m
        var_buf += (m * n / (n - 1)) * var
        trained = self.buffers["trained_steps"]
        trained[0] = max(trained[0], slot + 1)

    def normalize_backward(self, key: str, dy: np.ndarray, cache: NormCache) -> np.ndarray:
        dx, dgamma, dbeta = batch_norm_backward(dy, *self.affine(key), cache)
        self.accumulate(key, dgamma, dbeta)
        return dx
