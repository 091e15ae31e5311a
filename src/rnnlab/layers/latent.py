"""A Gaussian latent layer (the VAE's reparameterisation, with its KL term) and RepeatVector.

GaussianLatent(D, Z): from h (B, D) to a diagonal Gaussian q(z | h) and one sample of it::

    a       = h W + b                      W : (D, 2Z), b : (2Z,)
    mu      = a[:, :Z]        lv = a[:, Z:]            (lv = log-variance)
    s       = exp(lv / 2)
    z       = mu + s * eps                 eps ~ N(0, I), drawn from the layer's own generator
    KL      = (1/B) sum_{b,j} -1/2 (1 + lv - mu^2 - exp(lv))     KL(q || N(0, I)), mean over rows

``forward(h, eps=None) -> ((z, KL), cache)``; ``eps`` given (e.g. zeros: z = mu) replaces the
draw. Backward, with upstream dz (B, Z) and dKL (scalar)::

    dmu = dz + dKL mu / B
    dlv = dz * eps * s / 2 + dKL (exp(lv) - 1) / (2B)
    da  = [dmu, dlv];   dW = h^T da;   db = sum_b da;   dh = da W^T

RepeatVector(T): ``forward(x (B, D)) -> (B, T, D)``, every step a copy of x; backward sums the
upstream gradient over the T steps.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import init as initializers
from ..module import DEFAULT_DTYPE, Module


class LatentCache(NamedTuple):
    h: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray
    eps: np.ndarray
    std: np.ndarray


class GaussianLatent(Module):
    """``forward(h, eps=None) -> ((z, kl), cache)``; ``cache.mu``/``cache.logvar`` hold q's parameters."""

    def __init__(self, in_features: int, latent_size: int, *, seed: int | np.random.Generator | None = 0,
                 dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.in_features, self.latent_size = in_features, latent_size
        self.rng = np.random.default_rng(seed)  # the eps draws; saved in checkpoints (Task.rng_modules)
        init_rng = np.random.default_rng(self.rng.integers(2**63))
        self.add_param("W", initializers.glorot_uniform((in_features, 2 * latent_size), init_rng).astype(dtype))
        self.add_param("b", np.zeros(2 * latent_size, dtype=dtype))

    def forward(self, h: np.ndarray, eps: np.ndarray | None = None) -> tuple[tuple[np.ndarray, float], LatentCache]:
        a = h @ self.params["W"] + self.params["b"]
        Z = self.latent_size
        mu, logvar = a[:, :Z], a[:, Z:]
        if eps is None:
            eps = self.rng.standard_normal(mu.shape).astype(a.dtype)
        eps = np.asarray(eps, dtype=a.dtype)
        if eps.shape != mu.shape:
            raise ValueError(f"eps has shape {eps.shape}, expected {mu.shape}")
        std = np.exp(0.5 * logvar)
        z = mu + std * eps
        kl = float(-0.5 * np.sum(1.0 + logvar - mu * mu - std * std) / h.shape[0])
        return (z, kl), LatentCache(h, mu, logvar, eps, std)

    def backward(self, dout: tuple[np.ndarray | None, float | None], cache: LatentCache) -> np.ndarray:
        dz, dkl = dout
        B = cache.h.shape[0]
        dmu = np.zeros_like(cache.mu) if dz is None else dz.copy()
        dlv = np.zeros_like(cache.mu) if dz is None else dz * cache.eps * cache.std * 0.5
        if dkl:
            dmu += (dkl / B) * cache.mu
            dlv += (dkl / (2.0 * B)) * (cache.std * cache.std - 1.0)
        da = np.concatenate([dmu, dlv], axis=1)
        self.grads["W"] += cache.h.T @ da
        self.grads["b"] += da.sum(axis=0)
        return da @ self.params["W"].T


class RepeatCache(NamedTuple):
    steps: int


class RepeatVector(Module):
    """``forward(x (B, D)) -> ((B, T, D), cache)``: x copied to each of the ``steps`` time steps."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = steps

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, RepeatCache]:
        y = np.repeat(x[:, None, :], self.steps, axis=1)
        return y, RepeatCache(self.steps)

    def backward(self, dout: np.ndarray, cache: RepeatCache) -> np.ndarray:
        return dout.sum(axis=1)
