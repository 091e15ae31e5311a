"""``rnnlab forecast``: train a global LSTM/GRU forecaster (M4 Hourly or a CSV), evaluate it beside
the baselines, and forecast new series."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .argtypes import positive_int as _positive_int
from .configflags import add_config_flags, given_settings

MODEL_FIELDS = ("model", "cell", "hidden_size", "num_layers", "window", "horizon", "season", "quantiles", "norm",
                "base", "holdout", "history", "min_window", "short_share", "phase", "init")
TRAINING_FIELDS = ("max_minutes", "max_steps", "batch_size", "lr", "eval_every", "seed")
# the loop's settings this command leaves at ForecastConfig's values (no flag)
LOOP_ONLY = ("optimizer", "weight_decay", "momentum", "clip", "clip_value", "warmup_steps", "lr_step_size",
             "lr_gamma", "min_lr", "patience", "guard", "diagnostics")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


_STAT_NAMES = {"arima": "auto_arima", "auto_arima": "auto_arima", "ets": "auto_ets", "auto_ets": "auto_ets"}


def _stat_names(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in _STAT_NAMES]
    if bad:
        raise argparse.ArgumentTypeError(f"expected arima and/or ets, got {text!r}")
    return list(dict.fromkeys(_STAT_NAMES[n] for n in names))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="forecast time series with a global LSTM/GRU (M4 Hourly or your CSV)",
                       description="Train one recurrent network on windows of all series (train), score it "
                                   "beside Naive, seasonal naive, Naive2, AutoARIMA and AutoETS (eval), and "
                                   "forecast the next values of series in a CSV file (predict).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    t = verbs.add_parser("train", help="train a forecaster run",
                         description="Train on m4-hourly (from --data-dir) or a CSV file (timestamp,value or "
                                     "series_id,timestamp,value rows, or one series per row). The last --horizon "
                                     "values before any --holdout are the validation slice; best.npz has the "
                                     "lowest validation OWA.")
    t.add_argument("data", nargs="?", default=None, help="m4-hourly (default) or a CSV file")
    t.add_argument("--train", dest="train_file", metavar="TRAIN.csv",
                   help="the training series (the same as giving the file as DATA)")
    t.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>)")
    t.add_argument("--resume", metavar="RUN", help="continue a run exactly from its last.npz, with its own "
                   "settings: budget flags given here replace its budget; other flags given must be the run's")
    t.add_argument("--force", action="store_true", help="replace a run already in --out")
    # one flag per ForecastConfig field, defaults and help from the dataclass; a flag left out stays
    # None, so on --resume only the flags given replace the run's settings
    from ..tasks.forecast.config import ForecastConfig

    model, training = t.add_argument_group("model"), t.add_argument_group("training")
    add_config_flags(t, ForecastConfig, skip=LOOP_ONLY, types={"quantiles": _floats},
                     groups={**{k: model for k in MODEL_FIELDS}, **{k: training for k in TRAINING_FIELDS}})
    t.set_defaults(run=run_train)

    e = verbs.add_parser("eval", help="score runs beside the baselines",
                         description="For m4-hourly runs: sMAPE, MASE and OWA on M4's test set beside Naive, "
                                     "seasonal naive, Naive2, Theta (and AutoARIMA/AutoETS with --baselines); "
                                     "several runs are scored each and as an ensemble. With --series: a "
                                     "rolling-origin test on that CSV's last --origins horizons.")
    e.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) of 'rnnlab forecast train'")
    e.add_argument("--series", metavar="FILE.csv", help="rolling-origin test on this file instead of M4's test set")
    e.add_argument("--train", dest="train_file", metavar="TRAIN.csv",
                   help="with --test: score the model on these series instead of the run's own (zero-shot on series "
                        "it never saw); the run's --frequency / --mase-period set the metric")
    e.add_argument("--test", default="", metavar="TEST.csv",
                   help="the values after each --train series (M4's wide layout or unique_id,ds,y rows)")
    e.add_argument("--history", type=int, default=None, metavar="N",
                   help="forecast from the last N values of each series only (default: the run's --history; "
                        "0: all); the baselines see the same values")
    e.add_argument("--origins", type=_positive_int, default=5, help="forecast origins, a horizon apart (default 5)")
    e.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="folder holding the M4 files (default: the run's)")
    e.add_argument("--baselines", "--stat-baselines", dest="stat", nargs="?", const="arima,ets", default="",
                   type=_stat_names, metavar="arima,ets",
                   help="also fit AutoARIMA and/or AutoETS (statsforecast; minutes; both when no names are "
                        "given; cached in the first run folder). Naive, seasonal naive, Naive2 and Theta are "
                        "always shown")
    e.add_argument("--plot", metavar="FILE.png", help="with --series: plot every origin's forecast and interval")
    e.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    e.set_defaults(run=run_eval)

    f = verbs.add_parser("predict", help="forecast the values after each series of a CSV",
                         description="Write the --horizon values after the end of every series in SERIES.csv "
                                     "(any length; series the model never saw included): series_id,step,timestamp,"
                                     "forecast,q<level>... rows, or --layout wide (M4) or long (unique_id,ds,y).")
    f.add_argument("run_path", metavar="RUN", help="run folder (its best.npz) or a saved model")
    f.add_argument("series", metavar="SERIES.csv", help="CSV file with the history to forecast from")
    f.add_argument("--horizon", type=_positive_int, help="steps to forecast (default and at most: the model's)")
    f.add_argument("--out", "--output", dest="out", metavar="FILE.csv",
                   help="output CSV (default SERIES.forecast.csv beside the input)")
    f.add_argument("--layout", choices=("rows", "wide", "long"), default="rows",
                   help="rows: series_id,step,timestamp,forecast,q<level>... (default); wide: M4's layout, one row "
                        "of point forecasts per series; long: unique_id,ds,y rows (statsforecast's layout)")
    f.add_argument("--plot", action="store_true", help="also write a PNG of history, forecast and interval")
    f.set_defaults(run=run_predict)


FLAGS = {"num_layers": "--layers", "data": "DATA"}


def run_train(args: argparse.Namespace) -> int:
    from ..tasks.forecast import ForecastConfig, train_run

    if args.train_file:
        args.data = args.train_file
    given = given_settings(args, ForecastConfig, skip=LOOP_ONLY)
    if args.data is not None:
        given["data"] = args.data
    summary, run_dir = train_run(ForecastConfig(**given), args.out, resume=args.resume, force=args.force,
                                 given=given, flags=FLAGS)
    best = "none yet" if summary["best"] is None else f"{summary['best']:.4f}"
    print(f"done ({summary['stop']}): {summary['steps']} steps in {summary['elapsed_s']:.0f}s of training; best "
          f"validation OWA {best}; checkpoints in {run_dir}")
    if summary["exit_code"]:
        return summary["exit_code"]   # 130 after Ctrl-C, 143 after SIGTERM: scripts can tell
    return 0


def run_eval(args: argparse.Namespace) -> int:

    from ..tasks.forecast import Forecaster
    from ..tasks.forecast.data import last_values, load_dataset, read_csv
    from ..tasks.forecast.report import (baseline_forecasts, bucket_lines, format_rows, interval_lines,
                                         plot_forecasts, rolling_origin, score_table, write_json)
    from ..train.runs import check_out_file

    for flag, value in (("--plot", args.plot), ("--json", args.json)):
        if value:
            check_out_file(value, flag)  # before the work, not at the write
    fc = Forecaster.load(*args.runs)
    spec = fc.spec
    if args.history is not None and args.history < 0:
        from ..errors import ConfigError
        raise ConfigError(f"--history must be >= 0, got {args.history}")
    history = fc.cfg.history if args.history is None else args.history
    if args.train_file and not args.test:
        from ..errors import ConfigError
        raise ConfigError("--train needs --test: give the values that follow each training series")
    if args.test:
        import dataclasses
        fc.cfg = dataclasses.replace(fc.cfg, test=args.test, data=args.train_file or fc.cfg.data)
    extra: list[str] = []      # printed below the method table
    if args.series:
        if args.plot:
            from ..plotting import require_matplotlib
            require_matplotlib()
        series = read_csv(args.series)
        rows, panels = rolling_origin(fc, series, args.origins, spec.horizon, args.stat)
        print(f"rolling origin on {args.series}: {args.origins} origins x {spec.horizon} steps per series")
        if args.plot:
            print(f"wrote {plot_forecasts(Path(args.plot), panels, f'{Path(args.series).name}: rolling origin')}")
    elif fc.cfg.test:
        from ..tasks.forecast.report import test_file_table
        rows, lines = test_file_table(fc, args.stat, Path(args.runs[0]) if Path(args.runs[0]).is_dir() else None,
                                      history)
        print(lines[0])
        extra = lines[2:]
    else:
        if not fc.cfg.data.lower().startswith("m4-"):
            from ..errors import ConfigError
            raise ConfigError(f"{args.runs[0]} was trained on {fc.cfg.data}, which has no separate test set; "
                              f"give --series FILE.csv for a rolling-origin test (train with --holdout), or "
                              f"train with --test TEST.csv")
        ds = load_dataset(fc.cfg.data, args.data_dir or fc.cfg.data_dir)
        ds = ds._replace(series=last_values(ds.series, history))
        xs = [s.values for s in ds.series]
        entries = {}
        members = [Forecaster.load(r) for r in args.runs] if len(args.runs) > 1 else []
        for run, member in zip(args.runs, members):
            f = member.predict(ds.series)
            label = Path(run).name if Path(run).is_dir() else f"{Path(run).parent.name}/{Path(run).name}"
            entries[f"rnnlab {label}"] = (f.point, f.seconds)
        f = fc.predict(ds.series)
        label = "rnnlab" + (f" ensemble of {len(args.runs)}" if members else "")
        entries[label] = (f.point, f.seconds)
        cache = Path(args.runs[0]) if Path(args.runs[0]).is_dir() else None
        entries.update(baseline_forecasts(xs, ds.horizon, ds.season, args.stat, cache))
        rows = score_table(xs, ds.test, ds.season, entries)
        cut = f", the last {history} values of each as history" if history else ""
        print(f"{ds.name} test set: {len(xs)} series x {ds.horizon} steps{cut}")
        extra = interval_lines(xs, ds.test, f, ds.season) + bucket_lines(xs, ds.test, ds.season, entries,
                                                                         spec.window, label)
    print(format_rows(rows))
    if extra:
        print("\n".join(extra))
    if args.json:
        write_json(Path(args.json), rows)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..errors import InputWarning
    from ..tasks.forecast import Forecaster
    from ..tasks.forecast.data import read_csv
    from ..tasks.forecast.report import plot_forecasts, write_forecast_csv

    if args.plot:
        from ..plotting import require_matplotlib
        require_matplotlib()
    from ..train.runs import check_out_file

    if args.out:
        check_out_file(args.out, "--out")  # before the work, not at the write
    fc = Forecaster.load(args.run_path)
    path = Path(args.series)
    series = read_csv(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        f = fc.predict(series, args.horizon)
    for w in caught:
        if issubclass(w.category, InputWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    out = Path(args.out) if args.out else path.with_suffix(".forecast.csv")
    write_forecast_csv(out, series, f, args.layout)
    print(f"forecast {f.point.shape[1]} steps for {len(series)} series in {f.seconds:.2f}s; wrote {out}")
    if args.plot:
        panels = [(s, len(s), f._replace(point=f.point[i:i + 1], quantiles=f.quantiles[i:i + 1]))
                  for i, s in enumerate(series[:6])]
        print(f"wrote {plot_forecasts(out.with_suffix('.png'), panels, f'{path.name}: forecast')}")
    return 0
