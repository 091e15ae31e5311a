"""Robust statistics for the detectors: one extreme value must not blind a detector.

A mean and standard deviation taken over rows that hold one value of 1e6 put every ordinary
value at about 0 and make every later spike look small; so the detectors scale with the median
and the median absolute deviation (MAD) instead, which one value (or any minority of values)
cannot move far:

* :func:`center_scale`: the median and ``1.4826 * MAD`` (the standard deviation of a Gaussian);
  where more than half the values are equal (MAD 0, e.g. a square wave or a flat line) the mean
  absolute deviation from the median (times 1.2533, the Gaussian's ratio), and where all are
  equal ``max(|median|, 1)``;
* :func:`compress`: values beyond ``±limit`` scaled units grow only logarithmically (monotone
  and continuous), so a network's input and error stay finite and ordered;
* :func:`absurd_rows`: rows more than ``ABSURD`` scaled units from the median of the reference
  rows (e.g. 1e6 in a series of about 1): a warning names them, and the first stretch of them
  (:func:`range_exempt`) does not widen the range of the range alarms. Absurd values that come
  back after a gap are the stream's own behaviour (a server metric idling at 0.1 % that jumps to
  100 % every few hours): they widen the range like any value, so they raise one alarm, not one
  per jump (ec2_cpu_utilization_77c1ca of NAB: 496 such rows in 23 stretches, 14 false alarms).
"""
from __future__ import annotations

import numpy as np

ABSURD = 1e4      # scaled units (robust standard deviations) from the median: an absurd value
LIMIT = 20.0      # scaled inputs beyond ±LIMIT are compressed logarithmically
RAW_CAP = 1e4     # the raw measure of a row is at most this (a forecast error of 100 robust sd)


def center_scale(x: np.ndarray) -> tuple[float, float]:
    """``(median, robust standard deviation)`` of ``x``; the scale is always positive."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if len(x) == 0:
        return 0.0, 1.0
    med = float(np.median(x))
    dev = np.abs(x - med)
    scale = 1.4826 * float(np.median(dev))
    if not scale > 0:
        scale = 1.2533 * float(dev.mean())
    if not scale > 0:
        scale = max(abs(med), 1.0)
    return med, scale


def compress(z: np.ndarray, limit: float = LIMIT) -> np.ndarray:
    """``z`` inside ``±limit``, ``±(limit + log1p(|z| - limit))`` beyond: monotone, continuous."""
    z = np.asarray(z, dtype=np.float64)
    over = np.abs(z) > limit
    if not over.any():
        return z
    out = z.copy()
    out[over] = np.sign(z[over]) * (limit + np.log1p(np.abs(z[over]) - limit))
    return out


def absurd_rows(values: np.ndarray, reference: int) -> np.ndarray:
    """Rows more than ``ABSURD`` robust standard deviations from the median of the first
    ``reference`` rows (all rows when there are fewer); a boolean mask."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    med, scale = center_scale(v[:max(reference, 1)] if reference > 0 else v)
    return np.abs(v - med) > ABSURD * scale


def range_exempt(values: np.ndarray, reference: int, gap: int = 50) -> np.ndarray:
    """The absurd rows (:func:`absurd_rows`) of the first stretch only: up to the first gap of more
    than ``gap`` rows between absurd rows; a boolean mask for ``range_alarms(..., ignore=)``. One
    absurd value (or a burst of them) cannot widen the range and hide every later spike; absurd
    values that recur widen it (after raising their alarm), as every other value does."""
    absurd = absurd_rows(values, reference)
    rows = np.flatnonzero(absurd)
    if len(rows) > 1:
        breaks = np.flatnonzero(np.diff(rows) > gap)
        if len(breaks):
            absurd[rows[breaks[0] + 1]:] = False
    return absurd


def describe_rows(rows: np.ndarray, values: np.ndarray, most: int = 3) -> str:
    """``row 12 (1e+06), row 40 (-3e+07) and 2 more``: rows are 0-based data rows."""
    rows = [int(r) for r in rows]
    text = ", ".join(f"row {r} ({values[r]:.6g})" for r in rows[:most])
    return text + (f" and {len(rows) - most} more" if len(rows) > most else "")
