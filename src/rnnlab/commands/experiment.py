"""``rnnlab experiment NAME``: run a named study over several seeds and tabulate it."""
from __future__ import annotations

import argparse

from .argtypes import name_list, positive_float, positive_int


def _cell_list(text: str) -> list[str]:
    return name_list(text, what="cell names")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments import STUDIES

    listing = "; ".join(f"{name}: {desc}" for name, (_, desc) in STUDIES.items())
    p = sub.add_parser(
        "experiment", help="run a named study over several seeds (table, plots, JSON)",
        description="Run a named study over several seeds; print a markdown table (mean ± std over seeds) "
                    f"and write results.json, table.md and plots to the output folder. Studies: {listing}.")
    p.add_argument("name", choices=list(STUDIES), metavar="NAME", help=f"the study: {', '.join(STUDIES)}")
    p.add_argument("--quick", action="store_true",
                   help="a tiny version that finishes in well under a minute (for tests and smoke checks)")
    p.add_argument("--seeds", type=positive_int, metavar="N",
                   help="seeds per condition (default: 1 with --quick, otherwise 3)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder for results.json, table.md and plots "
                        "(default: runs/experiments/NAME-<timestamp>)")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds an earlier study's results, replacing them")
    p.add_argument("--minutes", type=positive_float, metavar="M",
                   help="training-time budget per run in minutes (default: the study's own; for charlm the "
                        "equal wall-clock budget every model gets)")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR",
                   help="folder holding named datasets such as nietzsche.txt (default: $RNNLAB_DATA)")
    p.add_argument("--cells", type=_cell_list, metavar="A,B,...",
                   help="run only the rows of these cells, e.g. lstm,irnn (default: all of the study's cells)")
    p.add_argument("--corpus", metavar="TEXT",
                   help="charlm only: dataset name or text file/folder (default: nietzsche)")
    p.add_argument("--budget", choices=("steps", "time", "both"), default="both",
                   help="what every run gets the same of: 'steps' (optimizer updates: the fair comparison per "
                        "update), 'time' (training seconds on this machine: rewards cheap steps, depends on its "
                        "load) or 'both' (default: the step-matched table first, the time-matched one beside it)")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help="optimizer steps per step-matched run (default: the study's own, e.g. 2000 for adding)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="run conditions x seeds as independent jobs in N worker processes, one BLAS thread "
                        "each (default 1: one after the other in this process; on a 2-core machine use at "
                        "most 2). Results are gathered in the same order, so the tables do not depend on N")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the jobs as tasks on a Ray cluster (pip install 'rnnlab[ray]'): a local one with 2 CPUs "
                        "when no ADDRESS is given, else the cluster at ADDRESS (auto, host:6379, ray://host:10001); "
                        "instead of --jobs. Results are the same as a local run's")
    p.add_argument("--groups", type=name_list, metavar="G,...",
                   help="run only these groups of rows, e.g. T=150 for adding, permuted for digits "
                        "(default: all)")
    p.add_argument("--rows", type=name_list, metavar="TEXT,...",
                   help="run only the rows whose label contains one of these strings, e.g. 'irnn adam,lstm' "
                        "(default: all)")
    p.add_argument("--validation", action="store_true",
                   help="digits: hold out the last 20%% of the training split and score every run on it instead "
                        "of the test split, to choose settings (e.g. an --groups irnn-grid) without looking at "
                        "the test set; the 'test' columns then hold validation accuracy")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments import Options, run as run_experiment

    opts = Options(quick=args.quick, seeds=args.seeds, out=args.out, minutes=args.minutes,
                   data_dir=args.data_dir, cells=args.cells, corpus=args.corpus, budget=args.budget,
                   steps=args.steps, jobs=args.jobs, groups=args.groups, rows=args.rows,
                   validation=args.validation, ray=args.ray, force=args.force)
    result = run_experiment(args.name, opts)
    if not result["rows"]:
        return 1
    return 1 if result.get("failed") else 0
