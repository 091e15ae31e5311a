"""Where a job's independent fits run: in this process, in a local process pool, or on Ray.

A job made of many independent fits (a study's conditions x seeds, ``detect nab``'s files x seeds)
hands them to one :class:`Executor`: ``executor.map(fn, [args, ...], on_result=...)`` calls
``fn(*args)`` for each, wherever the backend runs it, calls ``on_result(i, result)`` in this
process as each one finishes (in any order), and returns the results in the order given, so
that what the job writes does not depend on the backend or the number of workers. Each fit is
seeded by its own arguments, never by where or when it runs, so the results are identical.

* :class:`Serial` (``jobs=1``): one after the other in this process.
* :class:`LocalPool` (``jobs=N``): N worker processes ('spawn'), one BLAS / OpenMP thread each.
* :class:`~rnnlab.train.executor_ray.RayExecutor` (``--ray [ADDRESS]``): tasks on a Ray cluster, a
  local one with 2 CPUs by default; the optional extra ``rnnlab[ray]``.

The same rules hold for every backend:

* an exception raised by ``fn`` (a :class:`~rnnlab.train.signals.Interrupted` too) ends the whole
  map: the fits not yet started are cancelled and the exception is raised here, with its own type
  (callers that want to go on catch inside ``fn``, as a study's ``run_job`` does);
* Ctrl-C stops the whole job: local workers get the signal too and stop their training loops at a
  step boundary; Ray's tasks are cancelled; :class:`Interrupted` is raised here;
* a worker that dies (killed, out of memory, a crash in native code) is reported through ``log``
  and each fit it took down is run once more; a fit whose worker dies again is lost, and its
  result is a :class:`WorkerLost` (an exception instance, returned, not raised) for the caller to
  report.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Any, Callable, Iterator

from .executor_base import THREAD_ENV, Executor, OnResult, WorkerLost
from .signals import Interrupted


class Serial(Executor):
    """Every fit in this process, in the order given."""

    def map(self, fn, args, *, on_result=None):
        results = []
        for i, a in enumerate(args):
            results.append(fn(*a))
            if on_result is not None:
                on_result(i, results[-1])
        return results

    def stream(self, fn, next_args, *, on_result=None):
        n = 0
        while (a := next_args()) is not None:
            value = fn(*a)
            if on_result is not None:
                on_result(n, value)
            n += 1
        return n


@contextlib.contextmanager
def thread_env() -> Iterator[None]:
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


class LocalPool(Executor):
    """``workers`` spawned processes on this machine, one BLAS thread each."""

    name = "local pool"

    def __init__(self, workers: int, log: Callable[[str], None] = print) -> None:
        super().__init__(log)
        self.workers = max(int(workers), 1)

    def describe(self) -> str:
        return f"{self.workers} worker processes (one BLAS thread each)"

    def map(self, fn, args, *, on_result=None):
        results: dict[int, Any] = {}
        with thread_env():
            lost = self._run(fn, list(enumerate(args)), min(self.workers, len(args)), results, on_result)
            if lost:
                # A worker that died breaks the whole pool and every fit still in it: run each of those
                # once more, one per fresh process, so that only a fit that kills its process again is lost.
                self.log(f"a worker process died; running the {len(lost)} fit(s) it took down once more, one per "
                         "process")
                for item in lost:
                    self._run(fn, [item], 1, results, on_result, last_try=True)
        return [results[i] for i in range(len(args))]

    def _run(self, fn, items, workers, results, on_result, last_try=False) -> list[tuple[int, tuple]]:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        lost = []
        pool = ProcessPoolExecutor(max_workers=max(workers, 1), mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(fn, *a): (i, a) for i, a in items}
            for fut in as_completed(futures):
                i, a = futures[fut]
                try:
                    value = fut.result()
                except BrokenProcessPool as exc:
                    if not last_try:
                        lost.append((i, a))
                        continue
                    value = WorkerLost(f"the worker process died twice running this fit ({exc})")
                    self.log(f"a worker process died again: fit {i + 1} of the job is lost")
                results[i] = value
                if on_result is not None:
                    on_result(i, value)
        except KeyboardInterrupt as exc:
            _stop_pool(pool, futures)
            raise exc if isinstance(exc, Interrupted) else Interrupted(130) from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return sorted(lost)


def _stop_pool(pool: Any, futures: dict, grace_s: float = 5.0) -> None:
    """Ctrl-C: the workers got the signal too, and their running fits stop at a step boundary (saving what
    they save); give them ``grace_s`` to do so, then end the workers, so that a fit already queued for a
    worker (the pool queues one ahead) is not started after the signal and run to its end."""
    from concurrent.futures import wait

    for fut in futures:
        fut.cancel()
    wait([f for f in futures if not f.cancelled()], timeout=grace_s)
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def make_executor(jobs: int = 1, ray: str | bool | None = None, *, log: Callable[[str], None] = print,
                  ray_cpus: int = 2) -> Executor:
    """``ray`` None/False: the local backends (``jobs`` 1: this process; more: a pool). ``ray`` True or
    ``"local"``: a local Ray cluster of ``ray_cpus`` CPUs; an address (``"auto"``, ``"ray://host:10001"``,
    ``"host:6379"``): that cluster."""
    if ray:
        from .executor_ray import RayExecutor

        return RayExecutor(None if ray is True or ray == "local" else str(ray), num_cpus=ray_cpus, log=log)
    return LocalPool(jobs, log=log) if jobs > 1 else Serial(log=log)


__all__ = ["THREAD_ENV", "Executor", "LocalPool", "OnResult", "Serial", "WorkerLost", "make_executor", "thread_env"]
