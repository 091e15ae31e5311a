"""Value novelty: a second, network-free channel of the anomaly likelihood (``--online-novel``).

NAB's HTM detector encodes each value into buckets of width (max - min) / 130 and predicts which
buckets come next; a value in a bucket it has (nearly) never seen cannot have been predicted, so its
raw anomaly score is about 1 there, and two such rows in a row make its likelihood jump. A
forecaster's error cannot see that: in a stream with a regular spike (a server's daily burst that
no forecaster times to the row), a blip to a value the stream never took is forecast no worse than
the spike, so in units of the typical error it is no news (docs/anomaly.md, "Value novelty").

This channel counts, per row, the earlier rows whose value fell in the row's bucket or the two
beside it: the probationary rows' range cut into ``NOVEL_BINS`` (130, HTM's) equal buckets, values
beyond it in the end buckets (the range alarms see those). A row is *novel* (1, else 0) when at most
``most`` earlier rows fell there. The channel's z is HTM's likelihood of that 0/1 measure (as nupic
computes it): the mean over the last ``NOVEL_WINDOW`` (10) rows against the mean and standard
deviation of those means over the long window, with nupic's floors (mean at least 0.03, variance at
least 3e-4), so one novel row in a quiet stream gives a z of about 4 and two about 10. Row t uses
rows up to t only.
"""
from __future__ import annotations

import numpy as np

NOVEL_BINS = 130        # buckets over the probationary range: HTM's encoder resolution in NAB
NOVEL_WINDOW = 10       # HTM's averaging window of the raw score
MEAN_FLOOR = 0.03       # nupic's floors under the estimated mean and variance
VAR_FLOOR = 3e-4


def _rolling_mean(a: np.ndarray, width: int) -> np.ndarray:
    """Mean of a[max(0, t-width+1) .. t] for every t."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    t = np.arange(len(a))
    lo = np.maximum(0, t - width + 1)
    return (c[t + 1] - c[lo]) / (t + 1 - lo)


def novel_rows(values: np.ndarray, start: int, most: int, bins: int = NOVEL_BINS) -> np.ndarray:
    """1.0 where at most ``most`` of the rows before t had a value in row t's bucket or a neighbour
    (buckets: the range of the first ``start`` rows, the probationary rows, cut into ``bins``), else
    0.0. A flat probation (one value) gets buckets of ``max(|value|, 1) / bins``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    out = np.zeros(len(v))
    if len(v) == 0:
        return out
    if not np.isfinite(v).all():   # the detector refuses such a file before (DataError); say so here too
        raise ValueError(f"novel_rows: the value at row {int(np.argmin(np.isfinite(v)))} is not a finite number")
    ref = v[:max(int(start), 1)]
    lo, hi = float(ref.min()), float(ref.max())
    width = (hi - lo) / bins if hi > lo else max(abs(lo), 1.0) / bins
    idx = np.clip(np.floor((v - lo) / width), -1, bins).astype(np.int64) + 1   # 0 .. bins + 1
    counts = np.zeros(bins + 4, dtype=np.int64)   # bucket b at counts[b + 1]: a zero bucket each side
    for t, i in enumerate(idx):
        out[t] = 1.0 if counts[i] + counts[i + 1] + counts[i + 2] <= most else 0.0
        counts[i + 1] += 1
    return out


def novelty_z(novel: np.ndarray, long: int, width: int = NOVEL_WINDOW) -> np.ndarray:
    """HTM's likelihood z of a 0/1 measure: the ``width``-row mean m_t against the mean and standard
    deviation of m over the ``long`` rows up to t, floored as nupic floors them. Row t uses rows <= t."""
    m = _rolling_mean(np.asarray(novel, dtype=np.float64), width)
    mean, sq = _rolling_mean(m, long), _rolling_mean(m * m, long)
    return (m - np.maximum(mean, MEAN_FLOOR)) / np.sqrt(np.maximum(sq - mean * mean, VAR_FLOOR))


__all__ = ["NOVEL_BINS", "NOVEL_WINDOW", "novel_rows", "novelty_z"]
