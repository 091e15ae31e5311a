"""A study's table cells: ``mean ± std`` over seeds (sample std, n-1), ``(k/n)`` when only k of the
n seeds gave a value, ``k/n`` counts, and constants."""
from __future__ import annotations

import math
from typing import Any

from .plan import Column


def fmt_stat(values: list[Any], fmt: str) -> str:
    good = [float(v) for v in values if v is not None and not isinstance(v, bool) and math.isfinite(float(v))]
    if not good:
        return "—"
    mean = sum(good) / len(good)
    text = fmt.format(mean)
    if len(good) > 1:
        std = math.sqrt(sum((v - mean) ** 2 for v in good) / (len(good) - 1))
        text += " ± " + fmt.format(std)
    if len(good) < len(values):
        text += f" ({len(good)}/{len(values)})"
    return text


def cell_text(col: Column, records: list[dict]) -> str:
    values = [r.get(col.key) for r in records]
    if col.kind == "count":
        return f"{sum(bool(v) for v in values)}/{len(values)}"
    if col.kind == "const":
        v = next((x for x in values if x is not None), None)
        return "—" if v is None else (col.fmt.format(v) if isinstance(v, (int, float)) else str(v))
    return fmt_stat(values, col.fmt)
