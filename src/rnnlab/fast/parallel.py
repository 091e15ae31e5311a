"""Batch-parallel time loop: the rows of a batch split over threads, BLAS single-threaded.

Inside the time loop the rows of a batch never interact: row b of h_t depends
only on row b of h_{t-1} and x_t. So the B rows can be cut into P blocks that
run the fused kernel side by side on P threads, each with its own small GEMMs
and element-wise work (NumPy releases the GIL in both). Two things make this
faster on a small CPU than one loop with a multi-threaded BLAS:

* the element-wise gate math, a third or more of a step, runs on every core
  instead of one;
* a multi-threaded BLAS has to wake and synchronise its threads for every
  small per-step GEMM (B x H times H x 4H) — twice per step, T steps per
  sequence — and collapses when the machine is busy; single-threaded GEMMs on
  independent threads never wait for each other.

BLAS is set to one thread while the blocks run (through threadpoolctl, when
installed) and restored afterwards, so the large products outside the loop
still use every core.

Measured on this 2-core machine (LSTM H=256, B=T=64, training step): quiet,
one loop with 2-thread BLAS does 22.6K chars/s and the split loop 15.6K (the
threads contend for the GIL between NumPy calls); with another job running,
the 2-thread BLAS loop collapses (a layer's step 720 ms) while the split loop
holds (150 ms). So the split is opt-in: ``RNNLAB_THREADS=2`` (or
:func:`set_threads`) on a shared or busy machine; by default, and without
threadpoolctl, everything runs in the calling thread.
Results are deterministic: each block's arithmetic is fixed, and per-block
weight gradients are summed in block order.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

MIN_ROWS = 8  # below this per thread, the GEMMs get too thin to gain anything

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_blas: Any = None
_blas_probed = False
_threads_override: int | None = None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads() -> int:
    """How many row blocks the time loop may run in parallel: RNNLAB_THREADS, else 1 (no split)."""
    if _threads_override is not None:
        return _threads_override
    env = os.environ.get("RNNLAB_THREADS")
    if env:
        try:
            return max(1, min(int(env), _cores()))
        except ValueError:
            pass
    return 1


def set_threads(n: int | None) -> None:
    """Override the thread count for this process (None: back to RNNLAB_THREADS or 1)."""
    global _threads_override
    _threads_override = None if n is None else max(1, int(n))


def _blas_controller() -> Any:
    global _blas, _blas_probed
    if not _blas_probed:
        _blas_probed = True
        try:
            from threadpoolctl import ThreadpoolController

            libs = ThreadpoolController().select(user_api="blas").lib_controllers
            _blas = _numpy_blas(libs)
        except Exception:  # threadpoolctl missing or unable to inspect this build
            _blas = None
    return _blas


def _numpy_blas(libs: list) -> Any:
    """NumPy's own BLAS among the loaded ones (torch or SciPy may bring others), or None."""
    import numpy

    wheel_libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    ours = [c for c in libs if os.path.dirname(c.filepath) == wheel_libs]
    if len(ours) == 1:
        return ours[0]
    return libs[0] if len(libs) == 1 else None  # a system BLAS and nothing else loaded: that one


def partition(rows: int) -> list[slice]:
    """Contiguous blocks of rows, one per thread, or one block when splitting would not pay."""
    n = min(threads(), rows // MIN_ROWS)
    if n < 2 or _blas_controller() is None:
        return [slice(0, rows)]
    bounds = [rows * k // n for k in range(n + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(n)]


def run(fn: Callable[[int, slice], Any], parts: Sequence[slice]) -> list[Any]:
    """``[fn(k, part) for k, part in enumerate(parts)]``, the parts on separate threads."""
    if len(parts) == 1:
        return [fn(0, parts[0])]
    global _pool
    with _lock:  # one parallel section at a time (BLAS thread count is process-wide)
        if _pool is None or _pool._max_workers < len(parts) - 1:
            _pool = ThreadPoolExecutor(max_workers=len(parts) - 1, thread_name_prefix="rnnlab")
        blas = _blas_controller()
        saved = blas.num_threads
        blas.set_num_threads(1)
        try:
            futures = [_pool.submit(fn, k, part) for k, part in enumerate(parts[1:], start=1)]
            first = fn(0, parts[0])  # the calling thread takes a share too
            return [first] + [f.result() for f in futures]
        finally:
            blas.set_num_threads(saved)
