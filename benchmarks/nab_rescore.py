"""Score saved detector outputs again, with the leave-one-file-out column, in one table.

    python benchmarks/nab_rescore.py ../shared/data/nab \
        "vae=runs/detect/nab-realKnownCause-vae-refit500-seed*/scores/vae-seed*" ...

Each argument after the corpus is ``NAME=GLOB``: the folders the glob matches (one per seed, each
holding ``<group>/<file>.csv`` with an ``anomaly_score`` column, as ``rnnlab detect nab --out``
writes them) become one row; null, random (seeds 0-2) and HTM's published outputs come first.
"""
from __future__ import annotations

import argparse
import glob
from pathlib import Path

from rnnlab.tasks.anomaly.benchmark import format_table, nab_table, reference_scores
from rnnlab.tasks.anomaly.nab import load_corpus

from nab_windows import read_scores  # benchmarks/ is on the path when run as a script


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("rows", nargs="*", metavar="NAME=GLOB")
    a = ap.parse_args()
    corpus = load_corpus(a.root, ["realKnownCause"])
    entries = reference_scores(corpus, seeds=(0, 1, 2))
    for spec in a.rows:
        name, pattern = spec.split("=", 1)
        folders = sorted(glob.glob(pattern))
        entries[name] = [read_scores(Path(f), corpus) for f in folders]
        print(f"{name}: {len(folders)} folders", flush=True)
    rows = nab_table(corpus, entries)
    print(format_table(rows))
    for row in rows:
        print(row.name, {p: [round(x, 1) for x in v] for p, v in row.held_out.items()})


if __name__ == "__main__":
    main()
