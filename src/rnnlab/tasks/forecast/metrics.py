"""M4 accuracy measures: sMAPE, MASE and OWA, as the M4 organisers computed them.

Written from the organisers' evaluation code (Mcompetitions/M4-methods, ``Benchmarks and
Evaluation.R``: ``smape_cal``, ``mase_cal`` and the OWA lines; ``ML_benchmarks.py``), for
``y`` the out-of-sample values, ``ŷ`` the forecasts (horizon ``H``) and ``x_1..x_n`` the
in-sample series:

* sMAPE  = mean over points of ``200 |y - ŷ| / (|y| + |ŷ|)`` (a point where ``y = ŷ = 0``
  counts 0; M4's data are positive, so this never arises there);
* MASE   = mean over points of ``|y - ŷ| / s`` where
  ``s = 1/(n-m) Σ_{t=m+1..n} |x_t - x_{t-m}|``, the in-sample mean absolute seasonal
  difference, ``m`` the season length (M4's frequency: 24 hourly, 12 monthly, 4 quarterly,
  1 yearly/weekly/daily). When ``n <= m`` there is no seasonal difference and ``m = 1`` is used
  (as ``mase_cal`` does for non-seasonal data);
* OWA    = ``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2``, each measure first averaged
  over every point of every series (all series share the horizon, so this equals the mean of
  the per-series means), *then* divided: the ratio of averages, not the average of ratios.
* MSIS   = mean over points of ``(U - L + 2/a (L - y) [y < L] + 2/a (y - U) [y > U]) / s`` for the
  ``(1 - a)`` interval ``[L, U]`` (M4: ``a = 0.05``, the 0.025 and 0.975 quantiles), ``s`` MASE's scale;
* coverage = the share of points with ``L <= y <= U``.

Degenerate cases (M4's data never have them; its code would divide by zero): a point where
``y = ŷ = 0`` has sMAPE 0; a series whose in-sample scale is 0 (constant) or undefined (fewer than two
values) has no MASE or MSIS and is left out of those averages (it still counts in sMAPE), and a
measure with no series left is ``nan`` (undefined). In OWA, a relative term whose Naive2 value is
``nan`` is left out; one whose Naive2 value is 0 is 1 when the method is exact too, else ``inf``;
OWA is the mean of the terms left (``nan`` when none is).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

ArrayLike = np.ndarray | Sequence[float]


class Scores(NamedTuple):
    smape: float
    mase: float


def smape_points(y: ArrayLike, yhat: ArrayLike) -> np.ndarray:
    """``200 |y - ŷ| / (|y| + |ŷ|)`` per point (0 where both are 0)."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape:
        raise ValueError(f"actuals {y.shape} and forecasts {yhat.shape} differ in shape")
    den = np.abs(y) + np.abs(yhat)
    num = 200.0 * np.abs(y - yhat)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def smape(y: ArrayLike, yhat: ArrayLike) -> float:
    """Mean sMAPE (in percent, 0..200) over all points."""
    return float(np.mean(smape_points(y, yhat)))


def mase_scale(insample: ArrayLike, m: int) -> float:
    """``mean_{t>m} |x_t - x_{t-m}|``; ``m = 1`` when the series has no full season (``n <= m``);
    ``nan`` for fewer than two values."""
    x = np.asarray(insample, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    if m < 1 or len(x) <= m:
        m = 1
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def _defined(scale: float) -> bool:
    return bool(np.isfinite(scale) and scale > 0)


def mase_points(insample: ArrayLike, y: ArrayLike, yhat: ArrayLike, m: int) -> np.ndarray:
    """``|y - ŷ| / mase_scale(insample, m)`` per point (``nan`` where the scale is 0 or undefined)."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape:
        raise ValueError(f"actuals {y.shape} and forecasts {yhat.shape} differ in shape")
    scale = mase_scale(insample, m)
    if not _defined(scale):
        return np.full(y.shape, np.nan)
    return np.abs(y - yhat) / scale


def mase(insample: ArrayLike, y: ArrayLike, yhat: ArrayLike, m: int) -> float:
    """Mean MASE of one series' forecasts (``nan``: undefined for a constant in-sample series)."""
    return float(np.mean(mase_points(insample, y, yhat, m)))


def _check_counts(*groups) -> None:
    if len({len(g) for g in groups}) != 1:
        raise ValueError(f"{', '.join(str(len(g)) for g in groups)} in-sample series, actuals and forecasts: "
                         f"the counts must agree")
    if len(groups[0]) == 0:
        raise ValueError("no series to evaluate")


def _mean_defined(parts: list[np.ndarray]) -> float:
    v = np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)
    v = v[~np.isnan(v)]
    return float(np.mean(v)) if v.size else float("nan")


def evaluate(insamples: Sequence[ArrayLike], actuals: Sequence[ArrayLike] | np.ndarray,
             forecasts: Sequence[ArrayLike] | np.ndarray, m: int) -> Scores:
    """sMAPE and MASE averaged over every point of every series, the M4 way.

    ``insamples``, ``actuals`` and ``forecasts`` are per-series (a list of arrays or a 2-D array,
    one row per series); a series' forecast and actuals must have the same length. Series whose MASE
    is undefined count in sMAPE only (module docstring).
    """
    _check_counts(insamples, actuals, forecasts)
    s = [smape_points(y, f) for y, f in zip(actuals, forecasts)]
    q = [mase_points(x, y, f, m) for x, y, f in zip(insamples, actuals, forecasts)]
    return Scores(float(np.mean(np.concatenate(s))), _mean_defined(q))


def msis_points(insample: ArrayLike, y: ArrayLike, lower: ArrayLike, upper: ArrayLike, m: int,
                alpha: float = 0.05) -> np.ndarray:
    """M4's scaled interval score per point (``nan`` where MASE's scale is 0 or undefined)."""
    y, lo, hi = (np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    scale = mase_scale(insample, m)
    if not _defined(scale):
        return np.full(y.shape, np.nan)
    penalty = (2.0 / alpha) * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))
    return (hi - lo + penalty) / scale


def msis(insamples: Sequence[ArrayLike], actuals, lowers, uppers, m: int, alpha: float = 0.05) -> float:
    """MSIS averaged over every point of every series with a defined scale, as M4 did."""
    _check_counts(insamples, actuals, lowers, uppers)
    return _mean_defined([msis_points(x, y, lo, hi, m, alpha)
                          for x, y, lo, hi in zip(insamples, actuals, lowers, uppers)])


def coverage(actuals, lowers, uppers) -> float:
    """The share of points inside their interval ``[lower, upper]``."""
    y, lo, hi = (np.asarray(a, dtype=np.float64) for a in (actuals, lowers, uppers))
    return float(np.mean((y >= lo) & (y <= hi)))


def _relative(value: float, benchmark: float) -> float:
    if np.isnan(benchmark):
        return float("nan")
    if benchmark == 0:
        return 1.0 if value == 0 else float("inf")
    return value / benchmark


def owa(scores: Scores | tuple[float, float], naive2: Scores | tuple[float, float]) -> float:
    """``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2`` from averaged scores (degenerate cases: module
    docstring)."""
    terms = [t for t in (_relative(scores[0], naive2[0]), _relative(scores[1], naive2[1])) if not np.isnan(t)]
    return float(np.mean(terms)) if terms else float("nan")
