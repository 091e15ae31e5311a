"""Time-series CSV files, shared by forecasting and anomaly detection.

Two layouts are read (``layout="auto"`` tells them apart):

* **long**: one observation per row, ``value``, ``timestamp,value`` or
  ``series_id,timestamp,value`` (NAB's files; the header is detected, and a
  header naming ``timestamp``/``time``/``date``/``ds``, ``value``/``y`` and
  ``series_id``/``id``/``unique_id`` may put the columns in any order).
  Rows of one series may be interleaved with others; within a series the
  timestamps must increase.
* **wide**: one series per row, an id and then its values, rows padded with
  empty cells at the end (the M4 files; a header row such as ``"V1","V2",...``
  is detected). Wide files carry no timestamps.

Missing values (an empty cell, ``NA``, ``NaN``, ``null`` inside a series, or a
long-layout gap whose length is a whole number of time steps) are never left
as NaN: ``missing="interpolate"`` (default) fills them by linear interpolation
between the nearest observed neighbours (the first/last observed value at the
edges) and sets ``Series.mask`` True there; ``missing="error"`` raises.

Timestamps must be regular: the step is the most common difference, and a
difference that is not a whole multiple of it is a :class:`DataError` naming
the series and line, unless ``resample="1h"`` (any ``<int><unit>`` with unit
``s``, ``min``/``T``, ``h``/``H``, ``d``/``D``, ``w``/``W``) is given: values
are then averaged within buckets ``floor(t / step)`` (buckets start at midnight;
rows may come in any order and repeated timestamps are averaged) and empty
buckets are missing values. Timestamps are parsed by NumPy (ISO 8601, ``T`` or space
separated), then :meth:`datetime.fromisoformat` (time zones, converted to
UTC), then ``pandas.to_datetime`` if pandas happens to be installed.

Why one file of about 360 lines: the two layouts share the header detection, the missing-value
rules and the error messages naming file and line; split, each reader would repeat them.
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rnnlab.errors import DataError

MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a", "?"})
_TIME_NAMES = ("timestamp", "time", "date", "datetime", "ds")
_VALUE_NAMES = ("value", "values", "y", "target")
_ID_NAMES = ("series_id", "id", "unique_id", "series", "name")
_INTEGER = re.compile(r"[+-]?\d+")
_UNITS = {"s": "s", "sec": "s", "min": "m", "t": "m", "h": "h", "d": "D", "w": "W"}


@dataclass
class Series:
    """One series: ``values`` (float64, no NaN), ``timestamps`` (``datetime64[s]`` or None),
    ``mask`` (bool, True where the value was missing in the file and was filled)."""

    id: str
    values: np.ndarray
    timestamps: np.ndarray | None = None
    mask: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.mask is None:
            self.mask = np.zeros(len(self.values), dtype=bool)

    def __len__(self) -> int:
        return len(self.values)


class M4Data(NamedTuple):
    train: list[Series]     # in-sample series
    test: np.ndarray        # (n_series, horizon) out-of-sample values, rows in train's order
    horizon: int
    season_length: int      # M4's frequency: 24 for hourly


M4_SPECS = {"hourly": (48, 24), "daily": (14, 1), "weekly": (13, 1), "monthly": (18, 12),
            "quarterly": (8, 4), "yearly": (6, 1)}


def read_series(path: str | os.PathLike, *, layout: str = "auto", missing: str = "interpolate",
                resample: str | None = None) -> list[Series]:
    """Read every series of a CSV file (see the module docstring for layouts and policies)."""
    if layout not in ("auto", "long", "wide"):
        raise ValueError(f"layout must be auto, long or wide, not {layout!r}")
    if missing not in ("interpolate", "error"):
        raise ValueError(f"missing must be interpolate or error, not {missing!r}")
    path = Path(path)
    rows = _read_rows(path)
    if layout == "auto":
        layout = _guess_layout(rows)
    if layout == "wide":
        if resample:
            raise DataError(f"{path}: resample={resample!r} needs timestamps; a wide file has none")
        return _read_wide(path, rows, missing)
    return _read_long(path, rows, missing, resample)


def load_m4(name: str = "m4-hourly", data_dir: str | os.PathLike | None = None) -> M4Data:
    """The M4 train series and test horizons, files found and verified by :func:`resolve_files`."""
    from ..data.datasets import resolve_files

    freq = name.removeprefix("m4-")
    if freq not in M4_SPECS:
        raise DataError(f"unknown M4 set '{name}'; known: {', '.join('m4-' + f for f in M4_SPECS)}")
    horizon, season = M4_SPECS[freq]
    files = resolve_files(name, data_dir)
    train = read_series(files["train"], layout="wide", missing="error")
    test = {s.id: s for s in read_series(files["test"], layout="wide", missing="error")}
    rows = []
    for s in train:
        t = test.get(s.id)
        if t is None or len(t) != horizon:
            got = "missing" if t is None else f"{len(t)} values"
            raise DataError(f"{files['test']}: series '{s.id}': {got}, expected {horizon} test values; "
                            f"replace the file with the official M4 {freq} test set")
        rows.append(t.values)
    return M4Data(train, np.array(rows).reshape(len(train), horizon), horizon, season)


# --- reading -----------------------------------------------------------------------------------

def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, [c.strip() for c in row]) for row in reader]
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a UTF-8 CSV file ({exc}); save it as CSV") from None
    rows = [(n, r) for n, r in rows if any(r)]
    if not rows:
        raise DataError(f"{path}: empty file; expected CSV rows 'timestamp,value', "
                        f"'series_id,timestamp,value' or 'id,v1,v2,...'")
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _guess_layout(rows) -> str:
    """long for 1-3 columns whose header names a column or whose second cell is a date, else wide."""
    width = max(len(r) for _, r in rows[:50])
    if width <= 1:
        return "long"
    if width > 3:
        return "wide"
    if _has_names(rows[0][1]):
        return "long"
    data = rows[1][1] if len(rows) > 1 and _looks_like_header(rows[0][1]) else rows[0][1]
    cell = data[-2] if len(data) >= 2 else ""
    return "long" if not _is_number(cell) and re.search(r"\d[-:/]\d", cell) else "wide"


def _has_names(row: list[str]) -> bool:
    return any(c.lower() in _TIME_NAMES + _VALUE_NAMES for c in row)


def _looks_like_header(row: list[str]) -> bool:
    last = row[-1]
    return _has_names(row) or (not _is_number(last) and last.lower() not in MISSING_TOKENS)


def _parse_value(path, line, sid, cell, col) -> float:
    if cell.lower() in MISSING_TOKENS:
        return np.nan
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{path}:{line}: series '{sid}': column {col} holds {cell[:30]!r}, not a number; "
                        f"fix or remove that row") from None
    if not np.isfinite(value):
        raise DataError(f"{path}:{line}: series '{sid}': column {col} holds {cell!r}; "
                        f"write missing values as an empty cell")
    return value


def _read_wide(path, rows, missing) -> list[Series]:
    first = rows[0][1]
    if len(first) > 1 and not _is_number(first[1]) and first[1].lower() not in MISSING_TOKENS:
        rows = rows[1:]
    out, seen = [], set()
    for line, row in rows:
        sid = row[0]
        if sid in seen:
            raise DataError(f"{path}:{line}: series '{sid}' appears twice; give each row its own id")
        seen.add(sid)
        cells = row[1:]
        while cells and cells[-1] == "":
            cells.pop()
        values = np.array([_parse_value(path, line, sid, c, j + 2) for j, c in enumerate(cells)])
        out.append(_finish(path, sid, values, None, missing, lambda i, line=line: line))
    if not out:
        raise DataError(f"{path}: a header but no series; expected rows 'id,v1,v2,...'")
    return out


def _columns(path, header: list[str] | None, width: int) -> tuple[int | None, int | None, int]:
    """(id column, time column, value column) of a long file."""
    if header is not None:
        names = [c.lower() for c in header]
        pick = lambda options: next((names.index(o) for o in options if o in names), None)  # noqa: E731
        vcol, tcol, icol = pick(_VALUE_NAMES), pick(_TIME_NAMES), pick(_ID_NAMES)
        if vcol is not None:
            return icol, tcol, vcol
    if width == 1:
        return None, None, 0
    if width == 2:
        return None, 0, 1
    if width == 3:
        return 0, 1, 2
    raise DataError(f"{path}: {width} columns; a long file has 'timestamp,value' or "
                    f"'series_id,timestamp,value' (name the columns in a header row)")


def _read_long(path, rows, missing, resample) -> list[Series]:
    width = len(rows[0][1])
    has_header = _looks_like_header(rows[0][1])
    icol, tcol, vcol = _columns(path, rows[0][1] if has_header else None, width)
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"{path}: a header but no data rows")
    if resample and tcol is None:
        raise DataError(f"{path}: resample={resample!r} needs a timestamp column; this file has none")
    groups: dict[str, list] = {}
    for line, row in body:
        if len(row) < width:
            raise DataError(f"{path}:{line}: {len(row)} columns, the file has {width}; fix that row")
        sid = row[icol] if icol is not None else path.stem
        groups.setdefault(sid, []).append((line, row[tcol] if tcol is not None else None,
                                           _parse_value(path, line, sid, row[vcol], vcol + 1)))
    out = []
    for sid, items in groups.items():
        lines = np.array([it[0] for it in items])
        values = np.array([it[2] for it in items])
        if tcol is None:
            out.append(_finish(path, sid, values, None, missing, lambda i, lines=lines: lines[i]))
            continue
        cells = [it[1] for it in items]
        steps = not resample and all(_INTEGER.fullmatch(c) for c in cells)
        if steps:   # integer ds (statsforecast's integer time index): positions, no clock
            ints = np.array([int(c) for c in cells], dtype=np.int64)
            back = np.flatnonzero(np.diff(ints) <= 0)
            if back.size:
                i = back[0] + 1
                raise DataError(f"{path}:{lines[i]}: series '{sid}': ds {ints[i]} does not follow {ints[i - 1]} "
                                f"(line {lines[i - 1]}); sort the rows by ds and drop duplicates")
            stamps = ints.astype("datetime64[s]")
        else:
            stamps = _parse_times(path, sid, cells, lines)
        values, stamps, lines = _regularise(path, sid, values, stamps, lines, resample)
        out.append(_finish(path, sid, values, None if steps else stamps, missing,
                           lambda i, lines=lines: lines[min(i, len(lines) - 1)]))
    return out


def _parse_times(path, sid, cells: list[str], lines) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy warns on time zones: fromisoformat handles those
        try:
            return np.array(cells, dtype="datetime64[s]")
        except (ValueError, Warning):
            pass
    out = np.empty(len(cells), dtype="datetime64[s]")
    for i, cell in enumerate(cells):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out[i] = np.datetime64(cell, "s")
            continue
        except (ValueError, Warning):
            pass
        try:
            stamp = datetime.fromisoformat(cell)
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
            out[i] = np.datetime64(stamp, "s")
            continue
        except ValueError:
            pass
        try:  # optional: pandas reads many more formats (e.g. '07/01/2014 10:00')
            import pandas as pd
            stamp = pd.Timestamp(pd.to_datetime(cell))
            out[i] = np.datetime64((stamp.tz_convert(None) if stamp.tzinfo else stamp).to_datetime64(), "s")
            continue
        except ImportError:
            hint = "; use ISO 8601, e.g. 2014-07-01 10:00:00 (or install pandas for other formats)"
        except (ValueError, TypeError, OverflowError):
            hint = "; use ISO 8601, e.g. 2014-07-01 10:00:00"
        raise DataError(f"{path}:{lines[i]}: series '{sid}': cannot read timestamp {cell[:40]!r}{hint}")
    return out


def parse_step(text: str) -> np.timedelta64:
    """``"1h"`` -> ``numpy.timedelta64(3600, 's')``; units s, min/T, h, d, w."""
    match = re.fullmatch(r"\s*(\d*)\s*([a-zA-Z]+)\s*", text or "")
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if unit is None or (match.group(1) and int(match.group(1)) == 0):
        raise DataError(f"resample={text!r}: expected a step such as 30s, 5min, 1h, 1d or 1w")
    return np.timedelta64(int(match.group(1) or 1), unit).astype("timedelta64[s]")


def _regularise(path, sid, values, stamps, lines, resample):
    """Regular grid ``t0 + k * step``; whole-step gaps become NaN (missing), others an error."""
    if resample:  # buckets need no order: sort (stably), duplicates are averaged
        order = np.argsort(stamps, kind="stable")
        values, stamps, lines = values[order], stamps[order], lines[order]
    diffs = np.diff(stamps)
    bad = np.flatnonzero(diffs <= np.timedelta64(0, "s"))
    if bad.size and not resample:
        i = bad[0] + 1
        what = "repeats" if diffs[bad[0]] == np.timedelta64(0, "s") else "goes back from"
        raise DataError(f"{path}:{lines[i]}: series '{sid}': timestamp {stamps[i]} {what} "
                        f"{stamps[i - 1]} (line {lines[i - 1]}); sort the rows by time and drop duplicates")
    if resample:
        step = parse_step(resample)
        bucket = (stamps - stamps[0].astype("datetime64[D]")) // step
        bucket -= bucket[0]
        n = int(bucket[-1]) + 1
        sums = np.bincount(bucket, weights=np.nan_to_num(values), minlength=n)
        counts = np.bincount(bucket, weights=(~np.isnan(values)).astype(float), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            grid_values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        first = stamps[0].astype("datetime64[D]") + ((stamps[0] - stamps[0].astype("datetime64[D]")) // step) * step
        return grid_values, first + np.arange(n) * step, lines[np.searchsorted(bucket, np.arange(n))]
    if len(stamps) < 2:
        return values, stamps, lines
    uniq, counts = np.unique(diffs, return_counts=True)
    step = uniq[np.argmax(counts)]
    ratio = diffs / step
    off = np.flatnonzero(ratio != np.round(ratio))
    if off.size:
        i = off[0] + 1
        raise DataError(f"{path}:{lines[i]}: series '{sid}': irregular timestamps ({stamps[i - 1]} -> "
                        f"{stamps[i]}, the usual step is {step.astype(int)}s); pass resample='1h' "
                        f"(or another step) to average into a regular grid")
    pos = np.concatenate([[0], np.cumsum(np.round(ratio).astype(np.int64))])
    grid = np.full(pos[-1] + 1, np.nan)
    grid[pos] = values
    grid_lines = lines[np.searchsorted(pos, np.arange(len(grid)))]  # a gap: the row after it
    return grid, stamps[0] + np.arange(len(grid)) * step, grid_lines


def _finish(path, sid, values, stamps, missing, line_of) -> Series:
    """Fill NaN by linear interpolation (nearest observed value at the edges), recorded in mask."""
    mask = np.isnan(values)
    if len(values) == 0 or mask.all():
        raise DataError(f"{path}: series '{sid}' has no values; remove it or fill it in")
    if mask.any():
        if missing == "error":
            i = int(np.flatnonzero(mask)[0])
            raise DataError(f"{path}:{line_of(i)}: series '{sid}': value {i + 1} is missing; fill it in, "
                            f"or read with missing='interpolate'")
        idx = np.arange(len(values))
        values = values.copy()
        values[mask] = np.interp(idx[mask], idx[~mask], values[~mask])
    return Series(sid, values, stamps, mask)
