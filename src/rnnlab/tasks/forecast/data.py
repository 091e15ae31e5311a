"""Loading forecasting data (M4 Hourly or a CSV file) and checking it against a model.

Every problem is a :class:`~rnnlab.errors.DataError` of one line naming the file or series and
what to do.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ...timeseries.series import Series, load_m4, read_series
from ...errors import DataError


class Dataset(NamedTuple):
    name: str
    series: list            # list[Series]
    test: np.ndarray | None  # (N, H) M4's out-of-sample values, else None
    horizon: int | None
    season: int | None


def load_dataset(source: str, data_dir: str | None = None) -> Dataset:
    """``m4-hourly`` (any ``m4-<freq>``) from ``data_dir``, or the series of a CSV file."""
    if source.lower().startswith("m4-"):
        d = load_m4(source.lower(), data_dir)
        return Dataset(source.lower(), d.train, d.test, d.horizon, d.season_length)
    return Dataset(source, read_csv(source), None, None, None)


def read_csv(path: str | Path) -> list[Series]:
    """The series of a CSV file (long or wide layout, :mod:`rnnlab.timeseries.series`), never empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; give a CSV of timestamp,value rows or m4-hourly")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; give a CSV with a header and one value per row")
    series = read_series(path)
    if not series or all(len(s) == 0 for s in series):
        raise DataError(f"{path}: no values found; give a CSV with a header and one value per row")
    return series


def last_values(series: Sequence[Series], n: int) -> list[Series]:
    """Each series cut to its last ``n`` values (timestamps and mask with them); ``n = 0``: unchanged."""
    if n <= 0:
        return list(series)
    return [Series(s.id, s.values[-n:], None if s.timestamps is None else s.timestamps[-n:], s.mask[-n:])
            for s in series]


def as_series(data, name: str = "series") -> list[Series]:
    """Series from a list of :class:`Series`, a list of arrays, or one array."""
    if isinstance(data, (str, Path)):
        return read_csv(data)
    if isinstance(data, Series):
        return [data]
    if isinstance(data, np.ndarray) and data.ndim == 1:
        data = [data]
    out = []
    for k, s in enumerate(data):
        if isinstance(s, Series):
            out.append(s)
        else:
            v = np.asarray(s, dtype=np.float64)
            if v.ndim != 1 or not np.isfinite(v).all():
                raise DataError(f"{name} {k}: expected a 1-D array of finite numbers")
            out.append(Series(str(k), v))
    return out


def check_horizon(horizon: int | None, trained: int) -> int:
    if horizon is None:
        return trained
    if horizon < 1:
        raise DataError(f"--horizon must be at least 1, got {horizon}")
    if horizon > trained:
        raise DataError(f"--horizon {horizon} is longer than the model's horizon of {trained}; ask for at most "
                        f"{trained} steps or train a model with --horizon {horizon}")
    return horizon
