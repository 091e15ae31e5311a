"""Running detectors over a NAB corpus and scoring them all alike.

:func:`run_nab` fits and scores a detector on every file of a NAB folder (each file on its own,
from its own probationary period), for each seed; :func:`nab_table` scores those outputs with
NAB's rules, the threshold of each profile optimised over the scored corpus, the same way for
every detector: the LSTM detectors, the null and random baselines, and HTM's published outputs
(``DIR/results/numenta/...``) when present. :func:`leave_one_out` is the held-out check of that
optimisation: each file scored at the threshold optimised on the other files.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...errors import DataError
from .detector import Detector, DetectorConfig, probationary_rows
from .likelihood import range_scores
from .nab import (PROFILES, NabCorpus, Profile, evaluate, load_corpus, load_results, normalized_score,
                  null_detector, optimize_threshold, random_detector, score_file)


@dataclass
class DetectorRun:
    """One detector's scores on a corpus for one seed, and the time it took."""

    detector: str
    seed: int
    scores: dict[str, np.ndarray]
    seconds: float
    rows: int
    raw: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # the raw measure per file

    @property
    def seconds_per_10k(self) -> float:
        return 1e4 * self.seconds / max(self.rows, 1)


@dataclass
class TableRow:
    name: str
    normalized: dict[str, list[float]] = field(default_factory=dict)   # profile -> one value per seed
    held_out: dict[str, list[float]] = field(default_factory=dict)     # the same, leave-one-file-out
    seconds_per_10k: list[float] = field(default_factory=list)

    def mean_std(self, profile: str, held_out: bool = False) -> tuple[float, float]:
        v = np.asarray((self.held_out if held_out else self.normalized)[profile])
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _file_bar(total: int, desc: str, enabled: bool) -> Any:
    """tqdm over files when installed and on a terminal; plain lines otherwise."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm  # optional extra
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, leave=False) if sys.stderr.isatty() else None


def run_nab(corpus: NabCorpus | str | Path, detector: str = "pred", seeds: Sequence[int] = (0,), *,
            groups: Sequence[str] | None = None, progress: bool = True,
            log: Callable[[str], None] = print, **options: Any) -> list[DetectorRun]:
    """Fit and score ``detector`` on every file of ``corpus`` for each seed."""
    if not isinstance(corpus, NabCorpus):
        corpus = load_corpus(corpus, groups)
    total_rows = sum(len(f) for f in corpus)
    runs = []
    for seed in seeds:
        bar = _file_bar(len(corpus), f"{detector} seed {seed}", progress)
        scores, raw, t0 = {}, {}, time.perf_counter()
        for i, (key, f) in enumerate(corpus.files.items()):
            det = Detector(detector, seed=seed, **options)
            try:
                scores[key] = det.fit_score(f.values, f.timestamps)
            except DataError as e:
                raise DataError(f"{key}: {e}") from None
            raw[key] = det.last_fit["raw"]
            if bar is not None:
                bar.update(1)
            elif progress:
                log(f"  {detector} seed {seed}: [{i + 1}/{len(corpus)}] {key} ({len(f)} rows, "
                    f"{det.last_fit['total_s']:.1f}s)")
        if bar is not None:
            bar.close()
        runs.append(DetectorRun(detector, seed, scores, time.perf_counter() - t0, total_rows, raw))
    return runs


RANGE_ONLY = "range alarms alone (no network)"


def reference_scores(corpus: NabCorpus, seeds: Sequence[int] = (0,), *, range_tolerance: float | None = None,
                     warmup: int | None = None, suppress: int | None = None) -> dict[str, list[dict[str, np.ndarray]]]:
    """The baselines' outputs: ``null`` (once), ``random`` (one per seed), the detectors' range
    alarms alone (with the detectors' ``range_tolerance``, ``warmup`` and ``suppress``, defaults
    as :class:`DetectorConfig`; left out when the tolerance is 0) and ``numenta`` (HTM's published
    outputs, when the corpus folder has ``results/numenta``)."""
    cfg = DetectorConfig()
    tol = cfg.range_tolerance if range_tolerance is None else range_tolerance
    out: dict[str, list[dict[str, np.ndarray]]] = {"null": [null_detector(corpus)],
                                                    "random": [random_detector(corpus, s) for s in seeds]}
    if tol > 0:
        out[RANGE_ONLY] = [{key: range_scores(f.values, probationary_rows(len(f)), tol,
                                              cfg.warmup if warmup is None else warmup,
                                              cfg.suppress if suppress is None else suppress)
                            for key, f in corpus.files.items()}]
    results = Path(corpus.root) / "results" if corpus.root is not None else None
    if results is not None and (results / "numenta").is_dir():
        out["numenta (HTM)"] = [load_results(results, "numenta", corpus)]
    return out


def leave_one_out(detector_scores: Mapping[str, np.ndarray], corpus: NabCorpus, profile: Profile) -> dict[str, Any]:
    """Leave-one-file-out NAB score: each file scored at the threshold optimised (NAB's optimiser)
    on all the *other* files, the files' scores summed and normalised over the whole corpus. Unlike
    the in-sample optimum it does not reward a threshold tuned to the very file it is scored on.
    Returns ``{"thresholds": {file: t}, "scores": {file: score}, "score", "normalized"}``."""
    if len(corpus) < 2:
        raise DataError("leave-one-file-out needs at least two files")
    thresholds, scores = {}, {}
    for key, nab_file in corpus.files.items():
        rest = NabCorpus({k: f for k, f in corpus.files.items() if k != key}, corpus.root)
        thresholds[key] = optimize_threshold(detector_scores, rest, profile)[0]
        scores[key] = score_file(key, nab_file, detector_scores[key], profile, thresholds[key]).score
    total = float(sum(scores.values()))
    return {"thresholds": thresholds, "scores": scores, "score": total,
            "normalized": normalized_score(total, corpus, profile)}


def nab_table(corpus: NabCorpus, runs: Mapping[str, list], profiles=PROFILES,
              held_out: bool = True) -> list[TableRow]:
    """Normalised NAB score per profile of each entry of ``runs`` (``name -> [DetectorRun or
    scores dict, one per seed]``), thresholds optimised over the corpus for each alike; with
    ``held_out`` also the leave-one-file-out score (:func:`leave_one_out`, corpora of 2+ files)."""
    rows = []
    held_out = held_out and len(corpus) > 1
    for name, items in runs.items():
        row = TableRow(name, {p: [] for p in profiles}, {p: [] for p in profiles} if held_out else {})
        for item in items:
            scores = item.scores if isinstance(item, DetectorRun) else item
            for p, r in evaluate(scores, corpus, profiles).items():
                row.normalized[p].append(r["normalized"])
                if held_out:
                    row.held_out[p].append(leave_one_out(scores, corpus, profiles[p])["normalized"])
            if isinstance(item, DetectorRun):
                row.seconds_per_10k.append(item.seconds_per_10k)
        rows.append(row)
    return rows


def _cell(row: TableRow, p: str, held_out: bool = False) -> str:
    m, s = row.mean_std(p, held_out)
    return f"{m:.1f} ± {s:.1f}" if len(row.normalized[p]) > 1 else f"{m:.1f}"


def format_table(rows: list[TableRow], profiles=PROFILES) -> str:
    """A Markdown table: normalised score (mean ± std over seeds) per profile, the standard
    profile's leave-one-file-out score when the rows have it, time per 10k rows."""
    names = list(profiles)
    lofo = bool(rows) and "standard" in rows[0].held_out
    extra = " standard, leave-one-file-out |" if lofo else ""
    lines = ["| detector | " + " | ".join(names) + f" |{extra} seeds | s per 10k rows |",
             "| --- | " + " | ".join("---:" for _ in names + ([0] if lofo else [])) + " | ---: | ---: |"]
    for row in rows:
        cells = [_cell(row, p) for p in names] + ([_cell(row, "standard", True)] if lofo else [])
        t = f"{np.mean(row.seconds_per_10k):.1f}" if row.seconds_per_10k else "-"
        lines.append(f"| {row.name} | " + " | ".join(cells) + f" | {len(row.normalized[names[0]])} | {t} |")
    return "\n".join(lines)
