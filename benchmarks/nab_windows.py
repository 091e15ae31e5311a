"""Per-window diagnosis of NAB outputs: which windows each detector catches, how early, and
where its false positives fall, at its corpus-optimised threshold.

    python benchmarks/nab_windows.py ../shared/data/nab runs/detect/<run>/scores/<det>-seed<k> [...] [--groups G1,G2]

Each argument after the corpus is a folder of ``<group>/<file>.csv`` score files (``anomaly_score``
column, as ``rnnlab detect nab --out`` writes them); HTM's published outputs are always shown.
Thresholds are optimised over the groups the score folders hold; ``--groups`` only limits what is shown.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from rnnlab.tasks.anomaly.nab import (PROFILES, load_corpus, load_results, optimize_threshold,
                                      probationary_length, score_file, sweep_scores)


def read_scores(folder: Path, corpus) -> dict[str, np.ndarray]:
    out = {}
    for key in corpus.files:
        with open(folder / key) as f:
            out[key] = np.array([float(r["anomaly_score"]) for r in csv.DictReader(f)])
    return out


def describe(name: str, scores: dict, corpus, profile, groups=()) -> dict[str, list[str]]:
    t, s = optimize_threshold(scores, corpus, profile)
    cells = {}
    for key, f in corpus.files.items():
        if groups and key.split("/")[0] not in groups:
            continue
        fs = score_file(key, f, scores[key], profile, t)
        start = probationary_length(len(f))
        det = (scores[key] >= t) & (np.arange(len(f)) >= start)
        w = sweep_scores(f, profile)
        inside = np.zeros(len(f), bool)
        for a, b in f.windows:
            inside[a:b + 1] = True
        row = []
        for a, b in f.windows:
            hits = np.flatnonzero(det[a:b + 1])
            row.append(f"{hits[0] / (b - a + 1):.2f}({w[a + hits[0]]:+.2f})" if len(hits) else "MISS")
        fps = np.flatnonzero(det & ~inside)
        row.append(f"FP {len(fps)} ({w[fps].sum():+.2f})")
        row.append(f"file {fs.score:+.2f}")
        cells[key.split('/')[-1][:28]] = row
    print(f"\n== {name}: threshold {t:.4f}, corpus score {s:+.2f}")
    for k, row in cells.items():
        print(f"  {k:28s} " + "  ".join(row))
    return cells


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--groups", default="", help="show only these groups (comma-separated; the threshold is "
                    "still optimised over the whole corpus, as in the tables)")
    a = ap.parse_args()
    # the corpus: the groups every score folder holds (a realKnownCause run's folder: those 7 files)
    held = [{d.name for d in Path(f).iterdir() if d.is_dir()} for f in a.folders]
    corpus = load_corpus(a.root, sorted(set.intersection(*held)) if held else None)
    groups = [g for g in a.groups.split(",") if g]
    profile = PROFILES[a.profile]
    print("window cells: relative position of the first detection (0 = window start) and its reward")
    describe("HTM", load_results(Path(a.root) / "results", "numenta", corpus), corpus, profile, groups)
    for folder in a.folders:
        describe(folder, read_scores(Path(folder), corpus), corpus, profile, groups)


if __name__ == "__main__":
    main()
