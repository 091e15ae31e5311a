"""Running a study's jobs: one after the other in this process (``jobs=1``), or in N worker
processes started with the 'spawn' context, each with one BLAS / OpenMP thread; a job that raises
is a failed record, and the jobs a dying worker took down are rerun one per fresh process."""
from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from dataclasses import asdict, replace
from typing import Any

from .plan import Job, Options, Study

# set in a worker's environment before NumPy loads there: one BLAS / OpenMP thread per job
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
              "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")



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
    """Entry point of a worker process: run one job with one BLAS thread, return its record and log."""
    lines: list[str] = []
    opts = Options(**fields, log=lines.append)
    study = _resolve(ref)
    with one_blas_thread():
        rec = run_job(study, job, opts)
    return rec, lines


@contextlib.contextmanager
def _thread_env() -> Any:
    """One BLAS / OpenMP thread in the environment that spawned workers inherit (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: "1" for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _header(study: Study, job: Job, budgets: tuple[str, ...], start: float) -> str:
    where = f" [{job.budget} budget]" if len(budgets) > 1 else ""
    return f"[{time.perf_counter() - start:6.0f}s] {study.name}: {job.cond.label}, seed {job.seed}{where}"


def run_jobs(study: Study, jobs: list[Job], opts: Options, budgets: tuple[str, ...],
              start: float) -> dict[tuple, dict]:
    log = opts.log
    done: dict[tuple, dict] = {}
    if opts.jobs <= 1 or len(jobs) <= 1:
        with one_blas_thread():
            for job in jobs:
                log(_header(study, job, budgets, start))
                rec = run_job(study, job, opts)
                if rec.get("failed"):
                    log(f"  FAILED: {rec['error']}")
                done[job.key] = rec
        return done
    ref = _study_ref(study)
    fields = {k: v for k, v in asdict(opts).items() if k != "log"}
    workers = min(opts.jobs, len(jobs))
    log(f"{len(jobs)} jobs in {workers} worker processes (one BLAS thread each)")
    with _thread_env():
        orphans = _pool_run(study, jobs, ref, fields, workers, opts, budgets, start, done)
        # A worker that died (killed, out of memory, a crash in native code) breaks the whole pool and
        # every job still in it. Rerun those one per fresh process, so only the culprit is lost.
        for job in orphans:
            _pool_run(study, [job], ref, fields, 1, opts, budgets, start, done)
    return done


def _pool_run(study: Study, jobs: list[Job], ref: Any, fields: dict, workers: int, opts: Options,
              budgets: tuple[str, ...], start: float, done: dict) -> list[Job]:
    """Run ``jobs`` in a pool of ``workers``; record results in ``done``; return the jobs a broken pool lost
    (none when the pool had one job: then its failure is recorded)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    log, orphans = opts.log, []
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_worker, ref, job, fields): job for job in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                rec, lines = fut.result()
            except BrokenProcessPool as exc:
                if len(jobs) > 1:
                    orphans.append(job)
                    continue
                rec, lines = _failure(RuntimeError(f"the worker process died ({exc})")), []
                rec.update(seed=job.seed, budget=job.budget, wall_s=math.nan)
            except Exception as exc:  # e.g. a record that could not be pickled back
                rec, lines = _failure(exc), []
                rec.update(seed=job.seed, budget=job.budget, wall_s=math.nan)
            log(_header(study, job, budgets, start) + (" (done)" if not rec.get("failed") else ""))
            for line in lines:
                log(line)
            if rec.get("failed"):
                log(f"  FAILED: {rec['error']}")
            done[job.key] = rec
    if orphans:
        log(f"a worker process died; rerunning the {len(orphans)} job(s) it took down, one per process")
    return sorted(orphans, key=lambda j: (j.budget, j.index, j.seed))
