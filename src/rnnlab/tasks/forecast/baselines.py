"""Forecasting baselines: Naive, seasonal Naive and Naive2 as in M4; AutoARIMA/AutoETS wrappers.

Naive, sNaive and Naive2 follow the organisers' R code (Mcompetitions/M4-methods,
``Benchmarks and Evaluation.R``, with R's ``stats::acf`` and ``stats::decompose``), for an
in-sample series ``x_1..x_n``, season length ``m`` and horizon ``h`` (``k = 1..h``):

* Naive:  ``ŷ_{n+k} = x_n``.
* sNaive: ``ŷ_{n+k} = x_{n-m+1+((k-1) mod m)}`` (the last season repeated; Naive when m = 1).
* Naive2: Naive on the seasonally adjusted series, reseasonalised:
  ``ŷ_{n+k} = x_n / S_{n} * S_{n+k}``, with ``S_t = s_{(t-1) mod m}`` the seasonal indices of
  a classical multiplicative decomposition (``decompose(type="multiplicative")``):

  - trend ``T_t``: centred moving average; for even m the 2xm average with weights
    ``[1/2, 1, ..., 1, 1/2] / m`` over ``x_{t-m/2}..x_{t+m/2}``; for odd m the plain m-average;
    undefined in the first and last ``floor(m/2)`` points;
  - ``s_i`` = mean of ``x_t / T_t`` over the ``t ≡ i+1 (mod m)`` where ``T_t`` is defined,
    then normalised to mean 1: ``s_i <- s_i / mean(s)``.

  Only when the seasonality test passes (otherwise ``S = 1`` and Naive2 = Naive): with
  ``r_k = Σ_{t=1}^{n-k} (x_t - x̄)(x_{t+k} - x̄) / Σ_t (x_t - x̄)^2`` (R's acf), the series is
  seasonal when ``n >= 3m``, ``m <= min(floor(10 log10 n), n - 1)`` (R's default lag.max;
  beyond it R's acf has no lag m and the test is FALSE), and
  ``|r_m| > 1.645 / sqrt(n) * sqrt(1 + 2 Σ_{k=1}^{m-1} r_k^2)``.
  (The Python ``ML_benchmarks.py`` variant adds ``r_1`` unsquared; the published statistical
  benchmarks come from the R code, which squares it, as here.)

* Theta: the classic Theta method of M4's benchmarks (``Theta.classic`` in the same R file), applied to
  the seasonally adjusted series (the same test and decomposition as Naive2) and reseasonalised:
  ``L0`` the least-squares line through ``(t, x_t)``, ``SES`` simple exponential smoothing of the theta
  line ``2 x_t - L0_t`` (R's ``forecast::ses``: ``alpha`` in ``[1e-4, 0.9999]`` and the initial level
  chosen together to minimise the one-step squared errors), ``ŷ_{n+k} = max(0, (SES_n + L0_{n+k}) / 2)``:
  SES with a drift of half the line's slope.

AutoARIMA and AutoETS come from ``statsforecast``, an optional extra
(``pip install -e '.[baselines]'``), imported only when called.
"""
from __future__ import annotations

import time
import warnings
from typing import Callable, NamedTuple, Sequence

import numpy as np

from rnnlab.errors import ConfigError
from rnnlab.timeseries.seasonality import acf, seasonality_test  # noqa: F401 (acf: part of this module's API)

BASELINES_HINT = "pip install -e '.[baselines]'"


class BaselineResult(NamedTuple):
    forecasts: np.ndarray   # (n_series, horizon)
    seconds: float          # wall time for all series


def naive(x: np.ndarray, h: int) -> np.ndarray:
    """The last value, ``h`` times."""
    return np.full(h, float(np.asarray(x, dtype=np.float64)[-1]))


def seasonal_naive(x: np.ndarray, h: int, m: int) -> np.ndarray:
    """The last season repeated (Naive when ``m <= 1`` or the series is shorter than ``m``)."""
    x = np.asarray(x, dtype=np.float64)
    if m <= 1 or len(x) < m:
        return naive(x, h)
    return x[-m:][np.arange(h) % m].copy()


def seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """Multiplicative seasonal indices ``s_0..s_{m-1}`` (mean 1) of R's ``decompose``; ``s_i``
    belongs to positions ``t`` (0-based) with ``t mod m == i``."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if m <= 1 or n < 2 * m:
        raise ValueError(f"a decomposition needs at least two seasons ({2 * m} values), got {n}")
    weights = np.full(m + 1, 1.0 / m) if m % 2 == 0 else np.full(m, 1.0 / m)
    if m % 2 == 0:
        weights[0] = weights[-1] = 0.5 / m
    half = len(weights) // 2
    trend = np.full(n, np.nan)
    trend[half:n - half] = np.convolve(x, weights, mode="valid")
    ratio = x / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return figure / figure.mean()


def naive2(x: np.ndarray, h: int, m: int) -> np.ndarray:
    """Naive on the seasonally adjusted series, reseasonalised; Naive when not seasonal."""
    x = np.asarray(x, dtype=np.float64)
    if not seasonality_test(x, m):
        return naive(x, h)
    s = seasonal_indices(x, m)
    n = len(x)
    return x[-1] / s[(n - 1) % m] * s[(n + np.arange(h)) % m]


def ses_level(x: np.ndarray, rounds: int = 4, grid: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, final level)`` of simple exponential smoothing of each row of ``x (S, n)`` (or one series),
    ``alpha`` and the initial level ``l0`` chosen to minimise the one-step squared errors. With
    ``l_t = A_t + (1 - alpha)^t l0`` the errors are linear in ``l0``, so for each ``alpha`` the best ``l0`` is
    a least-squares solution; ``alpha`` is searched on a grid over ``[1e-4, 0.9999]``, refined ``rounds``
    times around the best point (all rows at once)."""
    y = np.atleast_2d(np.asarray(x, dtype=np.float64))
    S, n = y.shape
    lo, hi = np.full((S, 1), 1e-4), np.full((S, 1), 1 - 1e-4)
    best_sse, best_alpha, best_level = np.full(S, np.inf), np.full(S, 0.5), y[:, -1].copy()
    rows = np.arange(S)
    for _ in range(rounds):
        alpha = lo + (hi - lo) * np.linspace(0, 1, grid)          # (S, G)
        A, B = np.zeros_like(alpha), np.ones_like(alpha)            # l_{t-1} = A + B l0
        srr, sbr, sbb = np.zeros_like(alpha), np.zeros_like(alpha), np.zeros_like(alpha)
        for t in range(n):
            v = y[:, t, None]
            r = v - A
            srr += r * r
            sbr += B * r
            sbb += B * B
            A = alpha * v + (1 - alpha) * A
            B = B * (1 - alpha)
        l0 = sbr / sbb
        sse = srr - 2 * l0 * sbr + l0 * l0 * sbb
        k = np.argmin(sse, axis=1)
        better = sse[rows, k] <= best_sse
        best_sse = np.where(better, sse[rows, k], best_sse)
        best_alpha = np.where(better, alpha[rows, k], best_alpha)
        best_level = np.where(better, (A + B * l0)[rows, k], best_level)
        step = (hi - lo) / (grid - 1)
        lo = np.maximum(1e-4, alpha[rows, k][:, None] - step)
        hi = np.minimum(1 - 1e-4, alpha[rows, k][:, None] + step)
    if np.ndim(x) == 1:
        return best_alpha[0], best_level[0]
    return best_alpha, best_level


def theta_classic(x: np.ndarray, h: int) -> np.ndarray:
    """M4's ``Theta.classic`` on (already seasonally adjusted) series, rows of ``x (S, n)`` or one series: the
    mean of the SES forecast of the theta line ``2 x - L0`` and the extrapolated line ``L0``, negative
    forecasts set to 0."""
    y = np.atleast_2d(np.asarray(x, dtype=np.float64))
    S, n = y.shape
    if n < 2:
        out = np.maximum(np.repeat(y[:, -1:], h, axis=1), 0)
    else:
        t = np.arange(1, n + 1, dtype=np.float64)
        tc = t - t.mean()
        slope = (y - y.mean(axis=1, keepdims=True)) @ tc / (tc @ tc)
        intercept = y.mean(axis=1) - slope * t.mean()
        line_in = intercept[:, None] + slope[:, None] * t
        line_out = intercept[:, None] + slope[:, None] * np.arange(n + 1, n + h + 1)
        _, level = ses_level(2 * y - line_in)
        out = np.maximum(0.5 * np.atleast_1d(level)[:, None] + 0.5 * line_out, 0)
    return out[0] if np.ndim(x) == 1 else out


def theta(x: np.ndarray, h: int, m: int) -> np.ndarray:
    """Classic Theta on the seasonally adjusted series, reseasonalised, as M4's benchmark."""
    return theta_many([x], h, m)[0]


def theta_many(series: Sequence[np.ndarray], h: int, m: int) -> np.ndarray:
    """:func:`theta` of every series ``(S, h)``; series of one length are smoothed together."""
    xs = [np.asarray(x, dtype=np.float64) for x in series]
    adjusted, indices = [], []
    for x in xs:
        if seasonality_test(x, m):
            s = seasonal_indices(x, m)
            adjusted.append(x / s[np.arange(len(x)) % m])
            indices.append(s[(len(x) + np.arange(h)) % m])
        else:
            adjusted.append(x)
            indices.append(np.ones(h))
    out = np.zeros((len(xs), h))
    lengths = np.array([len(x) for x in xs])
    for n in np.unique(lengths):
        rows = np.flatnonzero(lengths == n)
        out[rows] = theta_classic(np.stack([adjusted[i] for i in rows]), h) * np.stack([indices[i] for i in rows])
    return out


def forecast_all(method: str | Callable, series: Sequence[np.ndarray], h: int, m: int) -> BaselineResult:
    """Apply ``naive``/``snaive``/``naive2``/``auto_arima``/``auto_ets`` (or a function
    ``f(x, h, m)``) to every series: ``(n_series, h)`` forecasts and the wall time."""
    if method in ("auto_arima", "auto_ets"):
        return (auto_arima if method == "auto_arima" else auto_ets)(series, h, m)
    if method == "theta":
        start = time.perf_counter()
        return BaselineResult(theta_many(series, h, m).reshape(len(series), h), time.perf_counter() - start)
    funcs = {"naive": lambda x, h, m: naive(x, h), "snaive": seasonal_naive, "naive2": naive2, "theta": theta}
    if isinstance(method, str):
        if method not in funcs:
            raise ConfigError(f"unknown baseline '{method}'; known: {', '.join(list(funcs) + ['auto_arima', 'auto_ets'])}")
        method = funcs[method]
    start = time.perf_counter()
    out = np.array([method(np.asarray(x, dtype=np.float64), h, m) for x in series]).reshape(len(series), h)
    return BaselineResult(out, time.perf_counter() - start)


def _statsforecast_models():
    try:
        from statsforecast.models import AutoARIMA, AutoETS
    except ImportError:
        raise ConfigError(f"AutoARIMA/AutoETS need statsforecast: {BASELINES_HINT}") from None
    return AutoARIMA, AutoETS


def _run_model(make, series, h) -> BaselineResult:
    start = time.perf_counter()
    with warnings.catch_warnings():  # statsforecast warns once per non-converged candidate model
        warnings.filterwarnings("ignore", message="possible convergence problem")
        rows = [np.asarray(make().forecast(y=np.asarray(x, dtype=np.float64), h=h)["mean"], dtype=np.float64)
                for x in series]
    return BaselineResult(np.array(rows).reshape(len(series), h), time.perf_counter() - start)


def auto_arima(series: Sequence[np.ndarray], h: int, season_length: int = 24, **kwargs) -> BaselineResult:
    """statsforecast's ``AutoARIMA(season_length=...)`` fitted to each series in turn.

    ``kwargs`` go to ``AutoARIMA``; ``approximation=True`` (fit by CSS during the search, R's
    ``auto.arima`` default for series longer than 150 or seasons longer than 12) is about 10x
    faster on M4 Hourly than statsforecast's default (exact likelihood).
    """
    AutoARIMA, _ = _statsforecast_models()
    return _run_model(lambda: AutoARIMA(season_length=season_length, **kwargs), series, h)


def auto_ets(series: Sequence[np.ndarray], h: int, season_length: int = 24, **kwargs) -> BaselineResult:
    """statsforecast's ``AutoETS(season_length=...)`` fitted to each series in turn."""
    _, AutoETS = _statsforecast_models()
    return _run_model(lambda: AutoETS(season_length=season_length, **kwargs), series, h)
