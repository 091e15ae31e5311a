"""Run a study: every condition over several seeds, then a table, plots and a JSON record.

The pieces: :mod:`.plan` (options, conditions, columns, budgets, jobs), :mod:`.pool` (running the
jobs, in this process or in workers), :mod:`.stats` (mean ± std cells), :mod:`.report` (table,
plots, JSON); this module ties them together in :func:`run_study`, and its old names still
import from here.

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

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from .plan import (BUDGET_CHOICES, BUDGET_TITLES, BUDGETS, Column, Condition, Job, Options, Study, budgets_of,
                   cell_available, no_notes, plan_jobs, select)
from .pool import THREAD_ENV, one_blas_thread, run_job, run_jobs
from .report import _json_default, failure_notes, markdown_table, save_plots
from .stats import cell_text, fmt_stat

__all__ = ["BUDGETS", "BUDGET_CHOICES", "BUDGET_TITLES", "THREAD_ENV", "Column", "Condition", "Job", "Options",
           "Study", "budgets_of", "cell_available", "cell_text", "failure_notes", "fmt_stat", "markdown_table",
           "no_notes", "one_blas_thread", "plan_jobs", "run_job", "run_jobs", "run_study", "save_plots", "select"]


def _check_out(out: Path, force: bool) -> None:
    """Never write a study's files among a training run's, nor over an earlier study's results unasked."""
    from ..errors import ConfigError
    from ..train.runs import refuse_run_folder

    refuse_run_folder(out, "--out")
    if (out / "results.json").exists() and not force:
        raise ConfigError(f"--out {out} already holds a study's results (results.json); choose a new --out, "
                          "or pass --force to replace them")


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
    _check_out(out, opts.force)
    study.check(opts)
    out.mkdir(parents=True, exist_ok=True)
    opts = replace(opts, out=str(out))  # studies that write per-run folders put them here
    conds = select(study.conditions(opts), opts.cells, log, opts.groups, opts.rows)
    if not conds:
        from ..errors import ConfigError
        raise ConfigError(f"experiment {study.name}: no condition left to run (cells: {', '.join(opts.cells or [])}"
                          + (f"; groups: {', '.join(opts.groups)}" if opts.groups else "") + ")")
    start = time.perf_counter()
    jobs = plan_jobs(conds, seeds, budgets)
    done = run_jobs(study, jobs, opts, budgets, start)
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
