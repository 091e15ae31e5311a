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

    def stream(self, fn: Callable[..., Any], next_args: Callable[[], tuple | None], *,
               on_result: OnResult | None = None) -> int:
        """Fits made one at a time as room frees up: keeps up to ``workers`` of them in flight, asking
        ``next_args()`` for the arguments of the next (``None``: none now; the stream ends when none is in
        flight and ``next_args()`` says none). ``on_result(i, result)`` (``i``: the i-th fit asked for) is
        called as each ends, before ``next_args()`` is asked again, so that the next fit can depend on the
        results so far (a sweep's sampler). Errors, Ctrl-C and dead workers as in :meth:`map`. Returns how
        many fits ran."""
        raise NotImplementedError(f"{self.name}: fits one at a time (stream) are not supported here")

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
