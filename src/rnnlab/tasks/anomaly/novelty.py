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
computes it; :func:`~rnnlab.tasks.anomaly.likelihood.novelty_z`, beside the likelihood's other z's):
the mean over the last ``NOVEL_WINDOW`` (10) rows against the mean and standard deviation of those
means over the long window, with nupic's floors (mean at least 0.03, variance at
least 3e-4), so one novel row in a quiet stream gives a z of about 4 and two about 10. Row t uses
rows up to t only.
"""
from __future__ import annotations

import numpy as np

from .likelihood import NOVEL_WINDOW, novelty_z  # the channel's z, beside the likelihood's other z's

NOVEL_BINS = 130        # buckets over the probationary range: HTM's encoder resolution in NAB


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


__all__ = ["NOVEL_BINS", "NOVEL_WINDOW", "novel_rows", "novelty_z"]
