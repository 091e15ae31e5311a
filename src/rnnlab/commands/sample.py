"""``rnnlab sample RUN``: generate text from a trained model, printed as it is produced."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from ..data.vocab import UNKNOWN_POLICIES

if TYPE_CHECKING:
    from ..api import LoadedRun


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate text from a trained model",
                       description="Generate text from a run's model (its best checkpoint by default). "
                                   "Characters are printed as they are generated; the speed goes to stderr.")
    p.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or a checkpoint .npz")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of a run folder to use (default: best)")
    p.add_argument("--prime", default="", help="text to start from (default: a newline)")
    p.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="error",
                   help="prime characters the model never saw: error (the default), skip (leave them out) or "
                        "map (replace each with the vocabulary's symbol for unknown characters, U+FFFD, where "
                        "it has one); the number affected goes to stderr")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default: 500)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="divide the logits by T: lower is safer, higher more varied (default: 1.0)")
    p.add_argument("--top-k", type=int, default=0, dest="top_k",
                   help="sample only among the K most likely characters; 0: all (default)")
    p.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same text")
    p.add_argument("--argmax", action="store_true", help="always take the most likely character (greedy)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="matrix products in fp32 (default) or bf16 with fp32 accumulation (oneMKL; LSTM and GRU "
                        "models; needs a CPU with AVX512_BF16 or AMX and pip install 'rnnlab[mkl]')")
    p.add_argument("--beam", type=int, default=0, metavar="K",
                   help="beam search of width K for the most probable continuation (printed at the end)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import load_run
    from ..errors import DataError

    from ..blas import precision
    from ..tasks.charlm.config import check_precision_cell

    _check_flags(args)  # before the model is read
    precision.check(args.precision)
    loaded = load_run(args.run_path, args.checkpoint)
    check_precision_cell(args.precision, loaded.model.config.cell)
    try:
        args.prime, unknown = loaded.vocab.resolve_unknown(args.prime, args.unknown)
    except DataError as exc:
        hint = "; --unknown skip leaves them out, --unknown map replaces them" if args.unknown == "error" else ""
        raise DataError(f"prime text: {exc}{hint}") from None
    if unknown.count:
        print(f"note: prime text: {unknown.describe()}", file=sys.stderr)
    start = time.perf_counter()
    # a reader that goes away (`rnnlab sample ... | head`) raises BrokenPipeError: the command line ends quietly
    count, note = _generate(args, loaded, sys.stdout)
    seconds = time.perf_counter() - start
    print(f"[{count} chars in {seconds:.2f}s: {count / max(seconds, 1e-9):,.0f} chars/s{note}; "
          f"{loaded.path}]", file=sys.stderr)
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """The numeric flags, named as typed (the library's own checks name its parameters)."""
    import math

    from ..errors import ConfigError

    if args.length < 0:
        raise ConfigError(f"--length must be >= 0, got {args.length}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise ConfigError(f"--temperature must be a positive number, got {args.temperature} "
                          "(--argmax for greedy decoding)")
    if args.top_k < 0:
        raise ConfigError(f"--top-k must be >= 0 (0: all characters), got {args.top_k}")
    if args.beam < 0:
        raise ConfigError(f"--beam must be >= 1 (0: sample instead), got {args.beam}")


def _generate(args: argparse.Namespace, loaded: "LoadedRun", out: TextIO) -> tuple[int, str]:
    """Write the prime and the generated text to ``out``; returns (characters generated, note)."""
    from .. import generate

    if args.beam:
        result = generate.beam_search(loaded.model, loaded.vocab, args.prime, args.length, args.beam,
                                      seed=args.seed, precision=args.precision)
        out.write(args.prime + result.text)
        count, note = len(result.text), f", log-probability {result.log_prob:.3f} nats"
    else:
        chars = generate.stream(loaded.model, loaded.vocab, args.prime, args.length, temperature=args.temperature,
                                top_k=args.top_k, seed=args.seed, argmax=args.argmax,
                                precision=args.precision)  # checks before printing
        out.write(args.prime)
        count, note = 0, ""
        for ch in chars:
            out.write(ch)
            out.flush()
            count += 1
    if out.isatty():
        out.write("\n")
    out.flush()
    return count, note
