"""A study's outputs: the markdown table, one PNG per group of conditions (matplotlib's Agg
backend, if installed), the notes on failed jobs, and the JSON encoding of NumPy values."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .plan import Condition, Study
from .stats import cell_text


def markdown_table(study: Study, rows: list[tuple[Condition, list[dict]]]) -> str:
    headers = ["condition"] + [c.header for c in study.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for cond, records in rows:
        lines.append("| " + " | ".join([cond.label] + [cell_text(c, records) for c in study.columns]) + " |")
    return "\n".join(lines)


def save_plots(study: Study, rows: list[tuple[Condition, list[dict]]], out: Path, suffix: str = "",
               subtitle: str = "") -> list[str]:
    """One PNG per group: every seed's curve, one colour per condition. Returns the file names."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    files = []
    groups = list(dict.fromkeys(cond.group for cond, _ in rows))
    for group in groups:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for k, (cond, records) in enumerate(r for r in rows if r[0].group == group):
            colour = f"C{k % 10}"
            for j, rec in enumerate(records):
                curve = rec.get("curve") or []
                if curve:
                    xs, ys = zip(*curve)
                    ax.plot(xs, ys, color=colour, alpha=0.8, lw=1.2, label=cond.label if j == 0 else None)
        ax.set_xlabel(study.curve_labels[0])
        ax.set_ylabel(study.curve_labels[1])
        if study.log_y:
            ax.set_yscale("log")
        if study.y_limits:
            ax.set_ylim(*study.y_limits)
        ax.set_title(f"{study.title}: {group}{subtitle}")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        name = f"{study.name}-{_slug(group)}{suffix}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    return files


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower() or "all"


def failure_notes(rows: list[tuple[str, Condition, list[dict]]]) -> str:
    lines = [f"* {cond.label}, seed {rec['seed']} ({budget} budget): {rec['error']}"
             for budget, cond, records in rows for rec in records if rec.get("failed")]
    return ("**Failed jobs** (left out of the means; the error is in results.json):\n" + "\n".join(lines)) \
        if lines else ""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
