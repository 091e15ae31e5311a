"""``--online-season auto``: does a stream have a daily cycle? Decided from its probationary rows
only (never a later row), with M4's 90% seasonality test (Naive2's; :mod:`rnnlab.timeseries.seasonality`),
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

import numpy as np

from ...timeseries.seasonality import seasonality_test
from .online import daily_rows


def seasonal(x: np.ndarray, m: int) -> bool:
    """M4's 90% seasonality test at lag ``m`` without the lag.max limit (module docstring)."""
    return seasonality_test(x, m, lag_max=False)


def season_period(mode: str, values: np.ndarray, timestamps: np.ndarray | None, start: int) -> int:
    """The period of the season input (rows per day) or 0 for none. ``off``: 0; ``on``: the rows per
    day of the whole series' timestamps; ``auto``: those of the first ``start`` rows (the probationary
    period) when :func:`seasonal` finds a daily cycle in their values, else 0; ``pick``: those of the
    first ``start`` rows, whatever the values (the online detector then runs a network with the
    season input beside one without it, each row taking the measure of the one that forecast the
    rows before it better, :func:`~rnnlab.tasks.anomaly.online.pick_season`)."""
    if mode == "off" or timestamps is None:
        return 0
    if mode == "on":
        return daily_rows(timestamps)
    if mode == "pick":
        return daily_rows(timestamps[:start])
    m = daily_rows(timestamps[:start])
    return m if m and seasonal(np.asarray(values[:start]), m) else 0
