"""Windows over many series, shared by forecasting and anomaly detection (NumPy only).

A *window* is an input of ``L`` consecutive values followed by a horizon of ``H`` values,
``x = v[s : s+L]``, ``y = v[s+L : s+L+H]``, drawn from one series. Drawing never looks ahead:
with a ``cutoff`` (the number of leading values of each series that may be used, e.g.
``len(v) - H`` to hold out the last horizon) every drawn ``x`` and ``y`` lies before it.

Normalisation is per window: ``level`` is the input's last value or its mean,
``x' = x / level`` and ``y' = y / level`` (then ``log`` of both when asked, which needs
positive values); :func:`denormalize` inverts it, ``ŷ = level * exp(ŷ')`` (or
``level * ŷ'``). A level of exactly 0 is replaced by 1 (the window is then unscaled).

Calendar features are ``sin(2π p / P), cos(2π p / P)`` for a phase ``p`` in a period ``P``:
hour of day (``P = 24``, hours since midnight, fractional) and day of week (``P = 7``, days
since Monday, fractional) from ``datetime64`` timestamps, or any periods from a position
index (``p = (t + offset) mod P``).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from rnnlab.errors import DataError


class Windows(NamedTuple):
    x: np.ndarray             # (N, L) inputs
    y: np.ndarray             # (N, H) targets (H may be 0)
    series_index: np.ndarray  # (N,) which series each window came from
    start: np.ndarray         # (N,) position of x[:, 0] in its series


class Normalized(NamedTuple):
    x: np.ndarray
    y: np.ndarray | None
    level: np.ndarray         # (N,) divisor of each window


def _values(s) -> np.ndarray:
    return np.asarray(getattr(s, "values", s), dtype=np.float64)


def _cutoffs(series, cutoff) -> np.ndarray:
    lengths = np.array([len(_values(s)) for s in series], dtype=np.int64)
    if cutoff is None:
        return lengths
    c = np.broadcast_to(np.asarray(cutoff, dtype=np.int64), lengths.shape)
    c = np.where(c < 0, lengths + c, c)
    return np.clip(c, 0, lengths)


def window_counts(series: Sequence, input_len: int, horizon: int, cutoff=None) -> np.ndarray:
    """Number of windows each series offers: ``max(0, cutoff - L - H + 1)``."""
    return np.maximum(0, _cutoffs(series, cutoff) - input_len - horizon + 1)


def sample_windows(series: Sequence, input_len: int, horizon: int, n: int, *,
                   by: str = "series", cutoff=None, seed: int | None = 0,
                   rng: np.random.Generator | None = None) -> Windows:
    """Draw ``n`` windows (with replacement) from ``series`` (arrays or :class:`Series`).

    ``by="series"``: pick a series uniformly among those long enough, then a start uniformly
    within it; ``by="position"``: every possible window equally likely (long series weigh
    more). ``cutoff`` (int, negative from the end, or one per series) limits the usable prefix.
    ``rng`` (a ``numpy.random.Generator``) takes precedence over ``seed``.
    """
    if input_len < 1 or horizon < 0 or n < 0:
        raise ValueError(f"need input_len >= 1, horizon >= 0, n >= 0; got {input_len}, {horizon}, {n}")
    if by not in ("series", "position"):
        raise ValueError(f"by must be 'series' or 'position', not {by!r}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    counts = window_counts(series, input_len, horizon, cutoff)
    usable = np.flatnonzero(counts > 0)
    if usable.size == 0:
        raise DataError(f"no series has the {input_len + horizon} values a window of input {input_len} "
                        f"and horizon {horizon} needs; shorten the window")
    if by == "series":
        idx = usable[rng.integers(0, usable.size, size=n)]
        start = (rng.random(n) * counts[idx]).astype(np.int64)
    else:
        cum = np.cumsum(counts)
        flat = rng.integers(0, cum[-1], size=n)
        idx = np.searchsorted(cum, flat, side="right")
        start = flat - (cum[idx] - counts[idx])
    return gather(series, idx, start, input_len, horizon)


def gather(series: Sequence, series_index, start, input_len: int, horizon: int) -> Windows:
    """The windows at the given (series, start) pairs."""
    series_index = np.asarray(series_index, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    total = input_len + horizon
    out = np.empty((len(start), total))
    offsets = np.arange(total)
    for k in np.unique(series_index):
        rows = np.flatnonzero(series_index == k)
        v = _values(series[k])
        if rows.size and (start[rows].min() < 0 or start[rows].max() + total > len(v)):
            raise ValueError(f"a window of {total} values does not fit series {k} of length {len(v)}")
        out[rows] = v[start[rows, None] + offsets]
    return Windows(out[:, :input_len], out[:, input_len:], series_index, start)


def all_windows(series: Sequence, input_len: int, horizon: int, *, stride: int = 1, cutoff=None) -> Windows:
    """Every window (starts ``0, stride, ...``) of every series, in order."""
    counts = window_counts(series, input_len, horizon, cutoff)
    idx = np.concatenate([np.full(len(range(0, c, stride)), k) for k, c in enumerate(counts)] + [np.zeros(0)])
    start = np.concatenate([np.arange(0, c, stride) for c in counts] + [np.zeros(0)])
    return gather(series, idx.astype(np.int64), start.astype(np.int64), input_len, horizon)


def last_windows(series: Sequence, input_len: int) -> np.ndarray:
    """The last ``input_len`` values of each series, ``(N, L)``: the input of a forecast."""
    short = [k for k, s in enumerate(series) if len(_values(s)) < input_len]
    if short:
        raise DataError(f"series {short[0]} has fewer than {input_len} values; shorten the input window")
    return np.stack([_values(s)[-input_len:] for s in series])


def normalize(x: np.ndarray, y: np.ndarray | None = None, *, level: str = "last",
              log: bool = False) -> Normalized:
    """Divide each window by its level (``"last"``, ``"mean"`` or ``"none"``), then ``log``."""
    x = np.asarray(x, dtype=np.float64)
    if level == "last":
        lv = x[..., -1].copy()
    elif level == "mean":
        lv = x.mean(axis=-1)
    elif level == "none":
        lv = np.ones(x.shape[:-1])
    else:
        raise ValueError(f"level must be 'last', 'mean' or 'none', not {level!r}")
    lv = np.where(lv == 0, 1.0, lv)
    xs = x / lv[..., None]
    ys = None if y is None else np.asarray(y, dtype=np.float64) / lv[..., None]
    if log:
        bad = (xs <= 0).any(axis=-1) | (False if ys is None else (ys <= 0).any(axis=-1))
        if np.any(bad):
            k = int(np.flatnonzero(np.ravel(bad))[0])
            raise DataError(f"window {k}: log normalisation needs values of one sign and no zeros; "
                            f"use log=False")
        xs = np.log(xs)
        ys = None if ys is None else np.log(ys)
    return Normalized(xs, ys, lv)


def denormalize(out: np.ndarray, level: np.ndarray, *, log: bool = False) -> np.ndarray:
    """Inverse of :func:`normalize` for model outputs ``(N, H)``: ``level * (exp(out) if log)``."""
    out = np.asarray(out, dtype=np.float64)
    return (np.exp(out) if log else out) * np.asarray(level, dtype=np.float64)[..., None]


def periodic_features(positions, periods: Sequence[float] = (24, 168), offset: float = 0) -> np.ndarray:
    """``[sin(2π p/P), cos(2π p/P) for P in periods]`` with ``p = (positions + offset) mod P``."""
    t = np.asarray(positions, dtype=np.float64) + offset
    cols = []
    for period in periods:
        phase = 2 * np.pi * np.mod(t, period) / period
        cols += [np.sin(phase), np.cos(phase)]
    return np.stack(cols, axis=-1)


def calendar_features(timestamps, kinds: Sequence[str] = ("hour", "dow")) -> np.ndarray:
    """Hour of day (period 24 h) and/or day of week (period 7 days, Monday = 0) as sin/cos."""
    t = np.asarray(timestamps).astype("datetime64[s]")
    seconds = (t - np.datetime64("1970-01-01T00:00:00", "s")).astype(np.int64).astype(np.float64)
    cols = []
    for kind in kinds:
        if kind == "hour":
            cols.append(periodic_features(seconds / 3600.0, (24,)))
        elif kind == "dow":  # 1970-01-01 was a Thursday (Monday = 0 -> Thursday = 3)
            cols.append(periodic_features(seconds / 86400.0 + 3, (7,)))
        else:
            raise ValueError(f"calendar feature must be 'hour' or 'dow', not {kind!r}")
    return np.concatenate(cols, axis=-1)
