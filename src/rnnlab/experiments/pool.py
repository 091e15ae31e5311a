"""Running a study's jobs through one executor (:mod:`rnnlab.train.executor`): one after the other in
this process (``jobs=1``), in N worker processes started with the 'spawn' context, or as Ray tasks
(``ray``), each with one BLAS / OpenMP thread; a job that raises is a failed record, and a job whose
worker died is run once more (a dying pool worker's other jobs too, one per fresh process)."""
from __future__ import annotations

import contextlib
import math
import time
import traceback
from dataclasses import asdict, replace
from typing import Any

from .plan import Job, Options, Study

from ..train.executor import THREAD_ENV  # noqa: F401 - its old place, for callers that read it here


def one_blas_thread() -> Any:
    """Limit BLAS to one thread while a study runs, if threadpoolctl is installed (scikit-learn brings it).

    These models multiply small matrices (B x H by H x 4H) thousands of times;
    extra BLAS threads only add hand-off overhead, and on a busy machine their
    spin-waiting made an LSTM step ~9x slower in a measurement here
    (:mod:`rnnlab.blas.threads`).
    """
    from ..blas.threads import limit
    from ..errors import ConfigError

    try:
        return limit(1)
    except ConfigError:          # no threadpoolctl: the library's own count
        return contextlib.nullcontext()


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


def run_jobs(study: Study, jobs: list[Job], opts: Options, budgets: tuple[str, ...],
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
