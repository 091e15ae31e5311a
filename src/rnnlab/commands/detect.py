"""``rnnlab detect``: LSTM anomaly detectors on a series (``run``) or a NAB corpus (``nab``)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .argtypes import name_list, non_negative_float, positive_int
from .configflags import add_config_flags
from .detect_nab import DEFAULT_DETECTOR, _options, _refuse_to_replace, check_threshold_settings, run_nab

DETECTORS = ("pred", "encdec", "vae", "online")
# what --help says of the default (measured on the 41 NAB files shipped, docs/anomaly.md "Today's figures")
DEFAULT_COST = ("it learns as the rows arrive, two networks (with and without the value a day before; "
                "--online-season pick), every product in one fixed order so that scores are the same on every "
                "CPU; about 20 s of CPU per 10,000 rows on one core (Intel Xeon, nyc_taxi, scoring included; "
                "about 15 s with RNNLAB_BLAS=openblas, whose scores depend on the CPU's BLAS kernel); NAB score "
                "69.6 +/- 0.7 (3 seeds, standard profile; leave-one-group-out 67.8 +/- 1.0) on the 41 NAB files "
                "shipped, against 65.8 +/- 0.6 without the value-novelty channel (--online-novel -1), "
                "63.2 +/- 0.7 with the likelihood over 5 rows only (--slow 0), 57.6 +/- 0.4 with "
                "one network and every onset (--online-season off --no-warmup-alarms --slow 0 --peak 0), "
                "pred's 60.4 +/- 0.6 (--slow 0) and HTM's 68.6")


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
    """One flag per detector setting, defaults and help from :class:`~rnnlab.tasks.anomaly.config.DetectorConfig`."""
    from ..tasks.anomaly.config import DetectorConfig

    add_config_flags(p.add_argument_group("detector settings"), DetectorConfig)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="anomaly detection with LSTM detectors (online, pred, encdec, vae)",
                       description="Score every row of a time series with an LSTM anomaly detector, never looking "
                                   "ahead: one that learns as the rows arrive (online, the default) or one trained "
                                   "on the series' first 15% (NAB's probationary period, at most 750 rows) and "
                                   "refitted as it goes; or run detectors over a NAB corpus and score them with "
                                   "NAB's rules.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    r = verbs.add_parser("run", help="score one series.csv (timestamp,value)",
                         description="Write timestamp,value,anomaly_score for each row of SERIES.csv; with "
                                     "--plot also a PNG of the series, its score and any labelled windows.")
    r.add_argument("series", metavar="SERIES.csv", help="a CSV file with the header timestamp,value")
    r.add_argument("--detector", type=_detector, default=DEFAULT_DETECTOR, metavar="NAME",
                   help=f"online, pred, encdec or vae, or several joined by + (e.g. pred+vae: the mean of their "
                        f"likelihood z) (default {DEFAULT_DETECTOR}: {DEFAULT_COST}; docs/anomaly.md)")
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
                        "realKnownCause were 0.38-0.44 (docs/anomaly.md)")
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
    n.add_argument("--detector", type=_detectors, default=None, metavar="NAME[,NAME]",
                   help=f"detectors, comma-separated, from online, pred, encdec, vae, or several of those "
                        f"joined by + (e.g. online,pred+vae) (default {DEFAULT_DETECTOR}; costs in "
                        "'detect run --help')")
    n.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                   help="seeds S..S+N-1 per detector, S from --seed (default 1)")
    n.add_argument("--seed", type=int, default=None, metavar="S",
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
                   help="continue the interrupted run in --out with its own settings (flags left out are the "
                        "run's; a flag given must equal the run's): the files it scored are read back from "
                        "--out/partial, the others fitted; the results equal an uninterrupted run's")
    _detector_options(n)
    n.set_defaults(run=run_nab)


def run_series(args: argparse.Namespace) -> int:
    import numpy as np

    from ..tasks.anomaly import Detector
    from ..tasks.anomaly.detector import probationary_rows
    from ..tasks.anomaly.io import find_labels, labelled_windows, plot_detection, read_input, write_scores
    from ..tasks.anomaly.nab import NabCorpus, evaluate
    from ..train.runs import refuse_run_folder

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
        check_threshold_settings(args.thresholds, _options(args))
        print(f"threshold {args.threshold:g} ({args.profile}, from {args.thresholds})")
    out = refuse_run_folder(args.out or Path("runs") / "detect" / f"{path.stem}-{args.detector}")
    _refuse_to_replace([out / f"{path.stem}.scores.csv", out / f"{path.stem}.png"], args.force)
    series = read_input(path, keep_order=args.keep_order)
    label_path, key = find_labels(path, args.labels)
    windows = labelled_windows(series, label_path, key) if label_path is not None else None
    options = _options(args)
    detector = Detector(args.detector, seed=args.seed, **options)
    t0 = time.perf_counter()
    scores = detector.fit_score(series.values, series.timestamps)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_scores(out / f"{path.stem}.scores.csv", series, scores, args.threshold)
    print(f"{args.detector} on {path} ({len(series)} rows, first {probationary_rows(len(series))} probationary): "
          f"{seconds:.1f}s; wrote {csv_path}")
    if options["online_season"] != "off" and "online" in detector.parts:
        print(f"season input (--online-season {options['online_season']}): " +
              (f"the value a day ({detector.season} rows) before" if detector.season else "none") +
              (f"; {100 * np.mean(detector.season_share):.0f}% of the scored rows took the measure of the network "
               "with it, the rest that of the network without it" if options["online_season"] == "pick"
               and detector.season else ""))
    if args.threshold is not None:
        rows = np.flatnonzero(scores >= args.threshold)
        stamps = [str(t).replace("T", " ") for t in np.datetime_as_string(series.timestamps[rows[:10]], unit="s")]
        print(f"{len(rows)} alarm(s) at threshold {args.threshold:g}" + (": " + ", ".join(
            f"{t} (score {scores[i]:.3f})" for t, i in zip(stamps, rows)) + (", ..." if len(rows) > 10 else "")
            if len(rows) else ""))
    if options["range_tolerance"] > 0:
        print(f"range alarms (a value more than {options['range_tolerance']:g} x the range of the earlier values outside "
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


