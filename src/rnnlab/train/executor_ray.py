"""The Ray backend of :mod:`rnnlab.train.executor`: each fit a Ray task (``--ray [ADDRESS]``).

Without an address, a local cluster of ``num_cpus`` CPUs (2 by default) is started for the job and
shut down after it; with one (``auto``, ``host:6379``, ``ray://host:10001``) the job joins that
cluster and leaves it running. Every task asks for one CPU and runs with one BLAS / OpenMP thread
(``runtime_env`` variables), in the driver's working directory when the worker's machine has it,
so relative paths given on the command line mean the same thing there as here.

Failures: an exception raised by a fit reaches the driver with its own type (Ray's wrapper is
taken off) and ends the map; a worker that dies (``WorkerCrashedError``, the node lost, Ray's
out-of-memory killer) is reported and its fit submitted once more (the tasks are submitted with
``max_retries=0`` and retried here, so that the retry is said out loud and happens once); a fit
whose worker dies again is a :class:`~rnnlab.train.executor.WorkerLost`. Ctrl-C cancels every task
of the job (``force=True``: their processes are ended) and raises
:class:`~rnnlab.train.signals.Interrupted`.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable

from ..errors import ConfigError
from .executor_base import THREAD_ENV, Executor, WorkerLost
from .signals import Interrupted


def _call(cwd: str, fn: Callable[..., Any], args: tuple) -> Any:
    """Runs on a Ray worker: in the driver's folder when this machine has it, one BLAS thread."""
    if cwd and os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)
    return fn(*args)


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'rnnlab[ray]' (or pip install ray)") from None
    return ray


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int = 2,
                 log: Callable[[str], None] = print) -> None:
        super().__init__(log)
        ray = require_ray()
        self.address = address
        self._owned = False
        env = {"env_vars": {k: "1" for k in THREAD_ENV}}
        if not ray.is_initialized():
            try:
                if address is None:
                    ray.init(num_cpus=num_cpus, runtime_env=env, include_dashboard=False,
                             logging_level=logging.ERROR, configure_logging=True)
                else:
                    ray.init(address=address, runtime_env=env, logging_level=logging.ERROR)
            except Exception as exc:  # no cluster at the address, a version mismatch, ...
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                raise ConfigError(f"--ray: cannot start or join {where} ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
            self._owned = True
        self.workers = int(ray.cluster_resources().get("CPU", num_cpus))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_call)

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
        return f"{where} ({self.workers} CPUs, one task per CPU, one BLAS thread each)"

    def map(self, fn, args, *, on_result=None):
        args = list(args)
        it = iter(args)
        results: dict[int, Any] = {}

        def record(i: int, value: Any) -> None:
            results[i] = value
            if on_result is not None:
                on_result(i, value)
        # every fit submitted at once (Ray queues them); the results in the order given
        self._drive(fn, lambda: next(it, None), None, record)
        return [results[i] for i in range(len(args))]

    def stream(self, fn, next_args, *, on_result=None):
        return self._drive(fn, next_args, self.workers, on_result)

    def _drive(self, fn, next_args, window: int | None, on_result) -> int:
        """Submit ``fn(*next_args())`` while fewer than ``window`` (None: no limit) fits are in flight; gather
        each as it ends (a dead worker's fit submitted once more, then a :class:`WorkerLost`)."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        cwd = os.getcwd()
        pending: dict[Any, tuple[int, tuple, int]] = {}      # ref -> (index, args, tries so far)
        count = 0

        def submit(i: int, a: tuple, tries: int) -> None:
            pending[self._remote.remote(cwd, fn, tuple(a))] = (i, a, tries)

        def fill() -> None:
            nonlocal count
            while window is None or len(pending) < window:
                a = next_args()
                if a is None:
                    return
                submit(count, a, 0)
                count += 1

        try:
            fill()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                i, a, tries = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except RayTaskError as exc:          # the fit itself raised: the job ends with that error
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else exc) from None
                except RayError as exc:              # the worker (or its node) died under the fit
                    what = type(exc).__name__
                    if tries == 0:
                        self.log(f"a Ray worker died running fit {i + 1} of the job ({what}); running it once more")
                        submit(i, a, 1)
                        continue
                    self.log(f"a Ray worker died again running fit {i + 1} of the job ({what}): the fit is lost")
                    value = WorkerLost(f"the Ray worker died twice running this fit ({what})")
                if on_result is not None:
                    on_result(i, value)
                fill()
        except KeyboardInterrupt as exc:
            self._cancel(pending)
            raise exc if isinstance(exc, Interrupted) else Interrupted(130) from None
        except BaseException:
            self._cancel(pending)
            raise
        return count

    @staticmethod
    def _cancel(pending: dict) -> None:
        import ray

        for ref in list(pending):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone  # noqa: BLE001
                pass
        pending.clear()

    def close(self) -> None:
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False
