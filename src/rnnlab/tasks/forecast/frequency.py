"""M4's frequencies and scoring a separate test file with M4's official definition for its frequency.

M4 (Makridakis et al. 2020, and the organisers' evaluation code) fixes, per frequency, the horizon and
the period ``m`` used by MASE, MSIS and Naive2's seasonality test and decomposition:

========== ======= ============
frequency  horizon MASE period
========== ======= ============
yearly     6       1
quarterly  8       4
monthly    18      12
weekly     13      1
daily      14      1
hourly     48      24
========== ======= ============

The model's own season (its seasonal-naive base and default window) is set apart from the metric's:
``--season`` for the model, ``--mase-period`` for the metric (default: M4's for ``--frequency``).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...errors import ConfigError, DataError


class Frequency(NamedTuple):
    horizon: int
    period: int       # MASE / Naive2 period (M4's official)
    window: int       # the model's default input window


FREQUENCIES = {"yearly": Frequency(6, 1, 12), "quarterly": Frequency(8, 4, 16), "monthly": Frequency(18, 12, 36),
               "weekly": Frequency(13, 1, 52), "daily": Frequency(14, 1, 28), "hourly": Frequency(48, 24, 168)}


def frequency(name: str) -> Frequency | None:
    if not name:
        return None
    f = FREQUENCIES.get(name.lower())
    if f is None:
        raise ConfigError(f"unknown --frequency {name!r}; choose from {', '.join(FREQUENCIES)} "
                          f"(or give --season M and --mase-period M)")
    return f


def match_test(train: Sequence, test: Sequence, test_path: str) -> np.ndarray:
    """Test values in the train series' order ``(N, H)``; every train series needs its H test values."""
    by_id = {s.id: s for s in test}
    lengths = {len(s) for s in test}
    if len(lengths) != 1:
        raise DataError(f"{test_path}: test series have {min(lengths)} to {max(lengths)} values; every series "
                        f"needs the same horizon")
    rows = []
    for s in train:
        t = by_id.get(s.id)
        if t is None:
            raise DataError(f"{test_path}: no test values for series '{s.id}' of the training file; give the "
                            f"test file that belongs to it")
        rows.append(t.values)
    return np.stack(rows)


def length_buckets(lengths: np.ndarray, window: int) -> list[tuple[str, np.ndarray]]:
    """Series grouped by history length against the model's window ``L``: ``1..L/4``, ``..L/2``, ``..L-1``
    and ``>= L`` (a full window); (label, row indices) for the non-empty groups."""
    lengths = np.asarray(lengths)
    q1, q2 = max(window // 4, 1), max(window // 2, 1)
    bounds = [(1, q1), (q1 + 1, q2), (q2 + 1, window - 1)]
    out = [(f"length {lo}-{hi}", np.flatnonzero((lengths >= lo) & (lengths <= hi))) for lo, hi in bounds if lo <= hi]
    out.append((f"length >= {window}", np.flatnonzero(lengths >= window)))
    return [(label, rows) for label, rows in out if rows.size]
