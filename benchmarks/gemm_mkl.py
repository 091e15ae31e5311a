"""The recurrent step's product under OpenBLAS (NumPy) and oneMKL, and the two thread pools side by side.

    PYTHONPATH=src python benchmarks/gemm_mkl.py                 # both parts, about three minutes
    PYTHONPATH=src python benchmarks/gemm_mkl.py --part gemm     # products only
    PYTHONPATH=src python benchmarks/gemm_mkl.py --part threads  # thread-pool interplay only
    PYTHONPATH=src python benchmarks/gemm_mkl.py --part sequence # whole-sequence products only

Needs ``pip install 'rnnlab[mkl]'`` (and threadpoolctl, which scikit-learn brings, to set
OpenBLAS's thread count in-process).

Part 1, ``gemm``: the product of one LSTM step, (64 x H) by (H x 4H), float32,
H = 128, 256, 512, with 1 and 2 threads (OpenBLAS and MKL set alike; MKL's
threading layer INTEL unless ``MKL_THREADING_LAYER`` says otherwise). Variants:

* ``openblas``: ``np.matmul(a, W, out=c)``
* ``mkl sgemm``: ``rnnlab.blas.mkl.sgemm(a, W, c)`` (ctypes; its Python-side checks included)
* ``mkl packed``: ``PackedMatrix(W, 64).compute(a, c)`` (W packed once, outside the timing)
* ``mkl packed step``: the same through ``PackedMatrix.stepper`` (checks done once, as a
  time loop would call it)
* ``mkl bf16``: ``gemm_bf16(a16, W16, c)`` on inputs already converted
* ``mkl bf16 packed``: ``PackedMatrix(W, 64, precision="bf16").compute(a16, c)``

The conversions are timed apart: ``to_bf16`` of the activation (64 x H, once per
product in a bf16 step) and of the weight (H x 4H, once per optimizer step), and
a re-pack of W (float32 and bf16, once per optimizer step).

All variants run in one process in rounds: each round times a short block of
every variant (order rotated from round to round, a pause before each block),
until each has run ``--seconds``. Reported: the median call time, GFLOP/s =
2 * 64 * H * 4H / time, and the speed relative to OpenBLAS: the ratio of the
medians, with the middle half (quartiles) of the per-round ratios beside it;
then the same from the 10th percentile of the call times (``p10``: the fast
phases, closer to an unloaded machine when other jobs share the cores).
The machine is shared: absolute rates move between runs; the ratios, measured
in the same rounds, are what to read.

Part 3, ``sequence``: the whole-sequence products of one LSTM layer's training step over
``--rows`` rows (T*B, default 64 x 64): the input projection ``x @ W_x``, the weight gradient
``h.T @ dA`` and the input gradient ``dA @ W_x.T``, handed over as the layer does (transposed
views, no copies), ``np.matmul`` against ``mkl.sgemm``, and the library ``RNNLAB_BLAS=auto``
picks for each (:func:`rnnlab.blas.choice.choose_gemm`, timed afresh).

Part 2, ``threads``: do the two libraries' worker threads spin against each
other when one training step uses both? Each configuration runs in its own
process (MKL's threading layer is fixed when the library loads), H = 256,
OpenBLAS 2 threads and MKL 2 threads (SEQUENTIAL: 1). A loop iteration is two
products and two element-wise passes (``np.tanh`` on the (64 x 4H) result, what a
step does between its products):

* ``openblas only``: matmul, tanh, matmul, tanh
* ``mkl only``: sgemm, tanh, sgemm, tanh
* ``mixed``: matmul, tanh, sgemm, tanh (each library's product right after the other's)

``interference`` = mixed / mean(openblas only, mkl only) (from the medians, and
from the 10th percentiles): 1.00 when mixing costs
nothing; above 1 when one pool's idle workers (still spinning after their call:
OpenBLAS's for a while, Intel OpenMP's for KMP_BLOCKTIME, 200 ms by default)
take the cores the other needs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnlab.blas import bf16, mkl  # noqa: E402

B = 64


def set_openblas_threads(n: int) -> None:
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(internal_api="openblas").limit(limits=n)


def rounds(fns: dict[str, Callable[[], None]], seconds: float, block: float = 0.15, pause: float = 0.25,
           min_rounds: int = 5) -> tuple[dict[str, float], list[dict[str, float]], dict[str, float]]:
    """Time every function in rounds of one block each (order rotated, a pause before each block)
    until each has run ``seconds``; returns the median call time of each over all blocks, each
    round's block medians, and the 10th percentile of each one's call times (its fast phases:
    on a loaded machine, closer to what it does when it has the cores)."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    per_round: list[dict[str, float]] = []
    r = 0
    while r < min_rounds or min(sum(v) for v in times.values()) < seconds:
        med = {}
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            fn = fns[n]
            time.sleep(pause)
            fn()                                   # warm-up call after the pause
            spent: list[float] = []
            while sum(spent) < block or len(spent) < 3:
                t0 = time.perf_counter()
                fn()
                spent.append(time.perf_counter() - t0)
            times[n].extend(spent)
            med[n] = statistics.median(spent)
        per_round.append(med)
        r += 1
    p10 = {n: float(np.percentile(v, 10)) for n, v in times.items()}
    return {n: statistics.median(v) for n, v in times.items()}, per_round, p10


def quartiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return f"{q[0]:.2f}-{q[2]:.2f}"


def loadavg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def part_gemm(seconds: float, sizes: list[int], threads: list[int]) -> None:
    rng = np.random.default_rng(0)
    print(f"oneMKL {mkl.version()} ({mkl.threading_layer()} threading), NumPy {np.__version__}; "
          f"load average {loadavg()}")
    print(f"product (64 x H) by (H x 4H), float32; {seconds:g} s per variant, rounds of all variants")
    print(f"{'H':>4} {'thr':>3} {'variant':<16} {'us/call':>8} {'GFLOP/s':>8} {'vs openblas':>11} {'rounds':>10}"
          f" {'p10 us':>8} {'p10 GFLOP/s':>11} {'p10 vs openblas':>15}")
    conv_rows = []
    for nt in threads:
        set_openblas_threads(nt)
        mkl.set_num_threads(nt)
        for H in sizes:
            N = 4 * H
            a = rng.standard_normal((B, H)).astype(np.float32)
            W = (rng.standard_normal((H, N)) / np.sqrt(H)).astype(np.float32)
            c = np.empty((B, N), np.float32)
            a16, W16 = bf16.to_bf16(a), bf16.to_bf16(W)
            P = mkl.PackedMatrix(W, B)
            P16 = mkl.PackedMatrix(W, B, precision="bf16") if mkl.has_bf16() else None
            fns: dict[str, Callable[[], None]] = {
                "openblas": lambda: np.matmul(a, W, out=c),
                "mkl sgemm": lambda: mkl.sgemm(a, W, c),
                "mkl packed": lambda: P.compute(a, c),
                "mkl packed step": lambda: run(0),
            }
            run = P.stepper(a, c)
            if P16 is not None:
                fns["mkl bf16"] = lambda: mkl.gemm_bf16(a16, W16, c)
                fns["mkl bf16 packed"] = lambda: P16.compute(a16, c)
            med, per_round, p10 = rounds(fns, seconds)
            flops = 2 * B * H * N
            for name, t in med.items():
                rel = med["openblas"] / t
                rr = [r["openblas"] / r[name] for r in per_round]
                print(f"{H:>4} {nt:>3} {name:<16} {t * 1e6:>8.1f} {flops / t / 1e9:>8.1f} {rel:>11.2f} "
                      f"{quartiles(rr):>10} {p10[name] * 1e6:>8.1f} {flops / p10[name] / 1e9:>11.1f}"
                      f" {p10['openblas'] / p10[name]:>15.2f}", flush=True)
            conv = {
                "to_bf16 activation (64 x H)": lambda: bf16.to_bf16(a, out=a16),
                "to_bf16 weight (H x 4H)": lambda: bf16.to_bf16(W, out=W16),
                "round_bf16 weight (H x 4H)": lambda: bf16.round_bf16(W),
                "from_bf16 weight (H x 4H)": lambda: bf16.from_bf16(W16),
                "repack f32 (per optimizer step)": lambda: P.repack(),
            }
            if P16 is not None:
                conv["repack bf16 (convert + pack)"] = lambda: P16.repack()
            cmed, _, _ = rounds(conv, seconds / 4, min_rounds=3)
            conv_rows.append((H, nt, cmed, med["openblas"]))
    print("\nconversions and re-packing (us per call; in units of one OpenBLAS product of that H)")
    for H, nt, cmed, ref in conv_rows:
        for name, t in cmed.items():
            print(f"{H:>4} {nt:>3} {name:<34} {t * 1e6:>9.1f} us {t / ref:>6.2f} products")
    print("\nper-call overhead: a 4 x 4 product (us per call; best of 5 x 2000 calls)")
    a4, b4, c4 = (np.ones((4, 4), np.float32) for _ in range(3))
    P4 = mkl.PackedMatrix(b4, 4)
    run4 = P4.stepper(a4, c4)
    for name, fn in (("np.matmul", lambda: np.matmul(a4, b4, out=c4)), ("mkl.sgemm", lambda: mkl.sgemm(a4, b4, c4)),
                     ("PackedMatrix.compute", lambda: P4.compute(a4, c4)), ("PackedMatrix.stepper", lambda: run4(0))):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(2000):
                fn()
            best = min(best, (time.perf_counter() - t0) / 2000)
        print(f"  {name:<22} {best * 1e6:6.1f} us")
    print(f"load average at the end {loadavg()}")


def part_sequence(seconds: float, sizes: list[int], threads: list[int], rows: int) -> None:
    """The whole-sequence products of one LSTM layer's training step (T*B = ``rows`` rows), as the
    layer hands them over (transposed operands as views): the input projection x @ W_x (nn), the
    weight gradient h^T @ dA (tn) and the input gradient dA @ W_x^T (nt); np.matmul against oneMKL's
    sgemm, and what ``RNNLAB_BLAS=auto`` chooses for each (rnnlab.blas.choice.choose_gemm, timed
    here afresh: the record is not read)."""
    from rnnlab.blas import choice

    os.environ["RNNLAB_BLAS_CACHE"] = "off"
    choice.set_requested("auto")
    rng = np.random.default_rng(0)
    print(f"\nwhole-sequence products of one LSTM layer, {rows} rows (T*B), float32; oneMKL {mkl.version()} "
          f"({mkl.threading_layer()}), load average {loadavg()}")
    print(f"{'H':>4} {'thr':>3} {'product':<26} {'openblas ms':>11} {'mkl ms':>8} {'GFLOP/s ob':>10} {'mkl/ob':>7} "
          f"{'rounds':>10} {'auto picks':>10}")
    for nt in threads:
        set_openblas_threads(nt)
        mkl.set_num_threads(nt)
        for H in sizes:
            x = rng.standard_normal((rows, H), dtype=np.float32)
            W = rng.standard_normal((H, 4 * H), dtype=np.float32)
            dA = rng.standard_normal((rows, 4 * H), dtype=np.float32)
            cases = {"x @ W_x (nn)": (x, W), "h^T @ dA (tn)": (x.T, dA), "dA @ W_x^T (nt)": (dA, W.T)}
            for label, (a, b) in cases.items():
                out = np.empty((a.shape[0], b.shape[1]), np.float32)
                med, per_round, _ = rounds({"openblas": lambda: np.matmul(a, b, out=out),
                                            "mkl": lambda: mkl.sgemm(a, b, out)}, seconds, min_rounds=3)
                flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
                rr = [r["openblas"] / r["mkl"] for r in per_round]
                print(f"{H:>4} {nt:>3} {label:<26} {med['openblas'] * 1e3:>11.2f} {med['mkl'] * 1e3:>8.2f} "
                      f"{flops / med['openblas'] / 1e9:>10.1f} {med['openblas'] / med['mkl']:>7.2f} "
                      f"{quartiles(rr):>10} {choice.choose_gemm(a, b):>10}", flush=True)
    print(f"load average at the end {loadavg()}")


def child_threads(seconds: float, H: int) -> dict:
    """One configuration of the interplay test (its environment set by the parent)."""
    rng = np.random.default_rng(0)
    nt_mkl = 1 if os.environ.get("MKL_THREADING_LAYER") == "SEQUENTIAL" else 2
    mkl.load()
    set_openblas_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", "2")))
    mkl.set_num_threads(nt_mkl)
    N = 4 * H
    a = rng.standard_normal((B, H)).astype(np.float32)
    W = (rng.standard_normal((H, N)) / np.sqrt(H)).astype(np.float32)
    c1, c2 = np.empty((B, N), np.float32), np.empty((B, N), np.float32)

    def openblas_only():
        np.matmul(a, W, out=c1)
        np.tanh(c1, out=c1)
        np.matmul(a, W, out=c2)
        np.tanh(c2, out=c2)

    def mkl_only():
        mkl.sgemm(a, W, c1)
        np.tanh(c1, out=c1)
        mkl.sgemm(a, W, c2)
        np.tanh(c2, out=c2)

    def mixed():
        np.matmul(a, W, out=c1)
        np.tanh(c1, out=c1)
        mkl.sgemm(a, W, c2)
        np.tanh(c2, out=c2)

    # the pause before each block outlasts Intel OpenMP's default 200 ms spin, so blocks start clean
    med, per_round, p10 = rounds({"openblas only": openblas_only, "mkl only": mkl_only, "mixed": mixed}, seconds,
                                 block=0.3, pause=0.35)
    inter = [r["mixed"] / ((r["openblas only"] + r["mkl only"]) / 2) for r in per_round]
    return {"layer": mkl.threading_layer(), "mkl_threads": mkl.get_max_threads(),
            "us": {k: v * 1e6 for k, v in med.items()}, "p10": {k: v * 1e6 for k, v in p10.items()},
            "interference": med["mixed"] / ((med["openblas only"] + med["mkl only"]) / 2),
            "p10_interference": p10["mixed"] / ((p10["openblas only"] + p10["mkl only"]) / 2),
            "rounds": quartiles(inter), "load": loadavg()}


CONFIGS = [
    ("INTEL (KMP_BLOCKTIME 200 ms, default)", {"MKL_THREADING_LAYER": "INTEL"}),
    ("INTEL, KMP_BLOCKTIME=0", {"MKL_THREADING_LAYER": "INTEL", "KMP_BLOCKTIME": "0"}),
    ("GNU (libgomp)", {"MKL_THREADING_LAYER": "GNU"}),
    ("GNU, OMP_WAIT_POLICY=PASSIVE", {"MKL_THREADING_LAYER": "GNU", "OMP_WAIT_POLICY": "PASSIVE"}),
    ("TBB", {"MKL_THREADING_LAYER": "TBB"}),
    ("SEQUENTIAL (MKL 1 thread)", {"MKL_THREADING_LAYER": "SEQUENTIAL"}),
    ("SEQUENTIAL, OpenBLAS 1 thread (no pools: control)", {"MKL_THREADING_LAYER": "SEQUENTIAL",
                                                            "OPENBLAS_NUM_THREADS": "1"}),
    ("INTEL, OPENBLAS_THREAD_TIMEOUT=4", {"MKL_THREADING_LAYER": "INTEL", "OPENBLAS_THREAD_TIMEOUT": "4"}),
    ("INTEL, KMP_BLOCKTIME=0, OPENBLAS_THREAD_TIMEOUT=4",
     {"MKL_THREADING_LAYER": "INTEL", "KMP_BLOCKTIME": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}),
]


def part_threads(seconds: float, H: int, configs: list[str] | None) -> None:
    print(f"\nthread pools: one loop iteration = 2 products (64 x {H}) by ({H} x {4 * H}) + 2 tanh passes; "
          "OpenBLAS 2 threads, MKL 2 threads (SEQUENTIAL: 1); each configuration its own process")
    print(f"{'configuration':<50} {'openblas only':>13} {'mkl only':>9} {'mixed':>8} {'interference':>12} "
          f"{'rounds':>11} | p10: {'openblas':>8} {'mkl':>7} {'mixed':>7} {'interf.':>7} {'load':>5}")
    for label, env in CONFIGS:
        if configs and not any(c.lower() in label.lower() for c in configs):
            continue
        e = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        e.update(env)
        e.setdefault("OPENBLAS_NUM_THREADS", "2")
        proc = subprocess.run([sys.executable, __file__, "--child", "--seconds", str(seconds), "--H", str(H)],
                              env=e, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{label:<50} failed: {tail[:100]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        us, p = r["us"], r["p10"]
        print(f"{label:<50} {us['openblas only']:>10.0f} us {us['mkl only']:>6.0f} us {us['mixed']:>5.0f} us "
              f"{r['interference']:>12.2f} {r['rounds']:>11} |      {p['openblas only']:>8.0f} {p['mkl only']:>7.0f} "
              f"{p['mixed']:>7.0f} {r['p10_interference']:>7.2f} {r['load']:>5}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["gemm", "threads", "sequence", "all"], default="all")
    p.add_argument("--rows", type=int, default=64 * 64, help="rows of the whole-sequence products (T*B)")
    p.add_argument("--seconds", type=float, default=None, help="timing per variant (gemm 1.5, threads 3)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--H", type=int, default=256, help="hidden size of the thread-pool test")
    p.add_argument("--configs", nargs="*", help="thread-pool configurations to run (substrings of their labels)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child_threads(args.seconds or 3.0, args.H)))
        return
    # rnnlab's default layer is SEQUENTIAL; the 2-thread rows need a threaded one (the thread-pool
    # part sets each configuration's layer itself)
    os.environ.setdefault("MKL_THREADING_LAYER", "INTEL")
    if not mkl.available():
        sys.exit(f"oneMKL not loadable: {mkl.unavailable_reason()}")
    if args.part in ("gemm", "all"):
        part_gemm(args.seconds or 1.5, args.sizes, args.threads)
    if args.part in ("sequence", "all"):
        part_sequence(args.seconds or 1.5, args.sizes, args.threads, args.rows)
    if args.part in ("threads", "all"):
        part_threads(args.seconds or 3.0, args.H, args.configs)


if __name__ == "__main__":
    main()
