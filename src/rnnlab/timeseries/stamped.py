"""Series read as NAB lays them out: a ``timestamp,value`` CSV file, rows in file order, with its
anomaly windows as row ranges (:class:`NabFile`); and one numeric column of a CSV file
(:func:`read_column`). The NAB corpus (labels, profiles) is read by
:mod:`rnnlab.tasks.anomaly.nab_data`; the general CSV reader (long or wide, many series, M4) is
:mod:`rnnlab.timeseries.series`."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclass
class NabFile:
    """One series: ``timestamps`` (datetime64[us]), ``values`` (float64) and its anomaly ``windows``
    as inclusive row ranges ``(first, last)``, in time order."""

    key: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamps)


def parse_timestamps(strings: list[str], where: str, first_line: int = 2) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` strings to ``datetime64[us]``; a bad one is a DataError
    naming ``where`` and the line (``first_line`` is the line of ``strings[0]``)."""
    try:
        return np.array([s.strip().replace(" ", "T", 1) for s in strings], dtype="datetime64[us]")
    except ValueError:
        for i, s in enumerate(strings):
            try:
                np.datetime64(s.strip().replace(" ", "T", 1), "us")
            except ValueError:
                raise DataError(f"{where}, line {first_line + i}: cannot read timestamp {s!r} "
                                "(expected YYYY-MM-DD HH:MM:SS)") from None
        raise


def read_series(path: str | Path, key: str | None = None) -> NabFile:
    """One ``timestamp,value`` CSV file (NAB's data layout), rows kept in file order.

    NAB does not require timestamps to increase, and its files do not always: in
    ``ec2_request_latency_system_failure.csv`` an hour repeats (a clock change) and in
    ``machine_temperature_system_failure.csv`` half an hour is recorded twice. Rows are scored in
    file order; a window end maps to the first row with that time, as in NAB's sweeper."""
    path = Path(path)
    key = key or path.name
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark (Excel) is fine
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                        "save it as a UTF-8 CSV file") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if not rows or [c.strip() for c in rows[0][:2]] != ["timestamp", "value"]:
        found = ",".join(rows[0]) if rows else ""
        raise DataError(f"{path}, line 1: expected the header 'timestamp,value', found {found[:60]!r}")
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: no rows after the header")
    for i, r in enumerate(body):
        if len(r) < 2:
            raise DataError(f"{path}, line {i + 2}: expected 'timestamp,value', got {','.join(r)!r}")
    stamps = parse_timestamps([r[0] for r in body], str(path))
    try:
        values = np.array([float(r[1]) for r in body])
    except ValueError:
        bad = next(i for i, r in enumerate(body) if not _is_float(r[1]))
        raise DataError(f"{path}, line {bad + 2}: cannot read value {body[bad][1]!r}") from None
    if not np.isfinite(values).all():
        bad = int(np.argmin(np.isfinite(values)))
        raise DataError(f"{path}, line {bad + 2}: the value {body[bad][1]!r} is not a finite number")
    return NabFile(key, stamps, values)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_column(path: str | Path, column: str) -> np.ndarray:
    """One numeric column of a CSV file with a header, as float64."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if column not in header:
                raise DataError(f"{path}, line 1: no column {column!r} (columns: {', '.join(header)})")
            j = header.index(column)
            values = []
            for line, row in enumerate(reader, start=2):
                try:
                    values.append(float(row[j]))
                except (ValueError, IndexError):
                    raise DataError(f"{path}, line {line}: cannot read {column} from {','.join(row)!r}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    return np.array(values)
