"""``--online-season auto``: does a stream have a daily cycle? Decided from its probationary rows
only (never a later row), with M4's 90% seasonality test (Naive2's; rnnlab.tasks.forecast.baselines),
untuned: with ``m`` the rows per day (from the probationary rows' timestamps,
:func:`~rnnlab.tasks.anomaly.online.daily_rows`), ``n`` the probationary rows and ``r_k`` their
autocorrelation (R's acf), the stream is daily when ``n >= 3m`` and

    |r_m| > 1.645 / sqrt(n) * sqrt(1 + 2 * sum_{k=1}^{m-1} r_k^2).

Unlike M4's R code there is no ``lag.max = 10 log10 n`` limit (with it no 5-minute stream could
ever be tested: 750 probationary rows give lag.max 28 against m = 288). No timestamps, rows not a
whole number of a day apart, fewer than 3 days of probationary rows, or a constant stretch (no
autocorrelation): no season.
"""
from __future__ import annotations

import math

import numpy as np

from .online import daily_rows

SEASON_MODES = ("off", "on", "auto")


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """R's ``acf``: ``r_k = sum_{t<n-k} d_t d_{t+k} / sum_t d_t^2`` (``d`` = x minus its mean), k = 0..nlags;
    NaN when the series is constant."""
    d = np.asarray(x, dtype=np.float64) - float(np.mean(x))
    den = float(d @ d)
    if not den > 0:
        return np.full(nlags + 1, np.nan)
    f = np.fft.rfft(d, 2 * len(d))  # all lags at once: sum_t d_t d_{t+k} = the autocovariance's numerator
    r = np.fft.irfft(f * np.conj(f))[:nlags + 1] / den
    return r


def seasonal(x: np.ndarray, m: int) -> bool:
    """M4's 90% seasonality test at lag ``m`` without the lag.max limit (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if m <= 1 or n < 3 * m:
        return False
    r = acf(x, m)
    if np.isnan(r).any():
        return False
    limit = 1.645 / math.sqrt(n) * math.sqrt(1 + 2 * float(np.sum(r[1:m] ** 2)))
    return bool(abs(r[m]) > limit)


def season_period(mode: str, values: np.ndarray, timestamps: np.ndarray | None, start: int) -> int:
    """The period of the season input (rows per day) or 0 for none. ``off``: 0; ``on``: the rows per
    day of the whole series' timestamps; ``auto``: those of the first ``start`` rows (the probationary
    period) when :func:`seasonal` finds a daily cycle in their values, else 0."""
    if mode == "off" or timestamps is None:
        return 0
    if mode == "on":
        return daily_rows(timestamps)
    m = daily_rows(timestamps[:start])
    return m if m and seasonal(np.asarray(values[:start]), m) else 0
