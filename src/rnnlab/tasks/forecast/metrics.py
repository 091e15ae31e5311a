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
    """``mean_{t>m} |x_t - x_{t-m}|``; ``m = 1`` when the series has no full season (``n <= m``)."""
    x = np.asarray(insample, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("MASE needs at least two in-sample values")
    if m < 1 or len(x) <= m:
        m = 1
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase_points(insample: ArrayLike, y: ArrayLike, yhat: ArrayLike, m: int) -> np.ndarray:
    """``|y - ŷ| / mase_scale(insample, m)`` per point."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape:
        raise ValueError(f"actuals {y.shape} and forecasts {yhat.shape} differ in shape")
    scale = mase_scale(insample, m)
    if scale == 0:
        raise ValueError("MASE is undefined for a constant in-sample series (scale 0)")
    return np.abs(y - yhat) / scale


def mase(insample: ArrayLike, y: ArrayLike, yhat: ArrayLike, m: int) -> float:
    """Mean MASE of one series' forecasts."""
    return float(np.mean(mase_points(insample, y, yhat, m)))


def evaluate(insamples: Sequence[ArrayLike], actuals: Sequence[ArrayLike] | np.ndarray,
             forecasts: Sequence[ArrayLike] | np.ndarray, m: int) -> Scores:
    """sMAPE and MASE averaged over every point of every series, the M4 way.

    ``insamples``, ``actuals`` and ``forecasts`` are per-series (a list of arrays or a 2-D array,
    one row per series); a series' forecast and actuals must have the same length.
    """
    if not (len(insamples) == len(actuals) == len(forecasts)):
        raise ValueError(f"{len(insamples)} in-sample series, {len(actuals)} actuals and "
                         f"{len(forecasts)} forecasts: the counts must agree")
    if len(insamples) == 0:
        raise ValueError("no series to evaluate")
    s = [smape_points(y, f) for y, f in zip(actuals, forecasts)]
    q = [mase_points(x, y, f, m) for x, y, f in zip(insamples, actuals, forecasts)]
    return Scores(float(np.mean(np.concatenate(s))), float(np.mean(np.concatenate(q))))


def owa(scores: Scores | tuple[float, float], naive2: Scores | tuple[float, float]) -> float:
    """``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2`` from averaged scores."""
    return 0.5 * (scores[0] / naive2[0] + scores[1] / naive2[1])
