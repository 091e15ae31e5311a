"""Evaluation tables, rolling-origin tests, forecast CSV files and plots (behind ``rnnlab forecast``)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ...timeseries.series import Series
from ...errors import DataError
from .api import Forecast, Forecaster
from .baselines import auto_arima, auto_ets, forecast_all
from .metrics import owa
from .task import score

FAST_BASELINES = ("naive", "snaive", "naive2", "theta")
STAT_BASELINES = ("auto_arima", "auto_ets")


def baseline_forecasts(xs: Sequence[np.ndarray], h: int, m: int, stat: bool | Sequence[str],
                       cache: Path | None = None, log=print) -> dict[str, tuple[np.ndarray, float]]:
    """Forecasts and wall time of every baseline; AutoARIMA/AutoETS only with ``stat`` (True for both,
    or their names), cached in ``cache`` (a folder) since they take minutes."""
    out = {name: tuple(forecast_all(name, xs, h, m)) for name in FAST_BASELINES}
    key = _histories_key(xs, m)
    for name in (STAT_BASELINES if stat is True else stat or ()):
        file = cache / f"baseline-{name}-h{h}-{key}.npz" if cache is not None else None
        if file is not None and file.is_file():
            with np.load(file) as z:
                out[name] = (z["forecasts"], float(z["seconds"]))
            continue
        log(f"fitting {name} to {len(xs)} series (minutes)...")
        r = auto_arima(xs, h, m, approximation=True) if name == "auto_arima" else auto_ets(xs, h, m)
        out[name] = (r.forecasts, r.seconds)
        if file is not None:
            np.savez(file, forecasts=r.forecasts, seconds=r.seconds)
    return out


def _histories_key(xs: Sequence[np.ndarray], m: int) -> str:
    """A short digest of the histories and the period (a cached fit belongs to exactly these)."""
    import hashlib
    d = hashlib.sha256(f"{m}:{len(xs)}".encode())
    for x in xs:
        d.update(np.ascontiguousarray(x, dtype=np.float64).tobytes() + b"|")
    return d.hexdigest()[:12]


def score_table(xs: Sequence[np.ndarray], actual: np.ndarray, m: int,
                entries: dict[str, tuple[np.ndarray, float]]) -> list[dict]:
    """One row per method: sMAPE, MASE, OWA (against Naive2 of these forecasts) and seconds."""
    n2 = score(xs, actual, entries["naive2"][0], m)
    rows = []
    for name, (fc, seconds) in entries.items():
        s, q = score(xs, actual, fc, m)
        rows.append({"method": name, "smape": s, "mase": q, "owa": owa((s, q), n2), "seconds": seconds})
    return rows


def test_file_table(fc: Forecaster, stat, cache: Path | None, history: int | None = None) -> tuple[list[dict], list[str]]:
    """Score a run's --test file with the metric period of its --frequency / --mase-period: the method
    table, then the model's interval coverage (and MSIS with the 0.025/0.975 quantiles), then OWA per
    history-length bucket beside seasonal naive and Naive2. ``history``: the last N values of each
    training series are the history (default: the run's --history)."""
    from .data import last_values, read_csv
    from .frequency import match_test
    from .task import metric_period

    cfg, spec = fc.cfg, fc.spec
    train = last_values(read_csv(cfg.data), cfg.history if history is None else history)
    test = read_csv(cfg.test)
    actual = match_test(train, test, cfg.test)
    h = actual.shape[1]
    m = metric_period(cfg, spec)
    f = fc.predict(train, h)
    xs = [s.values for s in train]
    entries = {"rnnlab": (f.point, f.seconds), **baseline_forecasts(xs, h, m, stat, cache)}
    rows = score_table(xs, actual, m, entries)
    lines = [f"{cfg.test}: {len(xs)} series x {h} steps; MASE and Naive2 period {m}", format_rows(rows)]
    return rows, lines + interval_lines(xs, actual, f, m) + bucket_lines(xs, actual, m, entries, spec.window)


def interval_lines(xs: Sequence[np.ndarray], actual: np.ndarray, f: Forecast, m: int) -> list[str]:
    """The empirical coverage of the model's outer interval, and MSIS and coverage of the 95 % interval
    when the model has the 0.025 and 0.975 quantiles."""
    from .metrics import coverage, msis

    lo, hi, q = f.levels[0], f.levels[-1], f.quantiles
    lines = [f"interval q{lo:g}-q{hi:g} (nominal {100 * (hi - lo):.1f} %): coverage "
             f"{100 * coverage(actual, q[..., 0], q[..., -1]):.1f} %"]
    if 0.025 in f.levels and 0.975 in f.levels:
        i, j = f.levels.index(0.025), f.levels.index(0.975)
        lines.append(f"95 % interval (q0.025-q0.975): MSIS {msis(xs, actual, q[..., i], q[..., j], m):.3f}, "
                     f"coverage {100 * coverage(actual, q[..., i], q[..., j]):.1f} %")
    return lines


def bucket_lines(xs: Sequence[np.ndarray], actual: np.ndarray, m: int, entries: dict, window: int,
                 model: str = "rnnlab") -> list[str]:
    """OWA of the model, seasonal naive and Naive2 per history-length bucket (against Naive2 of the bucket)."""
    from .frequency import length_buckets

    lines = ["| history length | series | OWA rnnlab | OWA seasonal naive | OWA Naive2 |", "| --- | --- | --- | --- | --- |"]
    lengths = np.array([len(x) for x in xs])
    for label, rows_k in length_buckets(lengths, window):
        sub = [xs[i] for i in rows_k]
        t = score_table(sub, actual[rows_k], m, {k: (v[0][rows_k], 0.0) for k, v in entries.items()
                                                  if k in (model, "snaive", "naive2")})
        o = {r["method"]: r["owa"] for r in t}
        lines.append(f"| {label} | {len(rows_k)} | {o[model]:.3f} | {o['snaive']:.3f} | {o['naive2']:.3f} |")
    return lines


def format_rows(rows: list[dict]) -> str:
    lines = ["| method | sMAPE | MASE | OWA | seconds |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['smape']:.3f} | {r['mase']:.3f} | {r['owa']:.3f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def rolling_origin(fc: Forecaster, series: Sequence[Series], origins: int, horizon: int,
                   stat: bool = False) -> tuple[list[dict], list[tuple[Series, int, Forecast]]]:
    """Forecast from ``origins`` origins spaced ``horizon`` apart at the end of each series, the last
    ending at the series' end; every method sees only the values before its origin."""
    m = fc.spec.season
    hist, actual, kept = [], [], []
    for s in series:
        for k in range(origins, 0, -1):
            end = len(s) - k * horizon
            if end < 1:
                raise DataError(f"series '{s.id}' has {len(s)} values: {origins} origins of {horizon} steps leave "
                                f"none before the first; use fewer --origins")
            hist.append(Series(s.id, s.values[:end], None if s.timestamps is None else s.timestamps[:end]))
            actual.append(s.values[end:end + horizon])
            kept.append((s, end))
    f = fc.predict(hist, horizon)
    xs = [h.values for h in hist]
    entries = {"rnnlab": (f.point, f.seconds), **baseline_forecasts(xs, horizon, m, stat)}
    rows = score_table(xs, np.array(actual), m, entries)
    per_origin = [(s, end, Forecast([s.id], f.point[i:i + 1], f.quantiles[i:i + 1], f.levels, 0.0))
                  for i, (s, end) in enumerate(kept)]
    return rows, per_origin


LAYOUTS = ("rows", "wide", "long")


def write_forecast_csv(path: Path, series: Sequence[Series], f: Forecast, layout: str = "rows") -> Path:
    """The point forecasts (and, in ``rows``, the quantiles) in one of three layouts:

    * ``rows``: ``series_id,step,timestamp,forecast,q<level>...``, one row per forecast step;
    * ``wide``: M4's layout, a header ``"V1","V2",...`` and one row ``"id","f1","f2",...`` per series (every
      cell quoted, as M4's files), so that it reads back as a test file;
    * ``long``: ``unique_id,ds,y`` rows (statsforecast's and neuralforecast's layout); ``ds`` continues each
      series' timestamps, or, for series without timestamps, its positions ``n+1..n+H`` (the history's values
      counted from 1)."""
    if layout not in LAYOUTS:
        raise DataError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout != "rows":
        return _write_point_layout(path, series, f, layout)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["series_id", "step", "timestamp", "forecast"] + [f"q{q:g}" for q in f.levels])
        for i, s in enumerate(series):
            stamps = future_stamps(s, f.point.shape[1])
            for k in range(f.point.shape[1]):
                w.writerow([s.id, k + 1, "" if stamps is None else str(stamps[k]), f"{f.point[i, k]:.6g}"]
                           + [f"{v:.6g}" for v in f.quantiles[i, k]])
    return path


def _write_point_layout(path: Path, series: Sequence[Series], f: Forecast, layout: str) -> Path:
    h = f.point.shape[1]
    with open(path, "w", newline="") as fh:
        if layout == "wide":
            w = csv.writer(fh, quoting=csv.QUOTE_ALL)
            w.writerow([f"V{k + 1}" for k in range(h + 1)])
            for i, s in enumerate(series):
                w.writerow([s.id] + [f"{v:.10g}" for v in f.point[i]])
            return path
        w = csv.writer(fh)
        w.writerow(["unique_id", "ds", "y"])
        for i, s in enumerate(series):
            stamps = future_stamps(s, h)
            ds = [str(t).replace("T", " ") for t in stamps] if stamps is not None else range(len(s) + 1, len(s) + h + 1)
            for k, t in enumerate(ds):
                w.writerow([s.id, t, f"{f.point[i, k]:.10g}"])
    return path


def future_stamps(s: Series, h: int):
    if s.timestamps is None or len(s.timestamps) < 2:
        return None
    step = np.median(np.diff(s.timestamps.astype("datetime64[s]")).astype(np.int64))
    return s.timestamps[-1].astype("datetime64[s]") + np.arange(1, h + 1) * np.timedelta64(int(step), "s")


def plot_forecasts(path: Path, panels: list[tuple[Series, int, Forecast]], title: str, history: int = 336) -> Path:
    """One panel per (series, origin, forecast): the history, the forecast, the interval, the actuals."""
    from ...plotting import require_matplotlib
    plt = require_matplotlib()
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), squeeze=False)
    for ax, (s, end, f) in zip(axes[:, 0], panels):
        h = f.point.shape[1]
        t0 = max(0, end - history)
        ax.plot(np.arange(t0, end), s.values[t0:end], color="0.3", lw=0.8, label="history")
        if end + h <= len(s):
            ax.plot(np.arange(end, end + h), s.values[end:end + h], color="k", lw=0.8, ls=":", label="actual")
        ax.plot(np.arange(end, end + h), f.point[0], color="tab:blue", lw=1.2, label="forecast")
        ax.fill_between(np.arange(end, end + h), f.lower[0], f.upper[0], color="tab:blue", alpha=0.2,
                        label=f"q{f.levels[0]:g}-q{f.levels[-1]:g}")
        ax.set_title(f"{s.id} (origin {end})", fontsize=9)
    axes[0, 0].legend(loc="upper left", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the title
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=1))
    return path
