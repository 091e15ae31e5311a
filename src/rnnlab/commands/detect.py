"""``rnnlab detect``: LSTM anomaly detectors on a series (``run``) or a NAB corpus (``nab``)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .argtypes import name_list, non_negative_float, positive_int

DETECTORS = ("pred", "encdec", "vae")


def _detector(text: str) -> str:
    """One detector, or several different ones joined by + (their likelihoods averaged)."""
    from ..errors import ConfigError
    from ..tasks.anomaly.detector import parse_kind

    try:
        return "+".join(parse_kind(text))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threshold(text: str) -> float:
    value = non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], the range of the scores, got {value}")
    return value


def _detectors(text: str) -> list[str]:
    return [_detector(name) for name in name_list(text, None, "detectors")]


def _detector_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector settings")
    g.add_argument("--window", type=positive_int, default=32, metavar="L", help="rows per input window (default 32)")
    g.add_argument("--hidden", type=positive_int, default=32, metavar="H", help="LSTM units (default 32)")
    g.add_argument("--latent", type=positive_int, default=8, metavar="Z", help="the VAE's latent size (default 8)")
    g.add_argument("--epochs", type=positive_int, default=30, metavar="N",
                   help="passes over the probationary-period windows (default 30)")
    g.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate, cosine-annealed (default 3e-3)")
    g.add_argument("--samples", type=positive_int, default=4, metavar="K",
                   help="the VAE's z samples per window when scoring (default 4)")
    g.add_argument("--post", choices=("likelihood", "gaussian"), default="likelihood",
                   help="raw error to score: HTM-style anomaly likelihood (short- against long-window "
                        "errors; default) or the tail of a Gaussian fitted on the probationary period")
    g.add_argument("--short", type=positive_int, default=5, metavar="S",
                   help="the anomaly likelihood's short window in rows (default 5)")
    g.add_argument("--long", type=positive_int, default=8640, metavar="W",
                   help="the anomaly likelihood's long window in rows (default 8640)")
    g.add_argument("--warmup", type=int, default=100, metavar="W",
                   help="the anomaly likelihood's statistics from the scored rows only (not the training "
                        "rows, on which the network's errors are smaller), the first W of them scoring 0 "
                        "(default 100; 0: statistics from the first full window on, training rows included)")
    g.add_argument("--suppress", type=int, default=50, metavar="K",
                   help="onsets only: a score counts only above the K rows before it (default 50; 0 off)")
    g.add_argument("--range-tolerance", dest="range_tolerance", type=non_negative_float, default=0.05, metavar="F",
                   help="range alarms: a value more than F x the range of all earlier values outside that "
                        "range scores 1, before the onset rule (HTM's spatial-anomaly rule and constant; "
                        "default 0.05; 0 off)")
    g.add_argument("--no-calendar", dest="calendar", action="store_false",
                   help="leave out the hour-of-day and day-of-week inputs")
    g.add_argument("--refit-every", dest="refit_every", type=int, default=500, metavar="R",
                   help="learn online: every R scored rows, train on the windows of the last P rows "
                        "(P = the probationary length) before going on (default 500; 0: never, "
                        "the probationary period only)")
    g.add_argument("--refit-epochs", dest="refit_epochs", type=positive_int, default=3, metavar="N",
                   help="passes over those windows at each refit (default 3)")
    g.add_argument("--refit-lr", dest="refit_lr", type=float, default=0.3, metavar="F",
                   help="the refits' learning rate as a fraction of --lr (default 0.3)")
    g.add_argument("--ensemble", type=positive_int, default=1, metavar="K",
                   help="K networks trained from different seeds (the first from --seed, the others "
                        "derived from it), their raw anomaly measures averaged before the score: steadier "
                        "from seed to seed, K times the time (default 1)")
    g.add_argument("--max-minutes", dest="max_minutes", type=float, default=0.0, metavar="M",
                   help="training-time budget per series in minutes (default: none, epochs only)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="anomaly detection with LSTM detectors (pred, encdec, vae)",
                       description="Score every row of a time series with an LSTM anomaly detector trained on "
                                   "its first 15% (NAB's probationary period, at most 750 rows), never looking "
                                   "ahead; or run a detector over a NAB corpus and score it with NAB's rules.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    r = verbs.add_parser("run", help="score one series.csv (timestamp,value)",
                         description="Write timestamp,value,anomaly_score for each row of SERIES.csv; with "
                                     "--plot also a PNG of the series, its score and any labelled windows.")
    r.add_argument("series", metavar="SERIES.csv", help="a CSV file with the header timestamp,value")
    r.add_argument("--detector", type=_detector, default="pred", metavar="NAME",
                   help="pred, encdec or vae, or several joined by + (e.g. pred+vae: the mean of their "
                        "likelihood z) (default pred, the fastest; the best on NAB: pred+vae with --ensemble 3, "
                        "six networks instead of one)")
    r.add_argument("--out", metavar="DIR", help="output folder (default: runs/detect/<name>-<detector>)")
    r.add_argument("--plot", action="store_true", help="also write a PNG (needs matplotlib)")
    r.add_argument("--force", action="store_true", help="replace the scores (and plot) already in --out")
    r.add_argument("--labels", metavar="FILE.json",
                   help="NAB label file ({\"<group>/<name>.csv\": [[start, end], ...]}) for the plot and a "
                        "NAB score; default: <root>/labels/combined_windows.json of a NAB layout, if present")
    r.add_argument("--seed", type=int, default=0, help="seed of the network and batches (default 0)")
    r.add_argument("--threshold", type=_threshold, metavar="T",
                   help="also write an alarm column (1 where the score is at least T) and list the alarms; "
                        "for a start, the thresholds NAB's optimiser chose for pred+vae --ensemble 3 on "
                        "realKnownCause were 0.38-0.44 (docs/results.md)")
    r.add_argument("--thresholds", metavar="FILE",
                   help="take the threshold from FILE (the thresholds.json a 'detect nab --out' run wrote, or "
                        "{\"standard\": 0.5, ...}; docs/anomaly.md), for --profile; instead of --threshold")
    r.add_argument("--profile", choices=("standard", "reward_low_FP_rate", "reward_low_FN_rate"), default="standard",
                   help="which of the file's thresholds --thresholds uses (default standard)")
    r.add_argument("--keep-order", dest="keep_order", action="store_true",
                   help="accept timestamps that go back (score the rows in file order, as NAB does)")
    _detector_options(r)
    r.set_defaults(run=run_series)

    n = verbs.add_parser("nab", help="run detectors over a NAB corpus and print NAB scores",
                         description="Fit and score detectors on every file of a NAB folder (data/, labels/), "
                                     "print the normalised NAB score per profile with thresholds optimised over "
                                     "the scored corpus for every detector alike, beside the null and random "
                                     "baselines and HTM's published results (DIR/results/numenta) when present.")
    n.add_argument("root", metavar="DIR", help="NAB folder holding data/<group>/*.csv and labels/")
    n.add_argument("--groups", metavar="G1,G2", help="only these groups, e.g. realKnownCause (default: all)")
    n.add_argument("--detector", type=_detectors, default=["pred"], metavar="NAME[,NAME]",
                   help="detectors, comma-separated, from pred, encdec, vae, or several of those joined "
                        "by + (e.g. pred,pred+vae) (default pred; the best on realKnownCause: pred+vae with "
                        "--ensemble 3)")
    n.add_argument("--seeds", type=positive_int, default=1, metavar="N",
                   help="seeds S..S+N-1 per detector, S from --seed (default 1)")
    n.add_argument("--seed", type=int, default=0, metavar="S",
                   help="the first seed (default 0); e.g. run seeds in separate processes with --seeds 1")
    n.add_argument("--out", metavar="DIR", help="also write table.md, groups.md, results.json, thresholds.json (the "
                   "thresholds NAB's optimiser chose, for --thresholds) and each detector's scores here")
    n.add_argument("--thresholds", metavar="FILE",
                   help="score the detectors at these fixed thresholds instead of optimising them on this corpus "
                        "(a thresholds.json from another 'detect nab --out' run, or a user's own; docs/anomaly.md)")
    n.add_argument("--force", action="store_true", help="replace the results (or the interrupted run) in --out")
    n.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="fit the files x seeds in N local worker processes, one BLAS thread each (default 1: one "
                        "after the other in this process); the results do not depend on N")
    n.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="fit the files x seeds as tasks on a Ray cluster (pip install 'rnnlab[ray]'): a local one "
                        "with 2 CPUs when no ADDRESS is given, else the cluster at ADDRESS (auto, host:6379, "
                        "ray://host:10001); the results equal a local run's, byte for byte")
    n.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out (same flags): the files it scored are read "
                        "back from --out/partial, the others fitted; the results equal an uninterrupted run's")
    _detector_options(n)
    n.set_defaults(run=run_nab)


def _refuse_to_replace(paths: list[Path], force: bool) -> None:
    """Say so, before any training, when ``--out`` already holds these outputs (unless ``--force``)."""
    from ..errors import ConfigError

    found = [p for p in paths if p.exists()]
    if found and not force:
        raise ConfigError(f"{found[0]} already exists; choose another --out, or pass --force to replace it")


def _options(args: argparse.Namespace) -> dict:
    keys = ("window", "hidden", "latent", "epochs", "lr", "samples", "post", "short", "long", "suppress", "warmup",
            "calendar", "max_minutes", "refit_every", "refit_epochs", "refit_lr", "ensemble", "range_tolerance")
    return {k: getattr(args, k) for k in keys}


def run_series(args: argparse.Namespace) -> int:
    import numpy as np

    from ..tasks.anomaly import Detector
    from ..tasks.anomaly.detector import probationary_rows
    from ..tasks.anomaly.io import find_labels, labelled_windows, plot_detection, read_input, write_scores
    from ..tasks.anomaly.nab import NabCorpus, evaluate
    from ..train.runs import check_out_dir

    if args.plot:
        from ..plotting import require_matplotlib
        require_matplotlib()  # say so before training
    path = Path(args.series)
    if args.thresholds is not None:
        from ..errors import ConfigError
        from ..tasks.anomaly.thresholds import read_thresholds, thresholds_for

        if args.threshold is not None:
            raise ConfigError("give --threshold or --thresholds, not both")
        args.threshold = thresholds_for(read_thresholds(args.thresholds), args.detector, args.thresholds,
                                        profiles=[args.profile])[args.profile]
        print(f"threshold {args.threshold:g} ({args.profile}, from {args.thresholds})")
    out = check_out_dir(args.out or Path("runs") / "detect" / f"{path.stem}-{args.detector}")
    _refuse_to_replace([out / f"{path.stem}.scores.csv", out / f"{path.stem}.png"], args.force)
    series = read_input(path, keep_order=args.keep_order)
    label_path, key = find_labels(path, args.labels)
    windows = labelled_windows(series, label_path, key) if label_path is not None else None
    detector = Detector(args.detector, seed=args.seed, **_options(args))
    t0 = time.perf_counter()
    scores = detector.fit_score(series.values, series.timestamps)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_scores(out / f"{path.stem}.scores.csv", series, scores, args.threshold)
    print(f"{args.detector} on {path} ({len(series)} rows, first {probationary_rows(len(series))} probationary): "
          f"{seconds:.1f}s; wrote {csv_path}")
    if args.threshold is not None:
        rows = np.flatnonzero(scores >= args.threshold)
        stamps = [str(t).replace("T", " ") for t in np.datetime_as_string(series.timestamps[rows[:10]], unit="s")]
        print(f"{len(rows)} alarm(s) at threshold {args.threshold:g}" + (": " + ", ".join(
            f"{t} (score {scores[i]:.3f})" for t, i in zip(stamps, rows)) + (", ..." if len(rows) > 10 else "")
            if len(rows) else ""))
    if args.range_tolerance > 0:
        print(f"range alarms (a value more than {args.range_tolerance:g} x the range of the earlier values outside "
              f"it; --range-tolerance): {int(np.count_nonzero(scores == 1.0))} rows scored 1")
    if windows is not None:
        series.windows = windows
        table = evaluate({series.key: scores}, NabCorpus({series.key: series}))
        print(f"labels {label_path}: {len(windows)} windows; NAB score with the threshold optimised on this file: " +
              ", ".join(f"{p} {r['normalized']:.1f}" for p, r in table.items()))
    if args.plot:
        png = plot_detection(out / f"{path.stem}.png", series, scores, windows,
                             title=f"{path.name}: {args.detector}", probationary=probationary_rows(len(series)))
        print(f"wrote {png}")
    return 0


PARTIAL, SETTINGS = "partial", "settings.json"


def _prepare_nab_out(out: Path, settings: dict, force: bool, resume: bool) -> None:
    """Refuse to replace finished results or an interrupted run by accident; on --resume check that
    the settings are the interrupted run's; record the settings of a new run."""
    import shutil

    from ..io.atomic import atomic_write
    from ..errors import ConfigError

    finished = [p for p in (out / "results.json", out / "table.md", out / "groups.md", out / "thresholds.json",
                            out / "scores") if p.exists()]
    started = (out / SETTINGS).exists() or (out / PARTIAL).exists()
    if force:
        for path in finished + [out / PARTIAL, out / SETTINGS]:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    elif resume:
        if (out / "results.json").exists():
            raise ConfigError(f"--out {out} holds finished results (results.json); nothing to resume")
        if not (out / SETTINGS).is_file():
            raise ConfigError(f"--out {out} holds no interrupted run (no {SETTINGS}); run without --resume")
        try:
            before = json.loads((out / SETTINGS).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{out / SETTINGS}: cannot read ({e}); pass --force to start over") from None
        differ = [k for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k)]
        if differ:
            k = differ[0]
            raise ConfigError(f"--resume {out}: the interrupted run had {k} = {before.get(k)!r}, these flags give "
                              f"{settings.get(k)!r}; give the same flags, or a new --out")
        return
    elif finished:
        _refuse_to_replace(finished, force=False)
    elif started:
        raise ConfigError(f"--out {out} holds an interrupted run; continue it with --resume, or pass --force to "
                          "start over")
    with atomic_write(out / SETTINGS) as fh:
        fh.write(json.dumps(settings, indent=1, sort_keys=True).encode())


def run_nab(args: argparse.Namespace) -> int:
    """``detect nab``; its --out folder is locked (one live process writes into it at a time)."""
    from ..errors import ConfigError
    from ..io.lock import RunLock
    from ..train.runs import check_out_dir

    if not args.out:
        return _run_nab(args)
    out = check_out_dir(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make --out {out}: {exc.strerror or exc}; choose a writable --out") from None
    with RunLock(out).acquire("--out"):
        return _run_nab(args)


def _run_nab(args: argparse.Namespace) -> int:
    import shutil

    from ..io.atomic import atomic_write
    from ..errors import ConfigError
    from ..tasks.anomaly.benchmark import format_table, nab_table, reference_scores, run_nab as run_corpus
    from ..tasks.anomaly.nab import load_corpus
    from ..train.runs import check_out_dir
    from ..train.signals import Interrupted

    out = check_out_dir(args.out) if args.out else None
    if args.resume and (out is None or args.force):
        raise ConfigError("--resume needs --out, the folder of the interrupted run, and no --force (which starts over)")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
    fixed = None
    if args.thresholds is not None:  # read before any training: a bad file is one line now
        from ..tasks.anomaly.nab import PROFILES
        from ..tasks.anomaly.thresholds import read_thresholds, thresholds_for

        table = read_thresholds(args.thresholds)
        fixed = {name: thresholds_for(table, name, args.thresholds, PROFILES) for name in args.detector}
    corpus = load_corpus(args.root, groups)
    seeds = list(range(args.seed, args.seed + args.seeds))
    if out is not None:
        settings = {"root": str(Path(args.root).resolve()), "groups": groups, "detectors": args.detector,
                    "seeds": seeds, "options": _options(args),
                    "thresholds": args.thresholds}
        _prepare_nab_out(out, settings, args.force, args.resume)
    print(f"NAB corpus {args.root}: {len(corpus)} files, {sum(len(f) for f in corpus)} rows, "
          f"{corpus.n_windows} windows; detectors {', '.join(args.detector)}; seeds {seeds}")
    entries = reference_scores(corpus, seeds, range_tolerance=args.range_tolerance, warmup=args.warmup,
                               suppress=args.suppress)
    if "numenta (HTM)" not in entries:
        print(f"(no HTM reference: {Path(args.root) / 'results' / 'numenta'} not found)")
    from ..train.executor import make_executor

    with make_executor(args.jobs, args.ray, log=lambda line: print(line, file=sys.stderr)) as executor:
        if executor.workers > 1 or args.ray:
            print(f"fits on {executor.describe()}")
        for name in args.detector:
            try:
                entries[name] = run_corpus(corpus, name, seeds, store=out / PARTIAL if out else None,
                                           executor=executor, **_options(args))
            except Interrupted:
                if out is not None:
                    print(f"the files scored so far are kept in {out / PARTIAL}; continue with the same command "
                          "and --resume", file=sys.stderr)
                raise
    rows = nab_table(corpus, entries, fixed=fixed)
    table = format_table(rows)
    print("\nNormalised NAB score (thresholds optimised over these files for every detector alike"
          + (f", except those marked 'fixed thresholds', scored at the thresholds of {args.thresholds}" if fixed
             else "") + "; mean ± std over seeds; leave-one-file-out: each file scored at the threshold optimised on "
          "the others):\n" + table)
    from ..tasks.anomaly.groups import format_group_table, split_groups

    group_table = format_group_table(corpus, entries)
    print("\nPer group, standard profile (each group at the threshold optimised over all these files"
          + ("; LOGO: at the threshold optimised on the other groups" if len(split_groups(corpus)) > 1 else "")
          + "; a group without windows shows its false positives' cost, 0 = no alarm):\n" + group_table)
    if out is not None:
        from ..tasks.anomaly.io import write_scores
        for name in args.detector:
            for run in entries[name]:
                for key, scores in run.scores.items():
                    group, file = key.split("/", 1)
                    write_scores(out / "scores" / f"{name}-seed{run.seed}" / group / file, corpus[key], scores)
        results = {r.name: {"normalized": r.normalized, "held_out": r.held_out, "thresholds": r.thresholds,
                            "fixed": r.fixed, "seconds_per_10k": r.seconds_per_10k} for r in rows}
        with atomic_write(out / "table.md") as fh:
            fh.write((table + "\n").encode())
        with atomic_write(out / "groups.md") as fh:
            fh.write((group_table + "\n").encode())
        import numpy as np

        from ..tasks.anomaly.thresholds import FILE, write_thresholds
        chosen = {r.name: {p: float(np.median(v)) for p, v in r.thresholds.items()} for r in rows
                  if r.name in args.detector}
        write_thresholds(out / FILE, chosen, {"root": str(Path(args.root).resolve()), "groups": groups,
                                              "files": len(corpus), "seeds": seeds,
                                              "fixed_from": args.thresholds}, _options(args))
        with atomic_write(out / "results.json") as fh:  # last: its presence marks the run finished
            fh.write(json.dumps({"settings": _options(args), "seeds": seeds, "groups": groups,
                                 "results": results}, indent=1).encode())
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
        (out / SETTINGS).unlink(missing_ok=True)
        print(f"wrote {out / 'table.md'}, {out / 'groups.md'}, {out / 'results.json'}, {out / FILE} and the scores "
              f"under {out / 'scores'}")
    return 0
