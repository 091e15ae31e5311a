"""Running detectors over a NAB corpus and scoring them all alike.

:func:`run_nab` fits and scores a detector on every file of a NAB folder (each file on its own,
from its own probationary period), for each seed; :func:`nab_table` scores those outputs with
NAB's rules, the threshold of each profile optimised over the scored corpus, the same way for
every detector: the LSTM detectors, the null and random baselines, and HTM's published outputs
(``DIR/results/numenta/...``) when present.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...errors import DataError
from .detector import Detector
from .nab import PROFILES, NabCorpus, evaluate, load_corpus, load_results, null_detector, random_detector


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
    seconds_per_10k: list[float] = field(default_factory=list)

    def mean_std(self, profile: str) -> tuple[float, float]:
        v = np.asarray(self.normalized[profile])
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


def reference_scores(corpus: NabCorpus, seeds: Sequence[int] = (0,)) -> dict[str, list[dict[str, np.ndarray]]]:
    """The baselines' outputs: ``null`` (once), ``random`` (one per seed) and ``numenta`` (HTM's
    published outputs, when the corpus folder has ``results/numenta``)."""
    out: dict[str, list[dict[str, np.ndarray]]] = {"null": [null_detector(corpus)],
                                                    "random": [random_detector(corpus, s) for s in seeds]}
    results = Path(corpus.root) / "results" if corpus.root is not None else None
    if results is not None and (results / "numenta").is_dir():
        out["numenta (HTM)"] = [load_results(results, "numenta", corpus)]
    return out


def nab_table(corpus: NabCorpus, runs: Mapping[str, list], profiles=PROFILES) -> list[TableRow]:
    """Normalised NAB score per profile of each entry of ``runs`` (``name -> [DetectorRun or
    scores dict, one per seed]``), thresholds optimised over the corpus for each alike."""
    rows = []
    for name, items in runs.items():
        row = TableRow(name, {p: [] for p in profiles})
        for item in items:
            scores = item.scores if isinstance(item, DetectorRun) else item
            for p, r in evaluate(scores, corpus, profiles).items():
                row.normalized[p].append(r["normalized"])
            if isinstance(item, DetectorRun):
                row.seconds_per_10k.append(item.seconds_per_10k)
        rows.append(row)
    return rows


def format_table(rows: list[TableRow], profiles=PROFILES) -> str:
    """A Markdown table: normalised score (mean ± std over seeds) per profile, time per 10k rows."""
    names = list(profiles)
    lines = ["| detector | " + " | ".join(names) + " | seeds | s per 10k rows |",
             "| --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: |"]
    for row in rows:
        cells = []
        for p in names:
            m, s = row.mean_std(p)
            cells.append(f"{m:.1f} ± {s:.1f}" if len(row.normalized[p]) > 1 else f"{m:.1f}")
        t = f"{np.mean(row.seconds_per_10k):.1f}" if row.seconds_per_10k else "-"
        lines.append(f"| {row.name} | " + " | ".join(cells) + f" | {len(row.normalized[names[0]])} | {t} |")
    return "\n".join(lines)
