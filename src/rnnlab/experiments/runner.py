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

Budgets
-------
Every study can give each run the same number of optimizer steps
(``budget="steps"``: the fair comparison of what a cell learns per update) or
the same training time (``budget="time"``: what it learns on this machine in
a given time, which rewards cheap steps and depends on the machine's load).
``budget="both"`` (the default) runs both and writes the step-matched table
first and the time-matched one beside it. A study's ``run_one`` reads
``opts.budget`` (always "steps" or "time" there).

Parallel jobs
-------------
Conditions x seeds (x budgets) are independent jobs, handed to one executor
(:mod:`rnnlab.train.executor`). With ``jobs=1`` they run
one after the other in this process; with ``jobs=N`` in N worker processes
started with the 'spawn' context, whose environment sets one BLAS / OpenMP
thread (``OMP_NUM_THREADS`` and friends, set before NumPy loads in the
worker); with ``ray`` as Ray tasks (a local cluster of 2 CPUs, or a cluster's
address), one CPU and one BLAS thread each. Results are gathered in the serial order, so tables and JSON are the
same whatever N; step-budget runs are deterministic, so their metrics are
identical for any N. A job that raises is recorded as failed (its error in
the JSON and under the table) and the others carry on. A worker process that
dies breaks its pool: the jobs it took down are rerun one per fresh process,
so only the job that killed its process is lost (and reported); on Ray a job
whose worker died is run once more, likewise.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..cells import CELLS
from ..train.executor import THREAD_ENV  # noqa: F401 - its old place, for callers that read it here


@dataclass
class Options:
    quick: bool = False
    seeds: int | None = None          # None: 1 with quick, else the study's default
    out: str | None = None            # None: runs/experiments/<name>-<timestamp>
    minutes: float | None = None      # per-run training budget; None: the study's default
    data_dir: str | None = None
    cells: list[str] | None = None    # None: the study's default cells
    corpus: str | None = None         # charlm only: a dataset name or a text file/folder
    budget: str = "both"              # "steps", "time" or "both" (run_one sees "steps" or "time")
    steps: int | None = None          # per-run step budget for budget="steps"; None: the study's default
    jobs: int = 1                     # worker processes; 1 runs every job in this process
    groups: list[str] | None = None   # None: every group (e.g. adding's "T=150", digits' "permuted")
    rows: list[str] | None = None     # None: every row; else rows whose label contains one of these
    validation: bool = False          # score on a validation split of the training data, not the test split
    ray: str | None = None            # None: local (jobs); "local": a local Ray cluster; else a Ray address
    log: Callable[[str], None] = field(default=print, repr=False)


BUDGETS = ("steps", "time")
BUDGET_CHOICES = ("steps", "time", "both")
BUDGET_TITLES = {"steps": "Step-matched: every run gets the same number of optimizer steps",
                 "time": "Time-matched: every run gets the same training time"}


def budgets_of(opts: "Options") -> tuple[str, ...]:
    if opts.budget not in BUDGET_CHOICES:
        from ..errors import ConfigError
        raise ConfigError(f"unknown budget {opts.budget!r}; choose from {', '.join(BUDGET_CHOICES)}")
    return BUDGETS if opts.budget == "both" else (opts.budget,)


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


def no_notes(opts: "Options") -> str:
    return ""


class Study(NamedTuple):
    name: str
    title: str
    default_seeds: int
    conditions: Callable[[Options], list[Condition]]
    run_one: Callable[[Condition, int, Options], dict]
    columns: list[Column]
    curve_labels: tuple[str, str]                    # x and y axis names of each run's "curve"
    notes: Callable[[Options], str] = no_notes     # module-level functions only: workers unpickle the study
    log_y: bool = False
    y_limits: tuple[float, float] | None = None      # keeps one diverged run from flattening the others
    validation: bool = False                         # supports Options.validation (a held-out split)


def cell_available(name: str) -> bool:
    return name in CELLS


def select(conds: list[Condition], wanted: list[str] | None, log: Callable[[str], None],
           groups: list[str] | None = None, rows: list[str] | None = None) -> list[Condition]:
    """Keep the conditions whose cell (group, label) is wanted and whose cell is registered; say why
    others are skipped."""
    if rows:
        for text in rows:
            if not any(text in c.label for c in conds):
                log(f"note: no row of this study has '{text}' in its label")
        conds = [c for c in conds if any(text in c.label for text in rows)]
    if groups:
        offered = list(dict.fromkeys(c.group for c in conds))
        for name in groups:
            if name not in offered:
                log(f"note: this study has no group '{name}' (it offers {', '.join(offered)})")
        conds = [c for c in conds if c.group in groups]
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
        v = next((x for x in values if x is not None), None)
        return "—" if v is None else (col.fmt.format(v) if isinstance(v, (int, float)) else str(v))
    return fmt_stat(values, col.fmt)


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


class Job(NamedTuple):
    budget: str              # "steps" or "time"
    index: int               # the condition's position in the study's list
    cond: Condition
    seed: int

    @property
    def key(self) -> tuple[str, int, int]:
        return self.budget, self.index, self.seed


def plan_jobs(conds: list[Condition], seeds: int, budgets: tuple[str, ...]) -> list[Job]:
    """Every (budget, condition, seed), in the order the serial runner takes them."""
    return [Job(b, i, c, s) for b in budgets for i, c in enumerate(conds) for s in range(seeds)]


def _study_ref(study: Study) -> Any:
    """What a worker needs to find the study: its registered name, else the (picklable) study itself."""
    from . import STUDIES, get_study

    if study.name in STUDIES:
        with contextlib.suppress(Exception):
            if get_study(study.name) is study:
                return study.name
    return study


def _resolve(ref: Any) -> Study:
    if isinstance(ref, str):
        from . import get_study
        return get_study(ref)
    return ref


def _failure(exc: BaseException) -> dict:
    return {"failed": True, "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def run_job(study: Study, job: Job, opts: Options) -> dict:
    """One run; an exception becomes a failed record instead of ending the study."""
    t0 = time.perf_counter()
    try:
        rec = study.run_one(job.cond, job.seed, replace(opts, budget=job.budget))
    except Exception as exc:  # noqa: BLE001 - reported in the table and JSON, never lost
        rec = _failure(exc)
    rec["wall_s"] = time.perf_counter() - t0
    rec["seed"] = job.seed
    rec["budget"] = job.budget
    return rec


def _worker(ref: Any, job: Job, fields: dict) -> tuple[dict, list[str]]:
    """Entry point of a worker process (or Ray task): run one job with one BLAS thread, return its record and log."""
    lines: list[str] = []
    opts = Options(**fields, log=lines.append)
    study = _resolve(ref)
    with one_blas_thread():
        rec = run_job(study, job, opts)
    return rec, lines


def _header(study: Study, job: Job, budgets: tuple[str, ...], start: float) -> str:
    where = f" [{job.budget} budget]" if len(budgets) > 1 else ""
    return f"[{time.perf_counter() - start:6.0f}s] {study.name}: {job.cond.label}, seed {job.seed}{where}"


def _run_jobs(study: Study, jobs: list[Job], opts: Options, budgets: tuple[str, ...],
              start: float) -> dict[tuple, dict]:
    """Every job through one executor (:mod:`rnnlab.train.executor`): this process, a pool, or Ray."""
    from ..train.executor import Serial, WorkerLost, make_executor

    log = opts.log
    done: dict[tuple, dict] = {}
    with make_executor(opts.jobs if len(jobs) > 1 else 1, opts.ray, log=log) as ex:
        if isinstance(ex, Serial):
            def one(job: Job) -> tuple[dict, list[str]]:
                log(_header(study, job, budgets, start))
                with one_blas_thread():
                    return run_job(study, job, opts), []
            fn, args = one, [(job,) for job in jobs]
        else:
            ref = _study_ref(study)
            fields = {k: v for k, v in asdict(opts).items() if k != "log"}
            log(f"{len(jobs)} jobs on {ex.describe()}")
            fn, args = _worker, [(ref, job, fields) for job in jobs]

        def finished(i: int, value: Any) -> None:
            job = jobs[i]
            if isinstance(value, WorkerLost):
                rec, lines = _failure(RuntimeError(f"the worker process died ({value})")), []
                rec.update(seed=job.seed, budget=job.budget, wall_s=math.nan)
            else:
                rec, lines = value
            if not isinstance(ex, Serial):
                log(_header(study, job, budgets, start) + (" (done)" if not rec.get("failed") else ""))
            for line in lines:
                log(line)
            if rec.get("failed"):
                log(f"  FAILED: {rec['error']}")
            done[job.key] = rec

        ex.map(fn, args, on_result=finished)
    return done


def failure_notes(rows: list[tuple[str, Condition, list[dict]]]) -> str:
    lines = [f"* {cond.label}, seed {rec['seed']} ({budget} budget): {rec['error']}"
             for budget, cond, records in rows for rec in records if rec.get("failed")]
    return ("**Failed jobs** (left out of the means; the error is in results.json):\n" + "\n".join(lines)) \
        if lines else ""


def run_study(study: Study, opts: Options) -> dict:
    """Run every available condition over the seeds and budgets; write and return the results."""
    log = opts.log
    if opts.validation and not study.validation:
        from ..errors import ConfigError
        raise ConfigError(f"--validation: the {study.name} study has no validation split to score on "
                          "(digits has)")
    budgets = budgets_of(opts)
    seeds = opts.seeds or (1 if opts.quick else study.default_seeds)
    out = Path(opts.out) if opts.out else Path("runs") / "experiments" / f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    opts = replace(opts, out=str(out))  # studies that write per-run folders put them here
    conds = select(study.conditions(opts), opts.cells, log, opts.groups, opts.rows)
    if not conds:
        from ..errors import ConfigError
        raise ConfigError(f"experiment {study.name}: no condition left to run (cells: {', '.join(opts.cells or [])}"
                          + (f"; groups: {', '.join(opts.groups)}" if opts.groups else "") + ")")
    start = time.perf_counter()
    jobs = plan_jobs(conds, seeds, budgets)
    done = _run_jobs(study, jobs, opts, budgets, start)
    rows: list[tuple[str, Condition, list[dict]]] = []
    for budget in budgets:
        for i, cond in enumerate(conds):
            rows.append((budget, cond, [done[j.key] for j in jobs if j.budget == budget and j.index == i]))
    tables = {b: markdown_table(study, [(c, r) for bb, c, r in rows if bb == b]) for b in budgets}
    if len(budgets) == 1:
        table = tables[budgets[0]]
    else:
        table = "\n\n".join(f"#### {BUDGET_TITLES[b]}\n\n{tables[b]}" for b in budgets)
    notes = study.notes(opts)
    failed = failure_notes(rows)
    plots = []
    for b in budgets:
        plots += save_plots(study, [(c, r) for bb, c, r in rows if bb == b], out,
                            suffix=f"-{b}" if len(budgets) > 1 else "",
                            subtitle=f" ({b}-matched)" if len(budgets) > 1 else "")
    total = time.perf_counter() - start
    result = {"study": study.name, "title": study.title, "seeds": seeds, "total_s": total,
              "budgets": list(budgets), "jobs": opts.jobs,
              "options": {k: v for k, v in asdict(opts).items() if k != "log"},
              "cpu_count": os.cpu_count(), "table": table, "tables": tables, "notes": notes, "plots": plots,
              "failed": sum(1 for _, _, r in rows for rec in r if rec.get("failed")),
              "rows": [{"label": c.label, "cell": c.cell, "group": c.group, "budget": b, "settings": c.settings,
                        "runs": r} for b, c, r in rows]}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=_json_default))
    extra = f"\n\n{failed}" if failed else ""
    (out / "table.md").write_text(f"### {study.title}\n\n{table}{extra}\n\n{notes}\n")
    log(f"\n### {study.title} ({seeds} seed{'s' if seeds > 1 else ''}, {total / 60:.1f} min)\n\n{table}\n")
    if failed:
        log(failed + "\n")
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
