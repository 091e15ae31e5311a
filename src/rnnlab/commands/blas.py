"""``rnnlab blas``: which library runs the step products on this machine, and its record of choices."""
from __future__ import annotations

import argparse
import re


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "blas", help="show (or clear, or make) this machine's BLAS choices",
        description="Under RNNLAB_BLAS=auto (the default where the mkl extra is installed) each recurrent "
                    "step-product shape (BxKxN@threads) is timed once on OpenBLAS and on packed oneMKL, and each "
                    "large whole-sequence product (input projections, weight and input gradients, Linear layers: "
                    "MxKxN:ab@threads, M and K rounded up to powers of two, ab the operands' layouts, n plain or t "
                    "transposed) on OpenBLAS and oneMKL's sgemm; the faster one is kept in a per-machine record (RNNLAB_BLAS_CACHE, default ~/.cache/rnnlab/blas-choices.json) "
                    "that later runs reuse, so fresh runs are repeatable. RNNLAB_BLAS=exact instead sums every "
                    "float32 product in one fixed order, so that results round the same on every CPU (slower; the "
                    "online anomaly detector's stream always uses it unless RNNLAB_BLAS names a library). This "
                    "shows the machine, the backend requested and the record.")
    p.add_argument("--clear", action="store_true",
                   help="forget this machine's recorded choices (they are timed again on next use), e.g. after "
                        "changing thread settings or the machine's load profile")
    p.add_argument("--time", metavar="BxKxN", action="append", default=[],
                   help="choose (and record) the library for a (B, K) x (K, N) float32 step product now; "
                        "repeatable; B is the batch, K the hidden size, N the gates' width (4K for an LSTM, 3K "
                        "for a GRU)")
    p.set_defaults(run=run)


def _shape(text: str) -> tuple[int, int, int]:
    from ..errors import ConfigError

    try:
        B, K, N = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--time {text!r}: expected BxKxN, three positive integers such as 64x256x1024") from None
    if min(B, K, N) <= 0 or max(B, K, N) > 65536:
        raise ConfigError(f"--time {text!r}: each of B, K, N must be between 1 and 65536")
    return B, K, N


def run(args: argparse.Namespace) -> int:
    from ..blas import choice, choice_cache, describe

    shapes = [_shape(s) for s in args.time]   # refuse a bad shape before anything else
    print(f"machine:   {choice_cache.machine()}")
    print(f"requested: RNNLAB_BLAS={choice.requested()}   general products: {describe()}")
    file = choice_cache.path()
    print(f"record:    {file if file is not None else 'off (' + choice_cache.ENV + '=off): timed in every process'}")
    if args.clear:
        print(f"forgot {choice_cache.clear()} recorded choice(s) for this machine")
    if shapes and choice.requested() != "auto":
        print(f"nothing to time: RNNLAB_BLAS={choice.requested()} fixes the library")
    choice.set_log(lambda line: print(line.removeprefix("rnnlab: ")))
    try:
        for B, K, N in shapes:
            choice.choose(B, K, N)
    finally:
        choice.set_log(None)
    entries = choice_cache.entries()
    if entries:
        print(f"{'shape@threads':>22}  {'library':8} {'openblas us':>12} {'mkl us':>10}  timed")
        for key in sorted(entries, key=lambda k: [int(v) for v in re.findall(r"\d+", k)]):
            e = entries[key] if isinstance(entries[key], dict) else {}
            print(f"{key:>22}  {str(e.get('lib', '?')):8} {_us(e.get('openblas_us')):>12} {_us(e.get('mkl_us')):>10}"
                  f"  {e.get('timed', '')}")
    elif file is not None:
        print("no choices recorded for this machine yet")
    return 0


def _us(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"
