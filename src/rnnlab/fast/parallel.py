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

Every BLAS library loaded (NumPy's OpenBLAS, and oneMKL where ``RNNLAB_BLAS`` sends
step products there) is set to one thread while the blocks run (through
threadpoolctl, when installed) and restored afterwards, so the large products
outside the loop still use every core. (Until 2026-12-07 only NumPy's OpenBLAS
was: where ``auto`` had picked oneMKL for a step shape, each block's product
still started oneMKL's 2 threads, 4 threads on 2 cores.)

The forward-only loop (evaluation, prediction: under :func:`rnnlab.no_grad`)
splits too, by default (:func:`forward_partition`). Its results agree with the
unsplit loop's to rounding: every row of h_t is computed by the same kernel,
only the GEMM's row count changes (see :func:`forward_mm`).

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

import numpy as np

from ..module import on_no_grad

MIN_ROWS = 8  # below this per thread, the GEMMs get too thin to gain anything
FORWARD_MM_WORK = 1 << 20  # multiply-adds from which forward_mm splits a product
FORWARD_LOOP_WORK = 1 << 24  # ... and from which the forward-only recurrent loop splits (T B H G)

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_blas: Any = None
_blas_probed = False
_threads_override: int | None = None
_forward_blocks = 0   # inside no_grad with a split forward: its block count (BLAS on one thread meanwhile)


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


def _all_blas() -> list:
    """Every BLAS library loaded now (NumPy's first), each set to one thread inside a split. Looked
    up on each split (oneMKL may have been loaded since the last), through the cached controller
    of :func:`rnnlab.blas.threads.count` (about 2 us, not threadpoolctl's 0.5 ms walk)."""
    from ..blas import threads as blas_threads

    ours = _blas_controller()
    blas_threads.count()
    others = [] if blas_threads._controller is None else [
        lib for lib in blas_threads._controller.lib_controllers
        if lib.user_api == "blas" and (ours is None or lib.filepath != ours.filepath)]
    return ([ours] if ours is not None else []) + others


def forward_threads() -> int:
    """Row blocks for the forward-only loop: RNNLAB_THREADS (or :func:`set_threads`) where given,
    else as many as the BLAS runs threads (``--threads N``; a 2-core machine: 2), within the cores;
    inside :func:`rnnlab.no_grad`, the number fixed on entering it (:func:`_enter_no_grad`)."""
    if _forward_blocks:
        return _forward_blocks
    if _threads_override is not None or os.environ.get("RNNLAB_THREADS"):
        return threads()
    from ..blas import threads as blas_threads

    return max(1, min(blas_threads.count(), _cores()))


def _enter_no_grad() -> Callable[[], None]:
    """Entering the outermost no_grad with more than one block: every BLAS to one thread until it
    is left, the blocks doing the parallel work (returns the undo)."""
    global _forward_blocks
    n = forward_threads()
    if n < 2 or _forward_blocks or _blas_controller() is None:
        return lambda: None
    libs = _all_blas()
    saved = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    _forward_blocks = n

    def undo() -> None:
        global _forward_blocks
        _forward_blocks = 0
        for lib, k in zip(libs, saved):
            lib.set_num_threads(k)
    return undo


on_no_grad(_enter_no_grad)


def forward_partition(rows: int, work: int | None = None) -> list[slice]:
    """:func:`partition` for the forward-only loop (:func:`forward_threads` blocks); one block where
    ``work`` (the loop's multiply-adds) is under ``FORWARD_LOOP_WORK``: handing a small loop to
    the pool costs more than half of it."""
    if work is not None and work < FORWARD_LOOP_WORK:
        return [slice(0, rows)]
    return _blocks(rows, forward_threads())


def partition(rows: int) -> list[slice]:
    """Contiguous blocks of rows, one per thread, or one block when splitting would not pay."""
    return _blocks(rows, threads())


def _blocks(rows: int, wanted: int) -> list[slice]:
    n = min(wanted, rows // MIN_ROWS)
    if n < 2 or _blas_controller() is None:
        return [slice(0, rows)]
    bounds = [rows * k // n for k in range(n + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(n)]


def forward_mm(a: np.ndarray, b: np.ndarray, mm: Callable[..., np.ndarray] | None = None) -> np.ndarray:
    """``mm(a, b)`` (2-D; ``mm(a, b, out)`` writes into ``out``) for a forward-only pass: with
    :func:`forward_threads` blocks, a's rows split over the threads as the recurrent loop's are
    (every BLAS on one thread), once the product has at least ``FORWARD_MM_WORK`` multiply-adds;
    otherwise one call. ``mm``: :func:`rnnlab.fast.bf16.mm` by default (bf16 under --precision
    bf16, as a layer's training forward), ``np.matmul`` for a product that stays float32.

    Why: between two split recurrent layers (or two batches), a product left to a multi-threaded
    OpenBLAS wakes its worker threads, which then spin for a while (``OPENBLAS_THREAD_TIMEOUT``)
    on the cores the next split needs; measured on a 2-core Intel Xeon, that took the split
    evaluation from 1.3x to 0.75x the unsplit one. Each row of the result is the same dot
    products as in one product; a BLAS may still order a row's sums differently for another row
    count (seen once, in the last bit, for an 85-column OpenBLAS product), so results agree to
    rounding, not always bit for bit."""
    if mm is None:
        from .bf16 import mm
    parts = forward_partition(a.shape[0])
    if len(parts) == 1 or a.shape[0] * a.shape[1] * b.shape[1] < FORWARD_MM_WORK:
        return mm(a, b)
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    run(lambda k, rows: mm(a[rows], b, out[rows]), parts)
    return out


def run(fn: Callable[[int, slice], Any], parts: Sequence[slice]) -> list[Any]:
    """``[fn(k, part) for k, part in enumerate(parts)]``, the parts on separate threads."""
    if len(parts) == 1:
        return [fn(0, parts[0])]
    global _pool
    with _lock:  # one parallel section at a time (BLAS thread count is process-wide)
        if _pool is None or _pool._max_workers < len(parts) - 1:
            _pool = ThreadPoolExecutor(max_workers=len(parts) - 1, thread_name_prefix="rnnlab")
        libs = _all_blas()
        saved = [lib.num_threads for lib in libs]
        for lib in libs:
            lib.set_num_threads(1)
        try:
            futures = [_pool.submit(fn, k, part) for k, part in enumerate(parts[1:], start=1)]
            first = fn(0, parts[0])  # the calling thread takes a share too
            return [first] + [f.result() for f in futures]
        finally:
            for lib, n in zip(libs, saved):
                lib.set_num_threads(n)
