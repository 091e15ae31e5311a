"""Files of ``rnnlab detect``: the input series, its labelled windows, the scores CSV and the plot.

The input is a ``timestamp,value`` CSV (NAB's layout, :func:`rnnlab.tasks.anomaly.nab_data.read_series`),
scored row by row in file order, so the output has exactly the input's rows. Every problem is one
:class:`~rnnlab.errors.DataError` line: an empty file, a missing header, a value that is not a
number, a timestamp that cannot be read, or one earlier than the row before it (``keep_order``
accepts that, as NAB does for its two files with a clock change or a repeated half hour).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...io.atomic import atomic_write
from ...errors import DataError
from ...timeseries.stamped import NabFile, read_series
from .nab_data import WINDOWS_FILE, load_windows, window_rows


def read_input(path: str | Path, keep_order: bool = False) -> NabFile:
    """The series of ``path``; rows must be in time order unless ``keep_order``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise DataError(f"{path}: the file is empty (expected a header 'timestamp,value' and rows)")
    series = read_series(path, key=path.name)
    if not keep_order:
        back = np.flatnonzero(np.diff(series.timestamps) < np.timedelta64(0, "us"))
        if len(back):
            i = int(back[0]) + 1
            now, before = np.datetime_as_string(series.timestamps[i - 1:i + 1], unit="s")[::-1]
            raise DataError(f"{path}, line {i + 2}: timestamp {now} is earlier than the row before it "
                            f"({before}); sort the rows by time, or pass "
                            "--keep-order to score them in file order")
    return series


def find_labels(path: Path, labels: str | Path | None) -> tuple[Path | None, str | None]:
    """The label file to use and this file's key in it: ``labels`` when given, else NAB's
    ``<root>/labels/combined_windows.json`` for a file at ``<root>/data/<group>/<name>.csv``."""
    path = Path(path).resolve()
    key = f"{path.parent.name}/{path.name}"
    if labels is not None:
        return Path(labels), key
    guess = path.parent.parent.parent / WINDOWS_FILE
    if path.parent.parent.name == "data" and guess.is_file():
        return guess, key
    return None, None


def labelled_windows(series: NabFile, label_path: Path, key: str) -> list[tuple[int, int]]:
    """The rows of ``series``' windows in ``label_path``, found by ``<group>/<name>`` or by name alone;
    a label file naming no such file, or windows not matching its timestamps, is a DataError."""
    raw = load_windows(label_path)
    name = key.split("/")[-1]
    matches = [k for k in raw if k == key] or [k for k in raw if k.split("/")[-1] == name]
    if not matches:
        named = ", ".join(sorted(raw)[:5]) + (", ..." if len(raw) > 5 else "")
        raise DataError(f"{label_path}: names no file {name} (it names: {named or 'nothing'})")
    series.key = matches[0]
    return window_rows(series, raw[matches[0]], str(label_path))


def write_scores(path: str | Path, series: NabFile, scores: np.ndarray, threshold: float | None = None) -> Path:
    """``timestamp,value,anomaly_score``, one line per row (written atomically); with a
    ``threshold`` also ``alarm``, 1 where the score is at least the threshold (NAB's rule)."""
    path = Path(path)
    stamps = np.datetime_as_string(series.timestamps, unit="s")
    scores = np.asarray(scores)
    alarms = [""] * len(scores) if threshold is None else [f",{int(a)}" for a in scores >= threshold]
    lines = ["timestamp,value,anomaly_score" + ("" if threshold is None else ",alarm")]
    lines += [f"{t.replace('T', ' ')},{v!r},{s:.10g}{a}" for t, v, s, a in zip(stamps, series.values.tolist(),
                                                                             scores.tolist(), alarms)]
    with atomic_write(path) as f:
        f.write(("\n".join(lines) + "\n").encode())
    return path


def read_scores(path: str | Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def plot_detection(path: str | Path, series: NabFile, scores: np.ndarray,
                   windows: list[tuple[int, int]] | None = None, title: str = "",
                   probationary: int | None = None) -> Path:
    """A PNG: the series above, its anomaly score below, labelled windows shaded in both."""
    from ...plotting import require_matplotlib

    plt = require_matplotlib()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    t = series.timestamps.astype("datetime64[s]").astype(object)
    top.plot(t, series.values, lw=0.7, color="tab:blue")
    bottom.plot(t, scores, lw=0.7, color="tab:red")
    for first, last in windows or []:
        for ax in (top, bottom):
            ax.axvspan(t[first], t[last], color="tab:orange", alpha=0.25, lw=0)
    if probationary:
        for ax in (top, bottom):
            ax.axvspan(t[0], t[min(probationary, len(t) - 1)], color="0.85", alpha=0.5, lw=0)
    top.set_ylabel("value")
    bottom.set_ylabel("anomaly score")
    bottom.set_ylim(-0.02, 1.02)
    top.set_title(title + ("   (shaded: labelled windows; grey: probationary period)" if windows else
                           "   (grey: probationary period)"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
