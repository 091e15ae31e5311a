"""Running detectors over a NAB corpus and scoring them all alike.

:func:`run_nab` fits and scores a detector on every file of a NAB folder (each file on its own,
from its own probationary period), for each seed; :func:`nab_table` scores those outputs with
NAB's rules, the threshold of each profile optimised over the scored corpus, the same way for
every detector: the LSTM detectors, the null and random baselines, and HTM's published outputs
(``DIR/results/numenta/...``) when present. :func:`leave_one_out` is the held-out check of that
optimisation: each file scored at the threshold optimised on the other files.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...io.atomic import atomic_write
from ...errors import DataError
from ...train.progress import WorkProgress
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
    thresholds: dict[str, list[float]] = field(default_factory=dict)   # profile -> the threshold used, per seed
    fixed: bool = False                                                # thresholds given, not optimised
    seconds_per_10k: list[float] = field(default_factory=list)

    def mean_std(self, profile: str, held_out: bool = False) -> tuple[float, float]:
        v = np.asarray((self.held_out if held_out else self.normalized)[profile])
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _fit_file(detector: str, seed: int, options: dict[str, Any], key: str, values: np.ndarray,
              timestamps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """One fit: ``detector`` from ``seed`` on one file; (scores, raw measure, seconds). Runs wherever the
    executor puts it (this process, a worker process, a Ray task)."""
    det, t0 = Detector(detector, seed=seed, **options), time.perf_counter()
    try:
        file_scores = det.fit_score(values, timestamps, progress=False)  # the bar is per file
    except DataError as e:
        raise DataError(f"{key}: {e}") from None
    return file_scores, det.last_fit["raw"], time.perf_counter() - t0


def run_nab(corpus: NabCorpus | str | Path, detector: str = "pred", seeds: Sequence[int] = (0,), *,
            groups: Sequence[str] | None = None, progress: bool = True, store: str | Path | None = None,
            log: Callable[[str], None] = print, executor: Any = None, **options: Any) -> list[DetectorRun]:
    """Fit and score ``detector`` on every file of ``corpus`` for each seed.

    The fits (files x seeds) are independent: they run on ``executor`` (:mod:`rnnlab.train.executor`:
    a local process pool or Ray), one after the other in this process by default; each is seeded by
    its file and seed alone, so the results do not depend on where they ran.
    With ``store`` (a folder) each file's scores, raw measure and seconds are saved there as soon as
    the file is done, and files already saved are read back instead of fitted again: an
    interrupted job continues where it stopped, with the same results (each file is fitted on its
    own from the seed, so the order of work does not matter). The time per 10k rows is the sum of
    the files' own fitting times, wherever they were made."""
    from ...train.executor import Serial, WorkerLost

    if not isinstance(corpus, NabCorpus):
        corpus = load_corpus(corpus, groups)
    executor = executor if executor is not None else Serial(log=log)
    total_rows = sum(len(f) for f in corpus)
    keys = list(corpus.files)
    done: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, float]] = {}
    todo: list[tuple[int, str]] = []
    for seed in seeds:
        for key in keys:
            saved = _saved_path(store, detector, seed, key)
            found = _load_saved(saved, len(corpus[key])) if saved is not None and saved.is_file() else None
            if found is None:
                todo.append((seed, key))
            else:
                done[(seed, key)] = found
    bars = {seed: WorkProgress(len(corpus), f"{detector} seed {seed}", unit="file", enabled=progress, every_s=None)
            for seed in seeds}
    counts = {seed: sum(1 for s, _ in done if s == seed) for seed in seeds}
    for seed in seeds:
        bars[seed].advance(counts[seed])

    def finished(i: int, value: Any) -> None:
        seed, key = todo[i]
        if isinstance(value, WorkerLost):
            raise DataError(f"{key}, seed {seed}: {value}; rerun the job (with --resume to keep the files done)")
        done[(seed, key)] = value
        saved = _saved_path(store, detector, seed, key)
        if saved is not None:
            with atomic_write(saved) as fh:
                np.savez(fh, scores=value[0], raw=value[1], seconds=value[2])
        counts[seed] += 1
        bars[seed].advance(1)
        if progress and not bars[seed].on_terminal:
            log(f"  {detector} seed {seed}: [{counts[seed]}/{len(corpus)}] {key} ({len(corpus[key])} rows, "
                f"{value[2]:.1f}s)")

    try:
        executor.map(_fit_file, [(detector, seed, dict(options), key, corpus[key].values, corpus[key].timestamps)
                                 for seed, key in todo], on_result=finished)
    finally:
        for bar in bars.values():
            bar.close()
    runs = []
    for seed in seeds:
        scores = {key: done[(seed, key)][0] for key in keys}
        raw = {key: done[(seed, key)][1] for key in keys}
        seconds = sum(done[(seed, key)][2] for key in keys)
        runs.append(DetectorRun(detector, seed, scores, seconds, total_rows, raw))
    return runs


def _saved_path(store: str | Path | None, detector: str, seed: int, key: str) -> Path | None:
    return Path(store) / f"{detector}-seed{seed}" / (key.replace("/", "__") + ".npz") if store else None


def _load_saved(path: Path, rows: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A file's saved (scores, raw, seconds), checked; a damaged one is a DataError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = (np.asarray(z["scores"], dtype=np.float64), np.asarray(z["raw"], dtype=np.float64),
                   float(z["seconds"]))
    except Exception as e:  # a truncated, foreign or hostile file: say which, never a traceback
        raise DataError(f"{path}: cannot read the saved scores ({type(e).__name__}); pass --force to start "
                        "over") from None
    if out[0].shape != (rows,) or out[1].shape[-1] != rows or not np.all((out[0] >= 0) & (out[0] <= 1)):
        raise DataError(f"{path}: the saved scores do not fit this file ({rows} rows); pass --force to start over")
    return out


RANGE_ONLY = "range alarms alone (no network)"


def reference_scores(corpus: NabCorpus, seeds: Sequence[int] = (0,), *, range_tolerance: float | None = None,
                     warmup: int | None = None, suppress: int | None = None,
                     warmup_alarms: bool | None = None) -> dict[str, list[dict[str, np.ndarray]]]:
    """The baselines' outputs: ``null`` (once), ``random`` (one per seed), the detectors' range
    alarms alone (with the detectors' ``range_tolerance``, ``warmup``, ``suppress`` and
    ``warmup_alarms``, defaults as :class:`DetectorConfig`; left out when the tolerance is 0) and
    ``numenta`` (HTM's published
    outputs, when the corpus folder has ``results/numenta``)."""
    cfg = DetectorConfig()
    tol = cfg.range_tolerance if range_tolerance is None else range_tolerance
    out: dict[str, list[dict[str, np.ndarray]]] = {"null": [null_detector(corpus)],
                                                    "random": [random_detector(corpus, s) for s in seeds]}
    if tol > 0:
        out[RANGE_ONLY] = [{key: range_scores(f.values, probationary_rows(len(f)), tol,
                                              cfg.warmup if warmup is None else warmup,
                                              cfg.suppress if suppress is None else suppress,
                                              cfg.warmup_alarms if warmup_alarms is None else warmup_alarms)
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
              held_out: bool = True, fixed: Mapping[str, Mapping[str, float]] | None = None) -> list[TableRow]:
    """Normalised NAB score per profile of each entry of ``runs`` (``name -> [DetectorRun or
    scores dict, one per seed]``), thresholds optimised over the corpus for each alike; with
    ``held_out`` also the leave-one-file-out score (:func:`leave_one_out`, corpora of 2+ files).
    Entries named in ``fixed`` (``name -> {profile: threshold}``, e.g. from ``--thresholds``) are
    scored at those thresholds instead; being chosen elsewhere, their held-out score is the same."""
    rows = []
    held_out = held_out and len(corpus) > 1
    fixed = fixed or {}
    for name, items in runs.items():
        row = TableRow(name, {p: [] for p in profiles}, {p: [] for p in profiles} if held_out else {},
                       {p: [] for p in profiles}, name in fixed)
        for item in items:
            scores = item.scores if isinstance(item, DetectorRun) else item
            for p, r in evaluate(scores, corpus, profiles, thresholds=fixed.get(name)).items():
                row.normalized[p].append(r["normalized"])
                row.thresholds[p].append(r["threshold"])
                if held_out:
                    row.held_out[p].append(r["normalized"] if name in fixed else
                                           leave_one_out(scores, corpus, profiles[p])["normalized"])
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
        lines.append(f"| {row.name}{' (fixed thresholds)' if row.fixed else ''} | " + " | ".join(cells) + f" | {len(row.normalized[names[0]])} | {t} |")
    return "\n".join(lines)
