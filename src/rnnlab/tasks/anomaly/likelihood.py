"""From a detector's raw per-row anomaly measure to a score in [0, 1], never looking ahead.

``anomaly_likelihood`` (as NAB's HTM detector, ``nupic.algorithms.anomaly_likelihood``): the
short-window mean of the raw measure,

    m_t = mean(a_{t-s+1} .. a_t)                       (s = ``short``, 10 rows)

is compared with the distribution of the same means over the long window before it,

    mu_t, sd_t = mean and standard deviation of m_{t-W} .. m_t    (W = ``long``, 8640 rows)
    z_t        = (m_t - mu_t) / max(sd_t, floor)
    Q_t        = P(N(0,1) > z_t) = erfc(z_t / sqrt 2) / 2     (the tail probability)

and HTM's log scale spreads the likelihood 1 - Q_t over [0, 1]:
``score = log(Q_t + 1e-10) / log(1e-10)`` (0 for Q = 1, 1 for Q <= 1e-10). A noisy stretch raises
sd_t and so damps alarms on noise; a sustained rise of the error stands out. Rows before the
``start`` (the probationary period) score 0: NAB does not score them.

``gaussian_tail``: the same log scale of the tail probability of a_t itself under the Gaussian
fitted to a over the probationary period (no short/long comparison).
"""
from __future__ import annotations

import math

import numpy as np

LOG_FLOOR = 1e-10
_erfc = np.frompyfunc(math.erfc, 1, 1)


def tail_probability(z: np.ndarray) -> np.ndarray:
    """``P(N(0, 1) > z)``, accurate in the far tail (erfc, not 1 - cdf)."""
    return _erfc(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64) * 0.5


def log_scale(q: np.ndarray) -> np.ndarray:
    """HTM's ``computeLogLikelihood`` of the likelihood ``1 - q``: in [0, 1], larger = rarer."""
    return np.clip(np.log(q + LOG_FLOOR) / math.log(LOG_FLOOR), 0.0, 1.0)


def _rolling_mean(a: np.ndarray, width: int) -> np.ndarray:
    """Mean of a[max(0, t-width+1) .. t] for every t."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    t = np.arange(len(a))
    lo = np.maximum(0, t - width + 1)
    return (c[t + 1] - c[lo]) / (t + 1 - lo)


def anomaly_likelihood(raw: np.ndarray, start: int, first: int = 0, short: int = 10, long: int = 8640,
                       floor: float = 1e-3) -> np.ndarray:
    """Scores in [0, 1] from the raw measure ``raw[first:]`` (rows before ``first`` have none).

    Row t uses only rows up to t. The long-window statistics use rows from ``first`` on.
    """
    raw = np.asarray(raw, dtype=np.float64)
    out = np.zeros(len(raw))
    a = raw[first:]
    if len(a) == 0:
        return out
    m = _rolling_mean(a, short)
    mean = _rolling_mean(m, long)
    sq = _rolling_mean(m * m, long)
    sd = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    scale = np.maximum(sd, floor * np.maximum(np.abs(mean), 1e-12))
    z = (m - mean) / np.where(scale > 0, scale, 1.0)
    score = log_scale(tail_probability(z))
    out[first:] = score
    out[:max(start, first)] = 0.0
    return out


def gaussian_tail(raw: np.ndarray, start: int, first: int = 0) -> np.ndarray:
    """Scores from the tail probability of each raw value under N(mean, sd) of raw[first:start]."""
    raw = np.asarray(raw, dtype=np.float64)
    ref = raw[first:start]
    mu, sd = float(ref.mean()), float(ref.std()) or 1.0
    out = log_scale(tail_probability((raw - mu) / sd))
    out[:max(start, first)] = 0.0
    return out


POST = {"likelihood": anomaly_likelihood, "gaussian": gaussian_tail}
