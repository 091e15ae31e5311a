"""Ensemble study on a NAB corpus: run single networks (ensemble members) once, keep their raw
anomaly measures, then score any combination of them offline (the score is a cheap function of
the raw measure, the training is not).

    # member k of seed S is what ``--ensemble K --seed S`` trains as its k-th network
    python benchmarks/nab_members.py run ../shared/data/nab --detector pred --seed 0 --members 0,1,2 \
        --out /tmp/members
    python benchmarks/nab_members.py eval ../shared/data/nab /tmp/members --detector pred --seeds 0,1,2 \
        --members 1,2,3 --short 3

``eval`` prints, for each ensemble size K in --members, the normalised NAB scores (in-sample
optimised threshold and leave-one-file-out) of the mean of members 0..K-1 per seed.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rnnlab.tasks.anomaly.benchmark import leave_one_out
from rnnlab.tasks.anomaly.detector import (
    Detector,
    DetectorConfig,
    first_scored,
    probationary_rows,
)
from rnnlab.tasks.anomaly.likelihood import POST, onsets, range_alarms
from rnnlab.tasks.anomaly.nab import PROFILES, evaluate, load_corpus


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def run(a) -> None:
    corpus = load_corpus(a.root, ["realKnownCause"])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = json.loads(a.options)
    for k in _ints(a.members):
        seed = Detector(a.detector, seed=a.seed).member_seed(k)
        raws, t0 = {}, time.perf_counter()
        for key, f in corpus.files.items():
            det = Detector(a.detector, seed=seed, **opts)
            det.fit_score(f.values, f.timestamps)
            raws[key] = det.last_fit["raw"]
        sec = time.perf_counter() - t0
        np.savez(out / f"{a.detector}-seed{a.seed}-m{k}.npz", seconds=sec, **raws)
        print(f"{a.detector} seed {a.seed} member {k}: {sec:.0f}s", flush=True)


def _first(detector: str) -> int:
    return first_scored(detector, DetectorConfig().window)


def ratio_onsets(score: np.ndarray, suppress: int, ratio: float) -> np.ndarray:
    """Onsets in decades: keep a row only if its D = -log10 Q exceeds ``ratio`` times the largest D of the
    ``suppress`` rows before it (ratio 1: likelihood.onsets)."""
    if ratio == 1.0:
        return onsets(score, suppress)
    d = 10.0 * score / (1.0 - score)
    padded = np.concatenate([np.full(suppress, 0.0), d])
    before = np.lib.stride_tricks.sliding_window_view(padded[:-1], suppress).max(axis=1)
    return np.where((d > ratio * before) & (d > 0), score, 0.0)


def combined_scores(corpus, folder: Path, detector: str, seed: int, k: int, short=5, long=8640, suppress=50,
                    mix: str = "", ratio: float = 1.0, warmup: int = 0,
                    range_tolerance: float = DetectorConfig().range_tolerance) -> dict:
    """Members 0..k-1's raw measures averaged, then scored; with ``mix`` (``FOLDER:DETECTOR:K``) the
    mean z of the likelihood of this ensemble and of that detector's members 0..K-1 (same seed);
    rows that leave the range of the values before them by more than ``range_tolerance`` of it score 1."""
    raws = [np.load(folder / f"{detector}-seed{seed}-m{m}.npz") for m in range(k)]
    other = None
    if mix:  # FOLDER:DETECTOR:K, that detector's members 0..K-1 averaged
        path, kind, k2 = mix.split(":")
        other = ([np.load(Path(path) / f"{kind}-seed{seed}-m{m}.npz") for m in range(int(k2))], _first(kind))
    out = {}
    for key, f in corpus.files.items():
        raw, start, first = np.mean([r[key] for r in raws], axis=0), probationary_rows(len(f)), _first(detector)
        if other is not None:  # each measure gets its own likelihood z; the score is that of their mean
            raw, first = np.stack([raw, np.mean([r[key] for r in other[0]], axis=0)]), max(first, other[1])
        score = POST["likelihood"](raw, start, first, short=short, long=long, suppress=0, warmup=warmup,
                                   alarms=range_alarms(f.values, range_tolerance))
        out[key] = ratio_onsets(score, suppress, ratio)
    return out


def evaluate_ensembles(a) -> None:
    corpus = load_corpus(a.root, ["realKnownCause"])
    post = {"short": a.short, "long": a.long, "suppress": a.suppress, "mix": a.mix, "ratio": a.ratio,
            "warmup": a.warmup, "range_tolerance": a.range_tolerance}
    for k in _ints(a.members):
        rows = {p: [] for p in PROFILES}
        lofo = []
        for seed in _ints(a.seeds):
            scores = combined_scores(corpus, Path(a.folder), a.detector, seed, k, **post)
            for p, r in evaluate(scores, corpus).items():
                rows[p].append(r["normalized"])
            lofo.append(leave_one_out(scores, corpus, PROFILES["standard"])["normalized"])
        cells = [f"{p} {np.mean(v):.1f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.1f} "
                 f"({', '.join(f'{x:.1f}' for x in v)})" for p, v in rows.items()]
        print(f"K={k} {post}: " + "; ".join(cells) + f"; LOFO standard {np.mean(lofo):.1f} ± {np.std(lofo, ddof=1) if len(lofo) > 1 else 0:.1f} "
              f"({', '.join(f'{x:.1f}' for x in lofo)})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("root")
    r.add_argument("--detector", default="pred")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--members", default="0")
    r.add_argument("--options", default="{}", help="Detector settings as JSON")
    r.add_argument("--out", required=True)
    e = sub.add_parser("eval")
    e.add_argument("root")
    e.add_argument("folder")
    e.add_argument("--detector", default="pred")
    e.add_argument("--seeds", default="0,1,2")
    e.add_argument("--members", default="1")
    e.add_argument("--short", type=int, default=5)
    e.add_argument("--long", type=int, default=8640)
    e.add_argument("--suppress", type=int, default=50)
    e.add_argument("--ratio", type=float, default=1.0, help="onsets: D must exceed RATIO x the previous max")
    e.add_argument("--warmup", type=int, default=0, help="as rnnlab detect --warmup")
    e.add_argument("--range-tolerance", type=float, default=DetectorConfig().range_tolerance,
                   help="as rnnlab detect --range-tolerance (the same default; 0: off)")
    e.add_argument("--mix", default="", metavar="FOLDER:DETECTOR:K",
                   help="also average in the likelihood z of that detector's members 0..K-1 (FOLDER:DETECTOR:K)")
    a = ap.parse_args()
    run(a) if a.verb == "run" else evaluate_ensembles(a)


if __name__ == "__main__":
    main()
