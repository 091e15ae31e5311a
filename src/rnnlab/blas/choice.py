"""Which library runs the recurrent step products: ``RNNLAB_BLAS=auto|openblas|mkl``.

The time loops of :mod:`rnnlab.fast` (training forward and backward, the forward-only
evaluation loop) and generation multiply a (B, K) block by a fixed (K, N) weight once per
step. :func:`stepper` returns that product as ``run(t)`` (``out = a[t] @ W``) from one of:

* ``openblas``: ``np.matmul`` (NumPy's BLAS, with its own thread count);
* ``mkl``: oneMKL's ``cblas_sgemm_compute`` on weights packed once per call of the loop
  (:class:`rnnlab.blas.mkl.PackedMatrix`), argument checks done once (the ``mkl`` extra);
* ``auto`` (the default where the ``mkl`` extra loads, else ``openblas``): both are timed on
  this very shape (B, K, N) and thread count the first time it is asked for, in alternating
  rounds within a budget of about 50 ms, and the faster one is used from then on (cached per
  shape and thread count: in this process, and for later processes on the same machine in a
  small record, :mod:`rnnlab.blas.choice_cache`, so that fresh runs are repeatable too; set
  ``RNNLAB_BLAS_CACHE=off`` to time in every process). Each choice is logged once (one line on
  stderr) and kept in
  :func:`choices`, which a run records in its config.json and its checkpoints; a resumed run
  takes its checkpoint's choices back (:func:`preset`) instead of timing again, so that resume
  stays bit-exact even where a timing under load would pick the other library.

float64 products (the gradient checks) always go to NumPy.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

from . import choice_cache

NAMES = ("auto", "openblas", "mkl")
BUDGET_S = 0.05

_requested: str | None = None
_cache: dict[tuple, str] = {}
_log: Callable[[str], None] | None = None


def mkl_loadable() -> bool:
    from . import mkl

    return mkl.available()


def requested() -> str:
    """``auto``, ``openblas`` or ``mkl``: ``$RNNLAB_BLAS`` (``numpy`` means ``openblas``), default
    ``auto`` where the mkl extra loads. An unknown name or ``mkl`` without the library: openblas,
    with a one-line note on stderr."""
    global _requested
    if _requested is None:
        _requested = _resolve(os.environ.get("RNNLAB_BLAS", ""))
    return _requested


def _resolve(name: str) -> str:
    name = name.strip().lower()
    name = {"numpy": "openblas", "": "auto" if mkl_loadable() else "openblas"}.get(name, name)
    if name not in NAMES:
        print(f"rnnlab: RNNLAB_BLAS={name!r} is not one of {', '.join(NAMES)}; using openblas", file=sys.stderr)
        return "openblas"
    if name in ("auto", "mkl") and not mkl_loadable():
        if name == "mkl":
            print("rnnlab: RNNLAB_BLAS=mkl but libmkl_rt could not be loaded (pip install -e '.[mkl]' in a "
                  "checkout); using openblas", file=sys.stderr)
        return "openblas"
    return name


def set_requested(name: str) -> str:
    """Switch at run time (forgets the cached choices); returns the name in effect."""
    global _requested
    if name.strip().lower() not in NAMES + ("numpy",):
        raise ValueError(f"RNNLAB_BLAS must be one of {', '.join(NAMES)}, got {name!r}")
    _requested = _resolve(name)
    _cache.clear()
    return _requested


def set_log(log: Callable[[str], None] | None) -> None:
    """Where a new choice is reported (default: one line on stderr)."""
    global _log
    _log = log


def _threads() -> int:
    try:
        from threadpoolctl import threadpool_info
        return max((i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"), default=1)
    except ImportError:
        return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


def _time_both(B: int, K: int, N: int) -> dict[str, float]:
    """Median seconds per product of each library on random (B, K) x (K, N) float32, in alternating
    rounds until the budget is spent (at least 3 rounds)."""
    from .mkl import PackedMatrix

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, B, K), dtype=np.float32)
    W = rng.standard_normal((K, N), dtype=np.float32)
    out = np.empty((B, N), np.float32)
    runs = {"openblas": lambda t: np.matmul(a[t], W, out=out), "mkl": PackedMatrix(W, B).stepper(a, out)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    start = time.perf_counter()
    rounds = 0
    while rounds < 3 or time.perf_counter() - start < BUDGET_S:
        for name in (("openblas", "mkl") if rounds % 2 == 0 else ("mkl", "openblas")):
            run = runs[name]
            run(0)
            t0 = time.perf_counter()
            for k in range(4):
                run(k & 1)
            times[name].append((time.perf_counter() - t0) / 4)
        rounds += 1
        if rounds >= 40:
            break
    return {k: statistics.median(v) for k, v in times.items()}


def choose(B: int, K: int, N: int) -> str:
    """``openblas`` or ``mkl`` for a (B, K) x (K, N) float32 product under the requested backend."""
    req = requested()
    if req != "auto":
        return req
    key = (B, K, N, _threads())
    if key not in _cache:
        what = f"rnnlab: step product ({B}, {K}) x ({K}, {N}), {key[3]} BLAS threads: "
        recorded = choice_cache.lookup(key)
        if recorded is not None:
            _cache[key] = recorded
            line = what + f"{recorded} (as timed before on this machine: {choice_cache.path()})"
        else:
            t = _time_both(B, K, N)
            _cache[key] = min(t, key=t.get)
            choice_cache.store(key, _cache[key], t)
            line = what + f"{_cache[key]} (openblas {t['openblas'] * 1e6:.0f} us, mkl packed {t['mkl'] * 1e6:.0f} us)"
        (_log or (lambda s: print(s, file=sys.stderr)))(line)
    return _cache[key]


def stepper(a: np.ndarray, W: np.ndarray, out: np.ndarray) -> Callable[[int], Any]:
    """``run(t)``: ``out[...] = a[t] @ W`` for a stack ``a`` (T, B, K) and a fixed ``W`` (K, N),
    through the library :func:`choose` picks (``out`` (B, N), C-contiguous)."""
    if a.dtype == np.float32 and W.dtype == np.float32 and out.dtype == np.float32 and a.shape[1] > 0 \
            and choose(a.shape[1], W.shape[0], W.shape[1]) == "mkl":
        from .mkl import PackedMatrix

        return PackedMatrix(np.ascontiguousarray(W), a.shape[1]).stepper(a, out)
    return lambda t: np.matmul(a[t], W, out=out)


def preset(chosen: Any) -> int:
    """Take back choices a run recorded (``choices()["chosen"]``, kept in its checkpoints) so that
    the run resumed multiplies with the libraries it started with (the two round differently, about
    1e-8 relative). Only under ``auto``: an explicit ``RNNLAB_BLAS`` wins, and without the mkl extra
    everything is OpenBLAS anyway. Entries that do not parse (a hostile or older checkpoint) are
    ignored. Returns how many choices were taken."""
    if requested() != "auto" or not isinstance(chosen, dict):
        return 0
    taken = 0
    for key, lib in chosen.items():
        try:
            shape, threads = str(key).split("@")
            B, K, N = (int(v) for v in shape.split("x"))
            parsed = (B, K, N, int(threads))
        except ValueError:
            continue
        if lib in ("openblas", "mkl") and min(parsed) > 0:
            _cache[parsed] = lib
            taken += 1
    return taken


def choices() -> dict[str, Any]:
    """What a run records: the requested backend and each shape's choice so far."""
    return {"requested": requested(),
            "chosen": {f"{B}x{K}x{N}@{n}": c for (B, K, N, n), c in sorted(_cache.items())}}


__all__ = ["BUDGET_S", "NAMES", "choices", "choose", "preset", "requested", "set_log", "set_requested", "stepper"]
