"""The Numenta Anomaly Benchmark (NAB) scorer, with NAB's rules (numenta/NAB ``nab/sweeper.py``,
``nab/scorer.py``, ``nab/optimizer.py``, ``nab/runner.py``), in NumPy.

A detector gives every row of a series an anomaly score; a row is a *detection* when its score is
``>= threshold``. Each file is scored on its own, then the files' scores are summed:

* **Probationary period.** The first ``min(floor(0.15 * rows), 0.15 * 5000)`` rows (at most 750)
  are the detector's warm-up: they are not scored, neither their detections nor their labels. A
  window with no row after the probationary period is left out (neither TP nor FN).
* **Windows.** Each labelled window ``[first, last]`` (rows, inclusive; ``width = last - first + 1``)
  contributes once: if some scored row in it is a detection, the *earliest* such row, at relative
  position ``p = -(last - i + 1) / width`` (-1 at the window's first row, -1/width at its last),
  earns ``A_TP * sigma(p) / sigma(-1)``, where ``sigma(p) = 2 / (1 + exp(5 p)) - 1`` is NAB's
  scaled sigmoid (``scaledSigmoid``; -1 for ``p > 3``): exactly ``A_TP`` at the window's start,
  less later. Later detections in the same window add nothing (NAB takes the maximum, which is
  the earliest). A window without a detection costs ``-A_FN``.
* **False positives.** Every detection outside all windows costs, before the first window,
  ``-A_FP``; after a window ending at row ``last`` (the nearest preceding one), ``A_FP *
  sigma(p)`` with ``p = (i - last) / (width - 1)``: nearly nothing just after the window, the full
  ``-A_FP`` from ``3 * (width - 1)`` rows after it on. True negatives count nothing (A_TN unused).
* **Counts.** TP, FP, FN, TN count scored *rows* (a detected row in a window is a TP, an
  undetected one a FN, ...), as in NAB's per-file CSV; ``Total_Count`` is the file's row count as
  NAB's published ``numenta_*_scores.csv`` have it (today's NAB sweeper would report the scored
  rows only, ``TP + TN + FP + FN``).
* **Per-row S(t).** The published ``S(t)_<profile>`` columns (NAB's scorer before the sweeper)
  hold each window's contribution at the window's first row and each false positive's at its
  row, zero elsewhere; they sum to the file's score. :attr:`FileScore.contributions` is that column.
* **Threshold.** NAB's sweeper lists every distinct score of the scored rows of all files as a
  threshold (plus one above all scores, 1.1, for a detector that never fires), from the highest
  down, and keeps the one with the largest corpus score; of equal scores, the highest threshold
  (the first in that order) wins.
* **Normalised score.** ``100 * (S - S_null) / (S_perfect - S_null)``: ``S_perfect = A_TP *`` the
  number of windows, ``S_null`` the score of a detector that never fires (``-A_FN`` per window),
  so a never-firing detector scores 0 and one firing at the start of each window 100.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from rnnlab.errors import DataError
from rnnlab.tasks.anomaly.nab_data import (PROFILES, NabCorpus, NabFile, Profile, load_corpus,
                                           load_profiles, load_results)

__all__ = ["PROFILES", "NabCorpus", "NabFile", "Profile", "load_corpus", "load_profiles",
           "load_results", "FileScore", "CorpusScore", "Sweep", "scaled_sigmoid", "probationary_length",
           "sweep_scores", "score_file", "score_corpus", "sweep", "optimize_threshold", "null_score",
           "perfect_score", "normalized_score", "evaluate", "null_detector", "random_detector", "perfect_detector"]

PROBATIONARY_PERCENT = 0.15
NEVER = 1.1  # NAB's threshold of the detector that never fires (scores are in [0, 1])


def scaled_sigmoid(x):
    """NAB's ``scaledSigmoid``: ``2 * sigmoid(-5 x) - 1``, and exactly -1 for ``x > 3``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        val = 2.0 * (1.0 / (1.0 + np.exp(5.0 * x))) - 1.0
    return np.where(x > 3.0, -1.0, val)


def probationary_length(rows: int, percent: float = PROBATIONARY_PERCENT) -> float:
    """NAB's ``getProbationaryLength``: rows ``i < min(floor(percent * rows), percent * 5000)``
    are not scored."""
    return min(math.floor(percent * rows), percent * 5000)


def sweep_scores(nab_file: NabFile, profile: Profile) -> np.ndarray:
    """Per row, what a detection there would earn (NAB's ``AnomalyPoint.sweepScore``): in a window
    the weighted TP reward of its position, outside windows the weighted FP cost."""
    n = len(nab_file)
    w = np.full(n, -1.0 * profile.fp)  # before any window: a plain FP
    max_tp = float(scaled_sigmoid(-1.0))
    rows = np.arange(n)
    for k, (first, last) in enumerate(nab_file.windows):
        width = last - first + 1
        pos = -(last - rows[first:last + 1] + 1) / float(width)
        w[first:last + 1] = scaled_sigmoid(pos) * profile.tp / max_tp
        end = nab_file.windows[k + 1][0] if k + 1 < len(nab_file.windows) else n
        after = rows[last + 1:end]
        if width > 1:
            w[last + 1:end] = scaled_sigmoid(np.abs(last - after) / float(width - 1)) * profile.fp
        else:  # NAB divides by zero here; the limit of its formula is a plain FP
            w[last + 1:end] = -1.0 * profile.fp
    return w


def _window_ids(nab_file: NabFile) -> np.ndarray:
    ids = np.full(len(nab_file), -1)
    for k, (first, last) in enumerate(nab_file.windows):
        ids[first:last + 1] = k
    return ids


def _checked(key: str, nab_file: NabFile, scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(nab_file):
        raise DataError(f"{key}: the detector gave {len(s)} scores for {len(nab_file)} rows")
    if not np.isfinite(s).all():
        raise DataError(f"{key}: the detector's score at row {int(np.argmin(np.isfinite(s)))} is not finite")
    return s


@dataclass
class Sweep:
    """Corpus score and row counts at each candidate threshold, highest threshold first (NAB's
    ``ThresholdScore`` list): entry 0 is the detector that never fires."""

    thresholds: np.ndarray
    scores: np.ndarray
    tp: np.ndarray
    tn: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def at(self, threshold: float) -> int:
        """Index of the entry whose detections are the rows with score ``>= threshold``."""
        return int(np.searchsorted(-self.thresholds[1:], -threshold, side="right"))

    def best(self) -> int:
        """Index of the highest score; of equal ones the first (highest threshold), as NAB."""
        return int(np.argmax(self.scores))


def sweep(detector_scores: Mapping[str, np.ndarray], corpus: NabCorpus, profile: Profile,
          probationary_percent: float = PROBATIONARY_PERCENT) -> Sweep:
    """NAB's ``calcScoreByThreshold`` over all files of ``corpus`` together."""
    parts_s, parts_w, parts_win, n_win = [], [], [], 0
    for key, nab_file in corpus.files.items():
        if key not in detector_scores:
            raise DataError(f"no detector scores for {key}")
        s = _checked(key, nab_file, detector_scores[key])
        start = probationary_length(len(nab_file), probationary_percent)
        keep = np.arange(len(nab_file)) >= start
        ids = _window_ids(nab_file)
        parts_s.append(s[keep])
        parts_w.append(sweep_scores(nab_file, profile)[keep])
        parts_win.append(np.where(ids[keep] >= 0, ids[keep] + n_win, -1))
        n_win += len(nab_file.windows)
    s, w, win = (np.concatenate(p) if p else np.zeros(0) for p in (parts_s, parts_w, parts_win))
    win = win.astype(np.int64)
    order = np.argsort(-s, kind="stable")  # as Python's sorted(..., reverse=True): ties keep file order
    s, w, win = s[order], w[order], win[order]
    inside = win >= 0
    # Entry k holds the first counts[k] rows of the sorted list: none, then each distinct score.
    new_value = np.flatnonzero(np.diff(s) != 0) + 1
    counts = np.concatenate([[0], new_value, [len(s)]]) if len(s) else np.zeros(1, dtype=np.int64)
    thresholds = np.concatenate([[max(NEVER, np.nextafter(s[0], np.inf)) if len(s) else NEVER],
                                 s[counts[:-1]] if len(s) else []])
    fp_sum = np.concatenate([[0.0], np.cumsum(np.where(inside, 0.0, w))])[counts]
    tp = np.concatenate([[0], np.cumsum(inside)])[counts]
    fp = counts - tp
    total = fp_sum
    # Each window: the best (earliest) detection so far, or -A_FN while it has none; NAB sums its
    # parts in order of each window's first appearance in the sorted list, and so does this.
    present, first_seen = np.unique(win[inside], return_index=True)
    for k in present[np.argsort(first_seen)]:
        at = np.flatnonzero(win == k)
        best = np.maximum(-profile.fn, np.maximum.accumulate(w[at]))
        m = np.searchsorted(at, counts)  # rows of window k among the first counts[j]
        total = total + np.where(m > 0, best[np.maximum(m - 1, 0)], -profile.fn)
    return Sweep(thresholds, total, tp, int(np.sum(~inside)) - fp, fp, int(inside.sum()) - tp)


@dataclass
class FileScore:
    """One row of NAB's ``<detector>_<profile>_scores.csv`` (``Score, TP, TN, FP, FN,
    Total_Count``), with the per-row ``S(t)`` contributions."""

    file: str
    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total_count: int
    contributions: np.ndarray = field(default=None, repr=False)


@dataclass
class CorpusScore:
    """The per-file rows and NAB's ``Totals`` row (sums of the files' columns)."""

    profile: str
    threshold: float
    rows: list[FileScore]
    total: FileScore


def score_file(key: str, nab_file: NabFile, scores, profile: Profile, threshold: float,
               probationary_percent: float = PROBATIONARY_PERCENT) -> FileScore:
    """Score one file at ``threshold`` (NAB's ``Sweeper.scoreDataSet``)."""
    s = _checked(key, nab_file, scores)
    one = NabCorpus({key: nab_file})
    sw = sweep({key: s}, one, profile, probationary_percent)
    j = sw.at(threshold)
    # The published S(t) column: each scored window's value at its first row, each FP at its row.
    start = probationary_length(len(nab_file), probationary_percent)
    detected = (s >= threshold) & (np.arange(len(nab_file)) >= start)
    w = sweep_scores(nab_file, profile)
    contrib = np.where(detected & (_window_ids(nab_file) < 0), w, 0.0)
    for first, last in nab_file.windows:
        if last < start:
            continue  # wholly in the probationary period: not scored
        hits = np.flatnonzero(detected[first:last + 1])
        contrib[first] = w[first + hits[0]] if len(hits) else -profile.fn
    return FileScore(key, threshold, float(sw.scores[j]), int(sw.tp[j]), int(sw.tn[j]), int(sw.fp[j]),
                     int(sw.fn[j]), len(nab_file), contrib)


def score_corpus(detector_scores: Mapping[str, np.ndarray], corpus: NabCorpus, profile: Profile,
                 threshold: float, probationary_percent: float = PROBATIONARY_PERCENT) -> CorpusScore:
    """Score every file of ``corpus`` at one threshold (NAB's ``scoreCorpus``)."""
    rows = []
    for key, nab_file in corpus.files.items():
        if key not in detector_scores:
            raise DataError(f"no detector scores for {key}")
        rows.append(score_file(key, nab_file, detector_scores[key], profile, threshold,
                               probationary_percent))
    total = FileScore("Totals", threshold, 0.0, 0, 0, 0, 0, 0)
    for r in rows:  # NAB adds the files' columns in file order
        total.score += r.score
        for name in ("tp", "tn", "fp", "fn", "total_count"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return CorpusScore(profile.name, threshold, rows, total)


def optimize_threshold(detector_scores: Mapping[str, np.ndarray], corpus: NabCorpus, profile: Profile,
                       probationary_percent: float = PROBATIONARY_PERCENT) -> tuple[float, float]:
    """NAB's ``optimizeThreshold``: ``(threshold, score)`` with the largest corpus score."""
    sw = sweep(detector_scores, corpus, profile, probationary_percent)
    j = sw.best()
    return float(sw.thresholds[j]), float(sw.scores[j])


def null_score(corpus: NabCorpus, profile: Profile,
               probationary_percent: float = PROBATIONARY_PERCENT) -> float:
    """``S_null``: the score of a detector that never fires, ``-A_FN`` per scored window."""
    n = sum(1 for f in corpus for first, last in f.windows
            if last >= probationary_length(len(f), probationary_percent))
    return -profile.fn * n


def perfect_score(corpus: NabCorpus, profile: Profile) -> float:
    """``S_perfect``: ``A_TP`` per window (NAB counts every labelled window)."""
    return profile.tp * corpus.n_windows


def normalized_score(score: float, corpus: NabCorpus, profile: Profile,
                     probationary_percent: float = PROBATIONARY_PERCENT) -> float:
    """NAB's final score: ``100 * (S - S_null) / (S_perfect - S_null)``."""
    base = null_score(corpus, profile, probationary_percent)
    return 100.0 * (score - base) / (perfect_score(corpus, profile) - base)


def evaluate(detector_scores: Mapping[str, np.ndarray], corpus: NabCorpus,
             profiles: Mapping[str, Profile] = PROFILES, thresholds: Mapping[str, float] | None = None,
             probationary_percent: float = PROBATIONARY_PERCENT) -> dict[str, dict[str, float]]:
    """One results-table row per profile: ``{name: {"threshold", "score", "normalized"}}``, at the
    given thresholds (e.g. NAB's ``config/thresholds.json``) or, without them, at the optimised one."""
    out = {}
    for name, profile in profiles.items():
        if thresholds is None:
            t, score = optimize_threshold(detector_scores, corpus, profile, probationary_percent)
        else:
            t = float(thresholds[name])
            score = score_corpus(detector_scores, corpus, profile, t, probationary_percent).total.score
        out[name] = {"threshold": t, "score": score,
                     "normalized": normalized_score(score, corpus, profile, probationary_percent)}
    return out


# -- baseline detectors -------------------------------------------------------------------------
def null_detector(corpus: NabCorpus) -> dict[str, np.ndarray]:
    """Scores 0 everywhere: at any threshold above 0 it never fires (normalised score 0)."""
    return {key: np.zeros(len(f)) for key, f in corpus.files.items()}


def random_detector(corpus: NabCorpus, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded uniform [0, 1) scores, one generator over the files in corpus order."""
    rng = np.random.default_rng(seed)
    return {key: rng.random(len(f)) for key, f in corpus.files.items()}


def perfect_detector(corpus: NabCorpus) -> dict[str, np.ndarray]:
    """Scores 1 at the first row of each window, 0 elsewhere: normalised score 100 at any
    threshold in (0, 1] when no window starts in the probationary period."""
    out = {}
    for key, f in corpus.files.items():
        s = np.zeros(len(f))
        s[[first for first, _ in f.windows]] = 1.0
        out[key] = s
    return out
