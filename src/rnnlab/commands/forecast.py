"""``rnnlab forecast``: train a global LSTM/GRU forecaster (M4 Hourly or a CSV), evaluate it beside
the baselines, and forecast new series."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .argtypes import positive_int as _positive_int


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
    t.add_argument("data", nargs="?", default="m4-hourly", help="m4-hourly (default) or a CSV file")
    t.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="folder holding the M4 files (e.g. ../shared/data)")
    t.add_argument("--train", dest="train_file", metavar="TRAIN.csv",
                   help="the training series (the same as giving the file as DATA)")
    t.add_argument("--test", default="", metavar="TEST.csv",
                   help="the values after each training series (M4's wide layout or unique_id,ds,y rows); "
                        "'forecast eval RUN' scores them")
    t.add_argument("--frequency", default="", choices=("", "yearly", "quarterly", "monthly", "weekly", "daily",
                                                        "hourly"), metavar="FREQ",
                   help="yearly|quarterly|monthly|weekly|daily|hourly: M4's horizon (6/8/18/13/14/48) and MASE "
                        "period (1/4/12/1/1/24) and a default window")
    t.add_argument("--mase-period", dest="mase_period", type=_positive_int, default=0, metavar="M",
                   help="MASE's and Naive2's period (default: M4's for --frequency, else --season)")
    t.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>)")
    t.add_argument("--resume", metavar="RUN", help="continue a run exactly from its last.npz")
    t.add_argument("--force", action="store_true", help="replace a run already in --out")
    t.add_argument("--init", default="", metavar="RUN",
                   help="start from the weights of a trained run (fine-tuning on this data); the network settings "
                        "(--model, --cell, --hidden-size, --layers, --quantiles) must match that run's")
    g = t.add_argument_group("model")
    g.add_argument("--model", choices=("direct", "encdec"), default="encdec",
                   help="encdec: a decoder runs over the horizon; direct: a Linear on the last state outputs "
                        "the whole horizon (default encdec, the better on M4 Hourly)")
    g.add_argument("--cell", choices=("lstm", "gru"), default="gru", help="recurrent cell (default gru)")
    g.add_argument("--hidden-size", dest="hidden_size", type=_positive_int, default=64, help="units (default 64)")
    g.add_argument("--layers", dest="num_layers", type=_positive_int, default=1, help="stacked layers (default 1)")
    g.add_argument("--window", type=_positive_int, default=0, metavar="L",
                   help="input length (default 7 seasons, 168 hourly, at least 2 horizons); shorter series are "
                        "trained and forecast with windows of their own length")
    g.add_argument("--horizon", type=_positive_int, default=0, metavar="H",
                   help="steps forecast at once (default: 48 for M4 Hourly, else 2 seasons)")
    g.add_argument("--season", type=_positive_int, default=0, metavar="M",
                   help="season length for the seasonal-naive base and MASE (default: inferred, 24 hourly)")
    g.add_argument("--quantiles", type=_floats, default=[0.1, 0.5, 0.9], metavar="Q1,Q2,...",
                   help="quantile levels learnt with the pinball loss; the one nearest 0.5 is the forecast, "
                        "the outer ones the interval (default 0.1,0.5,0.9)")
    g.add_argument("--norm", choices=("auto", "log", "standard"), default="auto",
                   help="per-window scaling: log of value/window mean, or standardised (default: log when all "
                        "values are positive)")
    g.add_argument("--base", choices=("snaive", "none"), default="snaive",
                   help="learn a correction of the seasonal naive forecast, or the values (default snaive)")
    g.add_argument("--phase", choices=("end", "start"), default="end",
                   help="for series without timestamps, the time features count steps from the series' end, the "
                        "forecast origin (default; a history cut at the front keeps its phase), or from its first "
                        "value (for series that all start at the same time)")
    g.add_argument("--min-window", dest="min_window", type=int, default=0, metavar="N",
                   help="train on input lengths drawn from N..--window per batch, so that histories shorter than "
                        "the window are forecast as well as full ones (default 0: the full window)")
    g.add_argument("--history", type=int, default=0, metavar="N",
                   help="keep only the last N values of each series (training, and eval's default; 0: all)")
    g.add_argument("--holdout", type=int, default=0, metavar="N",
                   help="values at each series' end kept out of training and validation, for a later "
                        "rolling-origin test (default 0)")
    o = t.add_argument_group("training")
    # budgets default to None: on --resume only the budget flags given replace the run's own
    o.add_argument("--max-minutes", dest="max_minutes", type=float, default=None,
                   help="training time (default 10; on --resume: the run's own)")
    o.add_argument("--max-steps", dest="max_steps", type=int, default=None,
                   help="step budget (default 0: none; on --resume: the run's own)")
    o.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=64, help="windows per step (default 64)")
    o.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate, cosine-annealed (default 3e-3)")
    o.add_argument("--eval-every", dest="eval_every", type=_positive_int, default=200, help="steps between validations (default 200)")
    o.add_argument("--seed", type=int, default=0, help="seed of the weights and the window draws (default 0)")
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


def run_train(args: argparse.Namespace) -> int:
    from ..tasks.forecast import ForecastConfig, train_run

    if args.train_file:
        args.data = args.train_file
    keys = ("data", "data_dir", "test", "frequency", "mase_period", "model", "cell", "hidden_size", "num_layers",
            "window", "horizon", "season", "quantiles", "norm", "base", "holdout", "history", "phase", "min_window", "init", "batch_size", "lr", "eval_every",
            "seed")
    given = {k: getattr(args, k) for k in ("max_minutes", "max_steps") if getattr(args, k) is not None}
    cfg = ForecastConfig(**{k: getattr(args, k) for k in keys}, **{"max_minutes": 10.0, "max_steps": 0, **given})
    summary, run_dir = train_run(cfg, args.out, resume=args.resume, force=args.force, given=given)
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
        rows, panels = rolling_origin(fc, series, args.origins, spec["horizon"], args.stat)
        print(f"rolling origin on {args.series}: {args.origins} origins x {spec['horizon']} steps per series")
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
                                                                         spec["window"], label)
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
