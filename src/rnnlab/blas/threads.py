"""How many threads the BLAS libraries run, and a note when that many will hurt.

NumPy's OpenBLAS (and oneMKL with a threaded layer) starts one worker per core. rnnlab's products
are small (a step multiplies a 64 x H block by H x 4H, thousands of times a second): each product
hands work to every worker and waits for the last. On a machine whose cores are busy with other
processes a worker may not get a core for a whole time slice, and every product waits that long:
training the default char-LM took 13 s for 8 steps with 2 threads and 5 s with 1 on a 2-core
machine at load average 4 (AMD EPYC Zen 3), where on the quiet machine 2 threads are 1.3-1.6x
faster than 1. So:

* :func:`limit` sets the thread count of every BLAS (and OpenMP) library loaded in this process,
  through threadpoolctl (`rnnlab --threads N`, each command's ``--threads``); without threadpoolctl
  it refuses in one line naming the environment variables that do the same before start-up;
* :func:`busy_note` is one line for the start of a long job (the training loop prints it) when the
  load average already fills the cores this process may use and the BLAS runs more than one
  thread; ``RNNLAB_BUSY_NOTE=0`` silences it.
"""
from __future__ import annotations

import os
from typing import Any

ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
QUIET = "RNNLAB_BUSY_NOTE"


def cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_controller: Any = None      # threadpoolctl's view of the loaded libraries, made once (see count)


def forget_libraries() -> None:
    """Look the loaded libraries up again on the next :func:`count` (after one was loaded: oneMKL)."""
    global _controller
    _controller = None


def count() -> int:
    """The largest thread count among the BLAS libraries loaded (threadpoolctl), else what the
    environment asks of OpenBLAS, else one per core.

    Asked before every large product under ``RNNLAB_BLAS=auto`` (the thread count is part of a
    choice's key), so the libraries are found once (about 0.5 ms: threadpoolctl walks the process's
    shared objects) and only their current counts are read each time (about 2 us); a limit set
    since, by :func:`limit` or a threadpoolctl context, is seen."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or cores())
        _controller = ThreadpoolController()
    return max((lib.num_threads for lib in _controller.lib_controllers if lib.user_api == "blas"), default=1)


def openblas_kernel() -> str | None:
    """The kernel family OpenBLAS runs (``SkylakeX``, ``Haswell``, ...: threadpoolctl's
    ``architecture``), or None where threadpoolctl is missing or no OpenBLAS is loaded."""
    count()   # finds the libraries once
    if _controller is None:
        return None
    for lib in _controller.lib_controllers:
        if lib.internal_api == "openblas":
            return getattr(lib, "architecture", None)
    return None


def limit(n: int) -> Any:
    """Run every loaded BLAS and OpenMP library on ``n`` threads from now on (process-wide); returns
    threadpoolctl's limiter (its ``restore_original_limits()`` undoes it)."""
    from ..errors import ConfigError

    if n < 1:
        raise ConfigError(f"--threads {n}: give a thread count of at least 1")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ConfigError(f"--threads needs threadpoolctl (pip install threadpoolctl); or start with "
                          f"OPENBLAS_NUM_THREADS={n} OMP_NUM_THREADS={n} instead") from None
    return threadpool_limits(n)


def busy_note(load: float | None = None) -> str | None:
    """One line when the machine's 1-minute load average is at least the cores this process may use
    and the BLAS runs more than one thread, else None (also where ``RNNLAB_BUSY_NOTE=0``)."""
    if os.environ.get(QUIET, "").strip() == "0":
        return None
    threads = count()
    if threads <= 1:
        return None
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    n = cores()
    if load < n:
        return None
    return (f"note: this machine is busy (load average {load:.1f} on {n} cores) and the BLAS runs {threads} "
            f"threads: each small product waits for all of them, which under contention can be several times "
            f"slower than one thread; --threads 1 may be faster here")


__all__ = ["ENV", "QUIET", "busy_note", "cores", "count", "forget_libraries", "limit"]
