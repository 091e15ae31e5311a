"""What the forecasters see: normalised windows, time features and the seasonal-naive base.

For a window ``x_1..x_L`` of one series (values before the forecast origin) and horizon ``H``:

* **normalisation** per window (``norm``): ``"log"``: ``x' = log(x / level)``, ``level`` the
  window's mean (needs positive values, as M4's); ``"standard"``: ``x' = (x - mean) / std``
  (any sign; a constant window has scale ``max(|mean|, 1)``). Forecasts are mapped back by the
  inverse (``level * exp(y')`` or ``mean + std * y'``).
* **time features**: ``sin/cos(2π t / P)`` for each period ``P`` in ``periods`` (default 24 and
  168), where ``t`` is the time in hours (shifted so that the weekly phase 0 is Monday 00:00)
  for series with timestamps, else the position in steps counted from the series' **end** (the
  forecast origin: the last value is at ``t = -1``, the first forecast at ``t = 0``; spec
  ``phase="end"``), so cutting a history at the front leaves the features of the values kept
  unchanged (M4's files carry no timestamps). Models saved before this change have no ``phase`` key
  and keep counting from the series' first value (``phase="start"``);
* **base**: the seasonal-naive forecast in normalised space, ``b_k = x'_{L-m+((k-1) mod m)}``
  (``m`` the season; ``b_k = x'_L`` when ``m = 1`` or ``L < m``); the networks learn the
  correction ``y' - b`` (``base="none"``: ``b = 0``).

The encoder input per step is ``[x'_t, time features of t]``; the decoder input of future step
``k`` (encoder-decoder only) is ``[b_k, time features of L+k]``.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...timeseries.windows import periodic_features
from ...errors import DataError
from .spec import PHASES, ForecastSpec

MONDAY_OFFSET_H = 72.0  # 1970-01-01 was a Thursday: +72 h puts Monday 00:00 at weekly phase 0


class Clock(NamedTuple):
    t0: float     # time of the series' first value (hours, or in steps: -length, or 0 for phase "start")
    step: float   # hours (or 1 step) between values



class Encoded(NamedTuple):
    x: np.ndarray      # (N, L, F) encoder inputs
    u: np.ndarray      # (N, H, F) decoder inputs
    base: np.ndarray   # (N, H) seasonal-naive base, normalised
    loc: np.ndarray    # (N,) level (log) or mean (standard)
    scale: np.ndarray  # (N,) 1 (log) or std (standard)


def clock(series, phase: str = "end") -> Clock:
    """Hours since the epoch of the first value and the step in hours. Without timestamps, steps:
    the first value sits at ``-length`` (``phase="end"``: the series' end is the origin, whatever was
    cut from its front) or at 0 (``phase="start"``, models saved before the phase counted from the end)."""
    stamps = getattr(series, "timestamps", None)
    if stamps is None or len(stamps) < 2:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
        n = len(np.asarray(getattr(series, "values", series)))
        return Clock(-float(n) if phase == "end" else 0.0, 1.0)
    t = np.asarray(stamps).astype("datetime64[s]").astype(np.int64).astype(np.float64) / 3600.0
    return Clock(float(t[0]) + MONDAY_OFFSET_H, float(np.median(np.diff(t))))


def infer_season(series: Sequence) -> int:
    """Steps per day for sub-daily series with timestamps (24 hourly), 7 for daily, else 1."""
    c = clock(series[0])
    if c.step == 1.0 and getattr(series[0], "timestamps", None) is None:
        return 1
    per_day = 24.0 / c.step
    if c.step < 24 and abs(per_day - round(per_day)) < 1e-6:
        return int(round(per_day))
    return 7 if abs(c.step - 24) < 1e-6 else 1


def choose_norm(values: Sequence[np.ndarray]) -> str:
    """``log`` when every value is positive, else ``standard``."""
    return "log" if all(np.all(v > 0) for v in values) else "standard"


def feature_size(periods: Sequence[float]) -> int:
    """Inputs per step: the value and a sine and cosine per period."""
    return 1 + 2 * len(periods)


CLIP = 20.0   # normalised inputs beyond +-CLIP (e^20 times the level, or 20 robust deviations) are clipped


def _normalise(x: np.ndarray, norm: str, sid: Sequence[str] | None,
               robust: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-window location and scale. ``robust`` (every model trained since the level became robust):
    the median, and for ``standard`` 1.4826 x the median absolute deviation (the standard deviation when
    that is 0), then inputs clipped to +-``CLIP``, so one absurd value cannot set a window's scale;
    else (older models) the mean and standard deviation."""
    centre = np.median if robust else np.mean
    if norm == "log":
        bad = np.flatnonzero((x <= 0).any(axis=1))
        if bad.size:
            name = sid[bad[0]] if sid is not None else bad[0]
            raise DataError(f"series '{name}' has values <= 0 in its input window, but this model was trained "
                            f"on positive data (log scale); retrain on data that includes such values")
        loc = centre(x, axis=1)
        xn = np.log(x / loc[:, None])
        return (np.clip(xn, -CLIP, CLIP) if robust else xn), loc, np.ones_like(loc)
    loc = centre(x, axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        if robust:
            scale = 1.4826 * np.median(np.abs(x - loc[:, None]), axis=1)
            spread = np.mean(np.abs(x - loc[:, None]), axis=1)
            scale = np.where(scale > 0, scale, spread)
        else:
            scale = x.std(axis=1)
    floor = np.maximum(np.abs(loc), 1.0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-8 * floor), scale, floor)
    xn = (x - loc[:, None]) / scale[:, None]
    return (np.clip(xn, -CLIP, CLIP) if robust else xn), loc, scale


def absurd_values(values: np.ndarray, factor: float = 1e3) -> np.ndarray:
    """Positions of values more than ``factor`` robust deviations (1.4826 MAD, or the mean absolute
    deviation when that is 0) from the median: a typing slip or a sensor fault, not a reading."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3:
        return np.zeros(0, dtype=np.int64)
    med = np.median(v)
    dev = np.abs(v - med)
    scale = 1.4826 * np.median(dev)
    if scale == 0:
        scale = np.mean(dev[np.isfinite(dev)]) if np.isfinite(dev).any() else 0.0
    if not scale > 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(dev > factor * scale)


def encode(spec: ForecastSpec, x: np.ndarray, clocks: Sequence[Clock], start: np.ndarray,
           ids: Sequence[str] | None = None, dtype=np.float32) -> Encoded:
    """Inputs for windows ``x (N, L)`` whose first value sits at position ``start`` of its series."""
    x = np.asarray(x, dtype=np.float64)
    N, L = x.shape
    H, m = spec.horizon, spec.season
    xn, loc, scale = _normalise(x, spec.norm, ids, spec.robust)
    if spec.base == "snaive":
        k = np.arange(H)
        cols = L - m + (k % m) if 1 < m <= L else np.full(H, L - 1)
        base = xn[:, cols]
    else:
        base = np.zeros((N, H))
    t0 = np.array([c.t0 for c in clocks])[:, None]
    step = np.array([c.step for c in clocks])[:, None]
    pos = np.asarray(start, dtype=np.float64)[:, None] + np.arange(L + H)
    tf = periodic_features(t0 + pos * step, spec.periods)  # (N, L+H, 2P)
    enc = np.concatenate([xn[..., None], tf[:, :L]], axis=-1).astype(dtype)
    dec = np.concatenate([base[..., None], tf[:, L:]], axis=-1).astype(dtype)
    return Encoded(enc, dec, base, loc, scale)


def targets(spec: ForecastSpec, e: Encoded, y: np.ndarray) -> np.ndarray:
    """The normalised correction the network learns: ``y' - b``."""
    y = np.asarray(y, dtype=np.float64)
    if spec.norm == "log":
        yn = np.log(np.maximum(y, 1e-12) / e.loc[:, None])
    else:
        yn = (y - e.loc[:, None]) / e.scale[:, None]
    return (yn - e.base).astype(e.x.dtype)


def decode(spec: ForecastSpec, e: Encoded, out: np.ndarray) -> np.ndarray:
    """Network outputs ``(N, H, Q)`` back to the data's scale, quantiles sorted (no crossing)."""
    yn = np.sort(np.asarray(out, dtype=np.float64), axis=-1) + e.base[..., None]
    if spec.norm == "log":
        return e.loc[:, None, None] * np.exp(np.clip(yn, -30, 30))
    return e.loc[:, None, None] + e.scale[:, None, None] * yn


def median_index(spec: ForecastSpec) -> int:
    """The quantile used as the point forecast: the one nearest 0.5."""
    q = np.asarray(spec.quantiles)
    return int(np.argmin(np.abs(q - 0.5)))
