"""R's autocorrelation and M4's 90% seasonality test, shared by the forecast baselines (Naive2's
seasonality test) and the anomaly detector's ``--online-season auto``.

``acf``: ``r_k = sum_{t=1}^{n-k} (x_t - mean)(x_{t+k} - mean) / sum_t (x_t - mean)^2`` (R's
``stats::acf``), k = 0..nlags; NaN when the series is constant.

``seasonality_test``: with ``n`` values and lag ``m``, seasonal when ``n >= 3m`` and

    |r_m| > 1.645 / sqrt(n) * sqrt(1 + 2 * sum_{k=1}^{m-1} r_k^2);

M4's R code also needs ``m <= lag.max = 10 log10 n`` (beyond it R's acf has no lag m and the test
is FALSE): ``lag_max=True`` (the default) keeps that limit, ``lag_max=False`` drops it.
"""
from __future__ import annotations

import math

import numpy as np


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """``r_0..r_nlags`` as R's ``acf`` (biased sums, mean removed, divided by the lag-0 sum)."""
    x = np.asarray(x, dtype=np.float64)
    d = x - x.mean()
    den = float(d @ d)
    if den == 0:
        return np.full(nlags + 1, np.nan)
    return np.array([float(d[k:] @ d[:len(d) - k]) / den for k in range(nlags + 1)])


def seasonality_test(x: np.ndarray, m: int, *, lag_max: bool = True) -> bool:
    """M4's 90% test for seasonality at lag ``m`` (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if m <= 1 or n < 3 * m:
        return False
    if lag_max and m > min(math.floor(10 * math.log10(n)), n - 1):
        return False
    r = acf(x, m)
    if np.isnan(r).any():
        return False
    limit = 1.645 / math.sqrt(n) * math.sqrt(1 + 2 * float(np.sum(r[1:m] ** 2)))
    return bool(abs(r[m]) > limit)


__all__ = ["acf", "seasonality_test"]
