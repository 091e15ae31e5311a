"""From a detector's raw per-row anomaly measure to a score in [0, 1], never looking ahead.

``anomaly_likelihood`` (as NAB's HTM detector, ``nupic.algorithms.anomaly_likelihood``): the
short-window mean of the raw measure,

    m_t = mean(a_{t-s+1} .. a_t)                       (s = ``short``, 10 rows)

is compared with the distribution of the same means over the long window before it,

    mu_t, sd_t = mean and standard deviation of m_{t-W} .. m_t    (W = ``long``, 8640 rows)
    z_t        = (m_t - mu_t) / max(sd_t, floor)
    Q_t        = P(N(0,1) > z_t) = erfc(z_t / sqrt 2) / 2     (the tail probability)

and a log scale spreads the likelihood 1 - Q_t over [0, 1): with ``D = -log10 Q_t``,
``score = D / (D + 10)`` (0 for Q = 1, 0.5 at Q = 1e-10, where HTM's own log scale,
``log(Q + 1e-10) / log(1e-10)``, stops at 1). Unlike HTM's it never saturates, so the threshold
sweep can still order the rarest rows (log Q is computed from erfc, and from its asymptotic
series beyond z = 25). A noisy stretch raises sd_t and so damps alarms on noise; a sustained
rise of the error stands out.

Statistics from new rows only (``warmup = W``): the long window holds only rows from ``start``
on, the rows the detector did not train on, and the first W of them score 0.

Onsets only (``suppress = K`` rows, 0 disables): a row whose score does not exceed the largest
score of the K rows before it scores 0, so a stretch of high scores raises one alarm at its
start (and again only when it rises further), not one per row; this does not depend on the
threshold. Rows before ``start`` (the probationary period) score 0: NAB does not score them.

Peaks only (``peak = N`` rows, 0 disables; after the onset rule): a rising likelihood passes the
onset rule on several rows in a row, and NAB counts each of them that clears the threshold as a
detection (each one outside a window a false positive). So a run of consecutive onsets raises one
alarm, at its peak: the run's last score is reported on the row after the run (the first row that
is not an onset), at once when it reaches 1 (nothing can exceed it), and on the run's N-th row if
the run lasts that long (what it still rises then scores 0, but for a score of 1, a range alarm, which
is always reported). Row t still uses rows up to t only; an alarm comes at most N rows after its run
began.

Two time scales (``slow = S2`` rows, 0 disables): z_t is the larger of the short window's and the
same computed with the mean over S2 rows (against the long-window statistics of those means). A
single wild row stands out over the short window; a sustained moderate rise of the measure (a
level shift the forecaster keeps missing by a few typical errors, a burst pattern that became
dense) stands out over the slower one, whose means vary less, where over 5 rows it hides among the
stream's ordinary spikes. Row t still uses rows up to t only.

Several measures (e.g. a forecaster's error and a VAE's reconstruction probability, on unlike
scales): each gets its own z_t as above, and the score is that of their mean.

Range alarms (``alarms``, from :func:`range_alarms`): rows whose value leaves the range of the
values before it by more than a tolerance score 1, whatever the likelihood says (HTM's "spatial
anomaly" rule in NAB's numenta detector); they then pass through the same onset rule.

``gaussian_tail``: the same scale and onsets of the tail probability of a_t itself under the Gaussian
fitted to a over the probationary period (no short/long comparison).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

LOG_FLOOR = 1e-10
DECADES = 10.0
_erfc = np.frompyfunc(math.erfc, 1, 1)


def tail_probability(z: np.ndarray) -> np.ndarray:
    """``P(N(0, 1) > z)``, accurate in the far tail (erfc, not 1 - cdf)."""
    return _erfc(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64) * 0.5


def log_tail(z: np.ndarray) -> np.ndarray:
    """``log P(N(0, 1) > z)`` without underflow: erfc up to z = 25, the asymptotic series beyond."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    near = z < 25.0
    out[near] = np.log(tail_probability(z[near]))
    far = z[~near]
    out[~near] = -0.5 * far * far - np.log(far) - 0.5 * math.log(2.0 * math.pi) + np.log1p(-1.0 / (far * far))
    return out


def decade_scale(log_q: np.ndarray) -> np.ndarray:
    """``D / (D + 10)`` with ``D = -log10 Q``: in [0, 1), larger = rarer, no saturation."""
    d = np.maximum(-np.asarray(log_q) / math.log(10.0), 0.0)
    return d / (d + DECADES)


def onsets(score: np.ndarray, suppress: int) -> np.ndarray:
    """Zero every row whose score does not exceed the largest of the ``suppress`` rows before it."""
    if suppress <= 0 or len(score) == 0:
        return score
    padded = np.concatenate([np.full(suppress, -np.inf), score])
    before = np.lib.stride_tricks.sliding_window_view(padded[:-1], suppress).max(axis=1)
    return np.where(score > before, score, 0.0)


def peaks(onset: np.ndarray, wait: int) -> np.ndarray:
    """One score per run of consecutive nonzero rows of ``onset`` (the onset rule's output): the
    run's last value, reported on the row after the run, or on the run's row that reaches 1, or on
    its ``wait``-th row, whichever comes first; the rest of the run 0, but a score of 1 (a range alarm),
    which is reported wherever it is an onset. ``wait <= 0``: unchanged."""
    if wait <= 0 or len(onset) == 0:
        return onset
    out = np.zeros_like(onset)
    run = 0  # rows of the current run so far; -1 once its alarm is out
    for t, value in enumerate(onset):
        if value > 0:
            if run >= 0:
                run += 1
                if run >= wait or value >= 1.0:
                    out[t], run = value, -1
            elif value >= 1.0:  # a range alarm after its run's alarm went out: reported all the same
                out[t] = value
        else:
            if run > 0:
                out[t] = onset[t - 1]
            run = 0
    return out


def range_alarms(values: np.ndarray, tolerance: float = 0.05, ignore: np.ndarray | None = None) -> np.ndarray:
    """Rows whose value lies more than ``tolerance`` x (max - min) above the maximum or below the
    minimum of all the values before it (none while those values are all equal); a boolean mask.
    Rows set in the mask ``ignore`` (absurd values, :func:`~rnnlab.tasks.anomaly.robust.range_exempt`)
    can raise an alarm but do not widen the range for the rows after them.

    This is the "spatial anomaly" rule of NAB's HTM detector (``SPATIAL_TOLERANCE = 0.05`` in
    ``nab/detectors/numenta/numenta_detector.py``), which sets the final score of such rows to 1.
    Row t uses rows up to t only.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) < 2 or not tolerance > 0:
        return np.zeros(len(v), dtype=bool)
    kept = np.ones(len(v), dtype=bool) if ignore is None else ~np.asarray(ignore, dtype=bool)
    lo = np.minimum.accumulate(np.where(kept, v, np.inf))[:-1]  # min and max of the rows before row t, t >= 1
    hi = np.maximum.accumulate(np.where(kept, v, -np.inf))[:-1]
    margin = tolerance * (hi - lo)
    out = np.zeros(len(v), dtype=bool)
    with np.errstate(invalid="ignore"):  # no kept row yet: lo = inf, hi = -inf, no alarm
        out[1:] = np.isfinite(margin) & (hi > lo) & ((v[1:] > hi + margin) | (v[1:] < lo - margin))
    return out


def range_scores(values: np.ndarray, start: int, tolerance: float = 0.05, warmup: int = 0,
                 suppress: int = 50, warmup_alarms: bool = False, peak: int = 0) -> np.ndarray:
    """The range alarms alone, as a detector's scores: 1 at their onsets after the first
    ``start + warmup`` rows (after the first ``start`` with ``warmup_alarms``), 0 elsewhere (the
    baseline that shows what the networks add)."""
    from .robust import range_exempt

    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return _finish(np.zeros(len(values)), start, warmup, suppress,
                   range_alarms(values, tolerance, ignore=range_exempt(values, start)), warmup_alarms, peak)


def log_scale(q: np.ndarray) -> np.ndarray:
    """HTM's ``computeLogLikelihood`` of the likelihood ``1 - q``: in [0, 1], larger = rarer."""
    return np.clip(np.log(q + LOG_FLOOR) / math.log(LOG_FLOOR), 0.0, 1.0)


def _rolling_mean(a: np.ndarray, width: int) -> np.ndarray:
    """Mean of a[max(0, t-width+1) .. t] for every t."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    t = np.arange(len(a))
    lo = np.maximum(0, t - width + 1)
    return (c[t + 1] - c[lo]) / (t + 1 - lo)


NOVEL_WINDOW = 10       # value novelty (--online-novel): HTM's averaging window of its raw score
MEAN_FLOOR = 0.03       # nupic's floors under the estimated mean and variance
VAR_FLOOR = 3e-4


def novelty_z(novel: np.ndarray, long: int, width: int = NOVEL_WINDOW) -> np.ndarray:
    """HTM's likelihood z of a 0/1 measure: the ``width``-row mean m_t against the mean and standard
    deviation of m over the ``long`` rows up to t, floored as nupic floors them. Row t uses rows <= t."""
    m = _rolling_mean(np.asarray(novel, dtype=np.float64), width)
    mean, sq = _rolling_mean(m, long), _rolling_mean(m * m, long)
    return (m - np.maximum(mean, MEAN_FLOOR)) / np.sqrt(np.maximum(sq - mean * mean, VAR_FLOOR))


def likelihood_z(raw: np.ndarray, short: int = 5, long: int = 8640, floor: float = 1e-3) -> np.ndarray:
    """``z_t`` of the anomaly likelihood for every row of ``raw`` (the short-window mean against the
    long-window statistics of those means; row t uses rows up to t)."""
    m = _rolling_mean(raw, short)
    mean = _rolling_mean(m, long)
    sq = _rolling_mean(m * m, long)
    sd = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    scale = np.maximum(sd, floor * np.maximum(np.abs(mean), 1e-12))
    return (m - mean) / np.where(scale > 0, scale, 1.0)


def two_scale_z(raw: np.ndarray, short: int, slow: int, long: int, floor: float = 1e-3) -> np.ndarray:
    """:func:`likelihood_z` over ``short`` rows, or with ``slow > 0`` the larger of it and the same over
    ``slow`` rows, row by row."""
    z = likelihood_z(raw, short, long, floor)
    return np.maximum(z, likelihood_z(raw, slow, long, floor)) if slow > 0 else z


def anomaly_likelihood(raw: np.ndarray, start: int, first: int = 0, short: int = 5, long: int = 8640,
                       suppress: int = 50, floor: float = 1e-3, warmup: int = 0,
                       alarms: np.ndarray | None = None, warmup_alarms: bool = False,
                       peak: int = 0, slow: int = 0, novel: np.ndarray | None = None) -> np.ndarray:
    """Scores in [0, 1] from the raw measure ``raw[first:]`` (rows before ``first`` have none).

    Row t uses only rows up to t. The long-window statistics use rows from ``first`` on; with
    ``warmup = W > 0`` only rows from ``start`` on (a detector's measure on the rows it trained on
    is smaller than on new rows, and would make every new row look rare), and the first W of those
    score 0 while the statistics gather. Several raw measures (``raw`` of shape (k, n), e.g. two
    detectors'): the mean of their z_t, each from its own statistics. Rows where the boolean
    mask ``alarms`` is set (:func:`range_alarms`) score 1 before the onset rule, in the ``warmup``
    rows too with ``warmup_alarms`` (the range rule needs no statistics). ``peak = N``: one alarm per
    run of onsets, at its peak (:func:`peaks`). ``slow = S2``: each measure's z is the larger of the
    ``short`` and the ``S2``-row window's (module docstring). ``novel`` (a 0/1 measure per row,
    :func:`~rnnlab.tasks.anomaly.novelty.novel_rows`): each row's z is also at least that channel's
    (:func:`novelty_z`, over the same rows).
    """
    raws = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    out = np.zeros(raws.shape[1])
    if warmup > 0:
        first = max(first, start)
    if first >= len(out):
        return out
    z = np.mean([two_scale_z(a[first:], short, slow, long, floor) for a in raws], axis=0)
    if novel is not None:
        z = np.maximum(z, novelty_z(np.asarray(novel, dtype=np.float64)[first:], long))
    out[first:] = decade_scale(log_tail(z))
    return _finish(out, max(start, first), warmup, suppress, alarms, warmup_alarms, peak)


def _finish(out: np.ndarray, start: int, warmup: int, suppress: int, alarms: np.ndarray | None,
            warmup_alarms: bool = False, peak: int = 0) -> np.ndarray:
    """Range alarms score 1, the first ``start + warmup`` rows 0 (but the range alarms among the
    ``warmup`` rows with ``warmup_alarms``), then onsets only, then (``peak``) one per run."""
    unscored = start + max(warmup, 0)
    if alarms is not None:
        alarms = np.asarray(alarms, dtype=bool)
        out[alarms] = 1.0
    out[:unscored] = 0.0
    if warmup_alarms and alarms is not None and unscored > start:
        out[start:unscored][alarms[start:unscored]] = 1.0
    return peaks(onsets(out, suppress), peak)


def gaussian_tail(raw: np.ndarray, start: int, first: int = 0, suppress: int = 50,
                  alarms: np.ndarray | None = None, peak: int = 0, **_: Any) -> np.ndarray:
    """Scores from the tail probability of each raw value under N(mean, sd) of raw[first:start]."""
    raw = np.asarray(raw, dtype=np.float64)
    ref = raw[first:start]
    mu, sd = float(ref.mean()), float(ref.std()) or 1.0
    return _finish(decade_scale(log_tail((raw - mu) / sd)), max(start, first), 0, suppress, alarms, peak=peak)


POST = {"likelihood": anomaly_likelihood, "gaussian": gaussian_tail}
