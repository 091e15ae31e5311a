"""Gaussian negative log-likelihood with a predicted mean and log-variance.

For predictions m and log-variances v of targets x (any equal shapes, n entries, or the n
entries where a mask is 1)::

    nll_i = 1/2 (log 2 pi + v_i + (x_i - m_i)^2 exp(-v_i))
    L     = (1/n) sum_i mask_i nll_i

Backward, upstream dL::

    dm_i = (dL / n) mask_i (m_i - x_i) exp(-v_i)
    dv_i = (dL / n) mask_i (1 - (x_i - m_i)^2 exp(-v_i)) / 2

The targets get no gradient. :func:`gaussian_nll` gives the per-entry values (scoring).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..module import Module

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(mean: np.ndarray, logvar: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-entry ``1/2 (log 2 pi + v + (x - m)^2 exp(-v))``."""
    diff = target - mean
    return 0.5 * (LOG_2PI + logvar + diff * diff * np.exp(-logvar))


class GaussianNLLCache(NamedTuple):
    diff: np.ndarray       # x - m
    inv_var: np.ndarray    # exp(-v)
    mask: np.ndarray | None
    count: float


class GaussianNLL(Module):
    """``forward(mean, logvar, target, mask=None) -> (mean NLL, cache)``; ``backward(dL) -> (dmean, dlogvar)``."""

    def forward(self, mean: np.ndarray, logvar: np.ndarray, target: np.ndarray,
                mask: np.ndarray | None = None) -> tuple[float, GaussianNLLCache]:
        target = np.asarray(target)
        if mean.shape != logvar.shape or mean.shape != target.shape:
            raise ValueError(f"mean {mean.shape}, logvar {logvar.shape} and target {target.shape} disagree")
        diff = target - mean
        inv_var = np.exp(-logvar)
        nll = 0.5 * (LOG_2PI + logvar + diff * diff * inv_var)
        if mask is not None:
            mask = np.asarray(mask, dtype=mean.dtype)
            if mask.shape != mean.shape:
                raise ValueError(f"mask shape {mask.shape} does not match {mean.shape}")
            nll = nll * mask
            count = float(mask.sum())
        else:
            count = float(mean.size)
        return float(nll.sum() / max(count, 1.0)), GaussianNLLCache(diff, inv_var, mask, count)

    def backward(self, dloss: float, cache: GaussianNLLCache) -> tuple[np.ndarray, np.ndarray]:
        scale = dloss / max(cache.count, 1.0)
        dmean = -scale * cache.diff * cache.inv_var
        dlogvar = (0.5 * scale) * (1.0 - cache.diff * cache.diff * cache.inv_var)
        if cache.mask is not None:
            dmean, dlogvar = dmean * cache.mask, dlogvar * cache.mask
        return dmean, dlogvar
