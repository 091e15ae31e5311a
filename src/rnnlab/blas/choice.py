"""Which library runs the recurrent step products: ``RNNLAB_BLAS=auto|openblas|mkl|exact``.

The time loops of :mod:`rnnlab.fast` (training forward and backward, the forward-only
evaluation loop) and generation multiply a (B, K) block by a fixed (K, N) weight once per
step. :func:`stepper` returns that product as ``run(t)`` (``out = a[t] @ W``) from one of:

* ``openblas``: ``np.matmul`` (NumPy's BLAS, with its own thread count);
* ``mkl``: oneMKL's ``cblas_sgemm_compute`` on weights packed once per call of the loop
  (:class:`rnnlab.blas.mkl.PackedMatrix`), argument checks done once (the ``mkl`` extra);
* ``exact``: :mod:`rnnlab.blas.exact`, every element summed in one fixed order, so that the
  results round the same on every CPU (slower; for processes that feed their own rounding back
  thousands of times, as the online anomaly detector does);
* ``auto`` (the default where the ``mkl`` extra loads, else ``openblas``): both are timed on
  this very shape (B, K, N) and thread count the first time it is asked for, in alternating
  rounds within a budget of about 50 ms, and the faster one is used from then on (cached per
  shape and thread count: in this process, and for later processes on the same machine in a
  small record, :mod:`rnnlab.blas.choice_cache`, so that fresh runs are repeatable too; set
  ``RNNLAB_BLAS_CACHE=off`` to time in every process). Each choice is logged once when it is timed
  (one line on stderr; one read from the record is not logged again) and kept in
  :func:`choices`, which a run records in its config.json and its checkpoints; a resumed run
  takes its checkpoint's choices back (:func:`preset`) instead of timing again, so that resume
  stays bit-exact even where a timing under load would pick the other library.

The whole-sequence products (the input projection of every step at once, the weight and input
gradients, a Linear layer over every row: float32 ``a @ b`` of two 2-D operands, through
:func:`gemm`) get the same treatment where they are large enough to matter, at least
:data:`GEMM_MIN_MACS` multiply-adds. :func:`choose_gemm` times NumPy's ``np.matmul`` against
oneMKL's ``cblas_sgemm`` on the product's own shape and layout (rows and inner length rounded up
to powers of two, so that a shorter last batch shares its choice: its rows are a projection's
rows and a weight gradient's inner length; a transposed operand, ``h.T`` in a weight gradient, is
handed to both as it is) in paired rounds within about :data:`GEMM_BUDGET_S`, and takes oneMKL
only where it wins by :data:`GEMM_MARGIN`; the choice is logged and recorded like the step
products'. Smaller products stay NumPy's under ``auto`` (a call costs less than a timing would
ever win back); ``RNNLAB_BLAS=mkl`` sends every float32 product here to oneMKL.

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

NAMES = ("auto", "openblas", "mkl", "exact")
BUDGET_S = 0.05
GEMM_MIN_MACS = 1 << 24     # whole-sequence products below this many multiply-adds stay NumPy's under auto
GEMM_BUDGET_S = 0.2
GEMM_ROUNDS = 5
GEMM_MARGIN = 1.05          # oneMKL is chosen for a whole-sequence product only where it is 5 % faster

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
    from .threads import count

    return count()


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
        _decide(key, f"rnnlab: step product ({B}, {K}) x ({K}, {N}), {key[3]} BLAS threads: ",
                lambda: _time_both(B, K, N), lambda t: min(t, key=t.get),
                lambda t: f"openblas {t['openblas'] * 1e6:.0f} us, mkl packed {t['mkl'] * 1e6:.0f} us")
    return _cache[key]


def _decide(key: tuple, what: str, timing: Callable[[], dict], pick: Callable[[dict], str],
            shown: Callable[[dict], str]) -> None:
    """Take ``key``'s choice from this machine's record, or time it (``timing``), ``pick`` the library,
    record it and log one line (``what`` + the choice + ``shown`` timings). A choice read from the
    record is not logged: it was when it was timed, and ``rnnlab blas`` lists the record."""
    recorded = choice_cache.lookup(key)
    if recorded is not None:
        _cache[key] = recorded
        return
    t = timing()
    _cache[key] = pick(t)
    choice_cache.store(key, _cache[key], t)
    (_log or (lambda s: print(s, file=sys.stderr)))(what + f"{_cache[key]} ({shown(t)})")


def stepper(a: np.ndarray, W: np.ndarray, out: np.ndarray) -> Callable[[int], Any]:
    """``run(t)``: ``out[...] = a[t] @ W`` for a stack ``a`` (T, B, K) and a fixed ``W`` (K, N),
    through the library :func:`choose` picks (``out`` (B, N), C-contiguous)."""
    if requested() == "exact" and a.dtype == np.float32 and W.dtype == np.float32 and out.dtype == np.float32:
        from .exact import matmul

        return lambda t: matmul(a[t], W, out)
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
        parsed = _parse_key(str(key))
        if parsed is not None and lib in ("openblas", "mkl"):
            _cache[parsed] = lib
            taken += 1
    return taken


def _parse_key(key: str) -> tuple | None:
    """``"BxKxN@threads"`` -> (B, K, N, threads); ``"MxKxN:ab@threads"`` (a whole-sequence product,
    ``ab`` its operands' layouts) -> (M, K, N, ab, threads); None for anything else."""
    try:
        shape, threads = key.split("@")
        shape, _, layout = shape.partition(":")
        dims = tuple(int(v) for v in shape.split("x"))
        n = int(threads)
    except ValueError:
        return None
    if len(dims) != 3 or min(dims + (n,)) <= 0 or (layout and layout not in _LAYOUTS):
        return None
    return dims + ((layout,) if layout else ()) + (n,)


def choices() -> dict[str, Any]:
    """What a run records: the requested backend and each shape's choice so far."""
    return {"requested": requested(),
            "chosen": {choice_cache.key_name(k): c
                       for k, c in sorted(_cache.items(), key=lambda kc: (len(kc[0]), kc[0]))}}


_LAYOUTS = ("nn", "nt", "tn", "tt")


def _layout(x: np.ndarray) -> str | None:
    """``n`` (rows contiguous), ``t`` (a transposed view: columns contiguous) or None (neither)."""
    if x.flags.c_contiguous:
        return "n"
    if x.T.flags.c_contiguous:
        return "t"
    return None


def _bucket(m: int) -> int:
    return 1 << max(m - 1, 0).bit_length()


def _time_gemm(M: int, K: int, N: int, layout: str) -> dict[str, float]:
    """Seconds per product of each library on random float32 operands of this shape and layout:
    OpenBLAS's median over alternating rounds (at least :data:`GEMM_ROUNDS`, more while
    :data:`GEMM_BUDGET_S` lasts, at most 20), and oneMKL's as that divided by the median of the
    rounds' paired ratios (each round times both back to back, so a load that comes and goes on a
    shared machine cancels out of the ratio where it would not out of two separate minima)."""
    from .mkl import sgemm

    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K) if layout[0] == "n" else (K, M), dtype=np.float32)
    b = rng.standard_normal((K, N) if layout[1] == "n" else (N, K), dtype=np.float32)
    a, b = (a if layout[0] == "n" else a.T), (b if layout[1] == "n" else b.T)
    out = np.empty((M, N), np.float32)
    runs = {"openblas": lambda: np.matmul(a, b, out=out), "mkl": lambda: sgemm(a, b, out)}
    ob: list[float] = []
    ratios: list[float] = []
    start = time.perf_counter()
    while len(ob) < GEMM_ROUNDS or (time.perf_counter() - start < GEMM_BUDGET_S and len(ob) < 20):
        t = {}
        for name in (("openblas", "mkl") if len(ob) % 2 == 0 else ("mkl", "openblas")):
            t0 = time.perf_counter()
            runs[name]()
            t[name] = time.perf_counter() - t0
        ob.append(t["openblas"])
        ratios.append(t["openblas"] / t["mkl"])
    median = statistics.median(ob)
    return {"openblas": median, "mkl": median / statistics.median(ratios)}


def _faster(t: dict[str, float]) -> str:
    """oneMKL only where it wins by :data:`GEMM_MARGIN` (NumPy's is what runs without the extra:
    a near tie, which a loaded machine can tip either way, keeps it)."""
    return "mkl" if t["openblas"] > GEMM_MARGIN * t["mkl"] else "openblas"


def choose_gemm(a: np.ndarray, b: np.ndarray) -> str:
    """``openblas`` or ``mkl`` for the float32 product ``a @ b`` of two 2-D arrays under the requested
    backend (operands with neither rows nor columns contiguous: openblas, which copies as it needs)."""
    req = requested()
    layout = (_layout(a) or "?") + (_layout(b) or "?")
    if req == "openblas" or "?" in layout:
        return "openblas"
    if req == "mkl":
        return "mkl"
    (M, K), N = a.shape, b.shape[1]
    if M * K * N < GEMM_MIN_MACS:
        return "openblas"
    key = (_bucket(M), _bucket(K), N, layout, _threads())
    if key not in _cache:
        _decide(key, f"rnnlab: whole-sequence product ({key[0]}, {key[1]}) x ({key[1]}, {N}) [{layout}], "
                     f"{key[4]} BLAS threads: ", lambda: _time_gemm(*key[:4]), _faster,
                lambda t: f"openblas {t['openblas'] * 1e3:.2f} ms, mkl {t['mkl'] * 1e3:.2f} ms")
    return _cache[key]


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, accumulate: bool = False) -> np.ndarray:
    """``a @ b`` (``out += a @ b`` with ``accumulate``) for 2-D operands, float32 ones through the
    library :func:`choose_gemm` picks (:mod:`rnnlab.blas.exact` under ``exact``); anything else is
    ``np.matmul``'s."""
    if (requested() == "exact" and a.dtype == np.float32 and b.dtype == np.float32 and a.ndim == 2 and b.ndim == 2
            and (out is None or out.dtype == np.float32)):
        from .exact import matmul

        return matmul(a, b, out, accumulate=accumulate)
    if (a.dtype == np.float32 and b.dtype == np.float32 and a.ndim == 2 and b.ndim == 2
            and (out is None or (out.dtype == np.float32 and (out.flags.c_contiguous or out.flags.f_contiguous)))
            and a.size and b.size and choose_gemm(a, b) == "mkl"):
        from .mkl import sgemm

        return sgemm(a, b, out, beta=1.0 if accumulate else 0.0)
    if accumulate:
        out += a @ b
        return out
    return np.matmul(a, b, out=out)


__all__ = ["BUDGET_S", "GEMM_BUDGET_S", "GEMM_MARGIN", "GEMM_MIN_MACS", "GEMM_ROUNDS", "NAMES", "choices", "choose",
           "choose_gemm", "gemm", "preset", "requested", "set_log", "set_requested", "stepper"]
