"""Run a study: every condition over several seeds, then a table, plots and a JSON record.

A *study* (see :mod:`rnnlab.experiments`) lists its conditions (table rows)
and knows how to run one of them for one seed, returning a flat dict of
metrics plus an optional learning ``curve``. This module does the rest:

* skips conditions whose cell is not in this build (with a printed note),
* loops over seeds and times every run,
* aggregates each column over seeds as ``mean ± std`` (sample std, n-1) and
  appends ``(k/n)`` when only k of the n seeds produced a value (e.g. a
  "steps to threshold" that some seeds never reached),
* writes ``results.json`` (options, every run, the table), ``table.md`` and
  one PNG per group of conditions (matplotlib's Agg backend, if installed).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..cells import CELLS


@dataclass
class Options:
    quick: bool = False
    seeds: int | None = None          # None: 1 with quick, else the study's default
    out: str | None = None            # None: runs/experiments/<name>-<timestamp>
    minutes: float | None = None      # per-run training budget; None: the study's default
    data_dir: str | None = None
    cells: list[str] | None = None    # None: the study's default cells
    corpus: str | None = None         # charlm only: a dataset name or a text file/folder
    log: Callable[[str], None] = field(default=print, repr=False)


class Condition(NamedTuple):
    label: str               # the row's name in the table
    cell: str                # registry name; rows whose cell is missing are skipped
    group: str               # rows of one group share a plot (e.g. "T=200")
    settings: dict           # everything the study needs to run it


class Column(NamedTuple):
    header: str
    key: str                 # metric key in a run's record
    fmt: str = "{:.3f}"
    kind: str = "stat"       # "stat": mean ± std; "count": k/n true; "const": from the condition's first run


class Study(NamedTuple):
    name: str
    title: str
    default_seeds: int
    conditions: Callable[[Options], list[Condition]]
    run_one: Callable[[Condition, int, Options], dict]
    columns: list[Column]
    curve_labels: tuple[str, str]                    # x and y axis names of each run's "curve"
    notes: Callable[[Options], str] = lambda opts: ""
    log_y: bool = False
    y_limits: tuple[float, float] | None = None      # keeps one diverged run from flattening the others


def cell_available(name: str) -> bool:
    return name in CELLS


def select(conds: list[Condition], wanted: list[str] | None, log: Callable[[str], None]) -> list[Condition]:
    """Keep the conditions whose cell is wanted and registered; say why others are skipped."""
    if wanted:
        offered = {c.cell for c in conds}
        for name in wanted:
            if name not in offered:
                log(f"note: this study has no rows for cell '{name}' (it offers {', '.join(sorted(offered))})")
        conds = [c for c in conds if c.cell in wanted]
    kept, missing = [], []
    for c in conds:
        if cell_available(c.cell):
            kept.append(c)
        elif c.cell not in missing:
            missing.append(c.cell)
    for name in missing:
        log(f"note: cell '{name}' not available in this build; skipping its rows")
    return kept


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
        v = values[0] if values else None
        return "—" if v is None else (col.fmt.format(v) if isinstance(v, (int, float)) else str(v))
    return fmt_stat(values, col.fmt)


def markdown_table(study: Study, rows: list[tuple[Condition, list[dict]]]) -> str:
    headers = ["condition"] + [c.header for c in study.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for cond, records in rows:
        lines.append("| " + " | ".join([cond.label] + [cell_text(c, records) for c in study.columns]) + " |")
    return "\n".join(lines)


def save_plots(study: Study, rows: list[tuple[Condition, list[dict]]], out: Path) -> list[str]:
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
        ax.set_title(f"{study.title}: {group}")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        name = f"{study.name}-{_slug(group)}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    return files


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower() or "all"


def one_blas_thread() -> Any:
    """Limit BLAS to one thread while a study runs, if threadpoolctl is installed (scikit-learn brings it).

    These models multiply small matrices (B x H by H x 4H) thousands of times;
    extra BLAS threads only add hand-off overhead, and on a busy machine their
    spin-waiting made an LSTM step ~9x slower in a measurement here.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _run_conditions(study: Study, conds: list[Condition], seeds: int, opts: Options,
                    rows: list[tuple[Condition, list[dict]]], start: float) -> None:
    for cond in conds:
        records = []
        for seed in range(seeds):
            opts.log(f"[{time.perf_counter() - start:6.0f}s] {study.name}: {cond.label}, seed {seed}")
            t0 = time.perf_counter()
            rec = study.run_one(cond, seed, opts)
            rec["wall_s"] = time.perf_counter() - t0
            rec["seed"] = seed
            records.append(rec)
        rows.append((cond, records))


def run_study(study: Study, opts: Options) -> dict:
    """Run every available condition over the seeds; write and return the results."""
    log = opts.log
    seeds = opts.seeds or (1 if opts.quick else study.default_seeds)
    out = Path(opts.out) if opts.out else Path("runs") / "experiments" / f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    opts = replace(opts, out=str(out))  # studies that write per-run folders put them here
    conds = select(study.conditions(opts), opts.cells, log)
    if not conds:
        from ..errors import ConfigError
        raise ConfigError(f"experiment {study.name}: no condition left to run (cells: {', '.join(opts.cells or [])})")
    start = time.perf_counter()
    rows: list[tuple[Condition, list[dict]]] = []
    with one_blas_thread():
        _run_conditions(study, conds, seeds, opts, rows, start)
    table = markdown_table(study, rows)
    notes = study.notes(opts)
    plots = save_plots(study, rows, out)
    total = time.perf_counter() - start
    result = {"study": study.name, "title": study.title, "seeds": seeds, "total_s": total,
              "options": {k: v for k, v in asdict(opts).items() if k != "log"},
              "cpu_count": os.cpu_count(), "table": table, "notes": notes, "plots": plots,
              "rows": [{"label": c.label, "cell": c.cell, "group": c.group, "settings": c.settings, "runs": r}
                       for c, r in rows]}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=_json_default))
    (out / "table.md").write_text(f"### {study.title}\n\n{table}\n\n{notes}\n")
    log(f"\n### {study.title} ({seeds} seed{'s' if seeds > 1 else ''}, {total / 60:.1f} min)\n\n{table}\n")
    if notes:
        log(notes + "\n")
    log(f"results: {out / 'results.json'}; table: {out / 'table.md'}"
        + (f"; plots: {', '.join(str(out / p) for p in plots)}" if plots else " (no plots: matplotlib missing)"))
    result["out"] = str(out)
    return result


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
