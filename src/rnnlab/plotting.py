"""Training curves from a run's ``metrics.jsonl`` (matplotlib, an optional extra: ``pip install -e '.[plot]'``).

The first panel shows train and validation bits per character against the
step, with guard events (skipped or backed-off steps) as red marks along the
bottom. Further panels show the gradient norm, the learning rate when it
changes, and any other numeric keys the trainer logged (diagnostics such as
per-layer hidden-state norms), one panel per family of keys: ``hidden_norm/l0``
and ``hidden_norm/l1`` share a panel, as do the entries of a logged list or
dict (``{"hidden_norm": [..per layer..]}``).
"""
from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError, DataError

# keys that are bookkeeping, or drawn in fixed panels
_SKIP = {"step", "split", "time", "elapsed", "loss", "bpc", "chars_per_s", "rate", "event", "reason", "epoch", "final"}
_LAYER_SUFFIX = re.compile(r"([._/\[]?(l|layer)?\d+\]?)$")
MAX_EXTRA_PANELS = 6
_LABELS = {"lr": "learning rate", "grad_norm": "gradient norm"}


def require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("matplotlib is not installed; `pip install matplotlib` (or the 'plot' extra: "
                          "pip install -e '.[plot]' in an rnnlab checkout, pip install 'rnnlab[plot]' "
                          "otherwise) to plot runs") from None
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) record: ``{"a": {"b": [1, 2]}} -> {"a/b[0]": 1, "a/b[1]": 2}``."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, (list, tuple)):
            out.update(flatten({f"[{i}]": v for i, v in enumerate(value)}, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def family(key: str) -> str:
    """The panel a key belongs to: its first path part, without a trailing layer index."""
    head = key.split("/")[0].split("[")[0]
    return _LAYER_SUFFIX.sub("", head) or head


def _series(rows: Iterable[dict[str, Any]], split: str, key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        if r.get("split") == split and isinstance(r.get(key), (int, float)) and math.isfinite(r[key]):
            xs.append(r["step"])
            ys.append(r[key])
    return xs, ys


def extra_panels(rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list, list]]]:
    """``{panel title: {series label: (steps, values)}}`` for everything beyond bits/char."""
    panels: dict[str, dict[str, tuple[list, list]]] = defaultdict(dict)
    for r in rows:
        if r.get("split") in ("guard", None) or "step" not in r:
            continue
        flat = flatten({k: v for k, v in r.items() if k not in _SKIP})
        for key, value in flat.items():
            if not math.isfinite(value):
                continue
            label = key if r.get("split") == "train" else f"{key} ({r.get('split')})"
            xs, ys = panels[family(key)].setdefault(label, ([], []))
            xs.append(r["step"])
            ys.append(value)
    lr = panels.get("lr")
    if lr and all(len(set(ys)) <= 1 for _, ys in lr.values()):
        del panels["lr"]  # a constant learning rate says nothing
    ordered = sorted(panels, key=lambda name: (name != "grad_norm", name != "lr", name))
    return {name: panels[name] for name in ordered[:MAX_EXTRA_PANELS]}


def plot_metrics(rows: list[dict[str, Any]], out: str | os.PathLike, title: str = "") -> Path:
    """Draw the curves of ``rows`` (metrics records) into the image file ``out``."""
    plt = require_matplotlib()
    if not any(r.get("split") in ("train", "val") for r in rows):
        raise DataError("no training or validation metrics to plot yet")
    extras = extra_panels(rows)
    n = 1 + len(extras)
    fig, axes = plt.subplots(n, 1, figsize=(9, 3.6 + 2.4 * (n - 1)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [1.6] + [1] * (n - 1)})
    axes = axes[:, 0]
    _bpc_panel(axes[0], rows)
    for ax, (name, series) in zip(axes[1:], extras.items()):
        for label, (xs, ys) in series.items():
            ax.plot(xs, ys, lw=1, label=label, marker="." if len(xs) < 30 else None)
        if name == "grad_norm" or _spans_decades(series):
            ax.set_yscale("log")
        ax.set_ylabel(_LABELS.get(name, name.replace("_", " ")))
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7, ncol=min(len(series), 4))
    axes[-1].set_xlabel("step")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _bpc_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    """Train and validation bits/char (char-LM runs), or the loss for every other task."""
    key = "bpc" if any("bpc" in r for r in rows) else "loss"
    tx, ty = _series(rows, "train", key)
    vx, vy = _series(rows, "val", key)
    if tx:
        ax.plot(tx, ty, lw=1, color="tab:blue", alpha=0.8, label="train")
    if vx:
        ax.plot(vx, vy, lw=1.5, color="tab:orange", marker="o", ms=4, label="validation")
        best = min(range(len(vy)), key=vy.__getitem__)
        ax.annotate(f"best {vy[best]:.3f}", (vx[best], vy[best]), textcoords="offset points",
                    xytext=(-4, 8), ha="right", fontsize=8, color="tab:orange")
    guards = [r for r in rows if r.get("split") == "guard"]
    if guards:
        for r in guards[:100]:
            ax.axvline(r["step"], color="red", alpha=0.15, lw=1)
        ax.plot([r["step"] for r in guards], [0.02] * len(guards), "x", color="red", ms=7,
                transform=ax.get_xaxis_transform(), label=f"guard events ({len(guards)})")
    ax.set_ylabel("bits per character" if key == "bpc" else "loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _spans_decades(series: dict[str, tuple[list, list]]) -> bool:
    values = [v for _, ys in series.values() for v in ys]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100
