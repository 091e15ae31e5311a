"""The executor interface (:mod:`rnnlab.train.executor`) that every backend implements."""
from __future__ import annotations

from typing import Any, Callable, Sequence

# set in a worker's environment before NumPy loads there: one BLAS / OpenMP thread per fit
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
              "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")

OnResult = Callable[[int, Any], None]


class WorkerLost(RuntimeError):
    """The result of a fit whose worker died twice (it was run once more after the first death)."""


class Executor:
    """Base class: ``with make_executor(...) as ex: results = ex.map(fn, args_list, on_result=...)``."""

    name = "serial"
    workers = 1

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def map(self, fn: Callable[..., Any], args: Sequence[tuple], *, on_result: OnResult | None = None) -> list[Any]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
