"""``rnnlab eval RUN``: bits per character and perplexity of a text, or of the run's own split."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..data.vocab import UNKNOWN_POLICIES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a text: bits per character and perplexity",
                       description="Score a UTF-8 text file (--text) or the run's own validation/test split "
                                   "(--split) with a trained model.")
    p.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or a checkpoint .npz")
    what = p.add_mutually_exclusive_group()  # one of them for a char-LM run; runs of other tasks need neither
    what.add_argument("--text", metavar="FILE", help="UTF-8 text file (or folder) to score")
    what.add_argument("--split", choices=("train", "val", "test"), help="the run's own corpus split")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of a run folder to use (default: best)")
    p.add_argument("--batch-size", type=int, default=None, dest="batch_size",
                   help="parallel streams, each scored from a zero state (default: the run's batch size; "
                        "1 scores the text as one stream)")
    p.add_argument("--seq-len", type=int, default=None, dest="seq_len",
                   help="characters per chunk (default: the run's seq_len)")
    p.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="error",
                   help="characters the model never saw: error (stop and name them; the default), skip (leave "
                        "them out) or map (replace each with the vocabulary's symbol for unknown characters, "
                        "U+FFFD, where it has one); the number affected goes to stderr")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="matrix products in fp32 (default) or bf16 with fp32 accumulation (oneMKL; needs a CPU with "
                        "AVX512_BF16 or AMX and pip install 'rnnlab[mkl]')")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..api import load_run, split_of_run
    from ..blas import precision
    from ..data import load_text
    from ..errors import ConfigError, DataError
    from ..scoring import score_ids

    code = _other_task(args)
    if code is not None:
        return code
    if not (args.text or args.split):
        raise ConfigError("a char-LM run scores a text: give --text FILE or --split train|val|test")
    precision.check(args.precision)
    loaded = load_run(args.run_path, args.checkpoint)
    from ..tasks.charlm.config import check_precision_cell

    check_precision_cell(args.precision, loaded.model.config.cell)
    cfg = loaded.meta.get("config") or {}
    batch_size = args.batch_size if args.batch_size is not None else cfg.get("batch_size", 64)
    seq_len = args.seq_len if args.seq_len is not None else cfg.get("seq_len", 100)
    if args.batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if args.seq_len is not None and seq_len < 1:
        raise ConfigError(f"--seq-len must be at least 1, got {seq_len}")
    if not (isinstance(batch_size, int) and batch_size >= 1 and isinstance(seq_len, int) and seq_len >= 1):
        raise ConfigError(f"{loaded.path}: the saved batch_size/seq_len ({batch_size!r}, {seq_len!r}) are not "
                          "usable; give --batch-size and --seq-len")
    unknown = None
    if args.text:
        name = args.text
        text = load_text(args.text)
        try:
            text, unknown = loaded.vocab.resolve_unknown(text, args.unknown)
        except DataError as exc:
            hint = "; --unknown skip leaves them out, --unknown map replaces them" if args.unknown == "error" else ""
            raise DataError(f"{name}: {exc}{hint}") from None
        ids = loaded.vocab.encode(text)
        if len(ids) < 2:
            raise DataError(f"{name}: {len(ids)} character(s) left to score; need at least 2")
        with np.errstate(over="ignore", invalid="ignore"), precision.use(args.precision):  # non-finite: below
            scores = score_ids(loaded.model, ids, batch_size, seq_len)
    else:
        ids, name = split_of_run(loaded.meta, args.split, loaded.vocab), f"{args.split} split"
        # the run's own layout, unshrunk: the streams' part reproduces the validation numbers the trainer logged
        with np.errstate(over="ignore", invalid="ignore"), precision.use(args.precision):
            scores = score_ids(loaded.model, ids, batch_size, seq_len, shrink=False)
    if not math.isfinite(scores["nats_per_char"]):
        raise DataError(f"{loaded.path}: the model's predictions on {name} are not finite (NaN/inf logits: "
                        "its weights overflow); use the run's other checkpoint (--checkpoint) or an earlier run")
    if unknown is not None and unknown.count:
        print(f"note: {name}: {unknown.describe()}", file=sys.stderr)
    extra = {"unknown_policy": args.unknown, "unknown_chars": unknown.count if unknown else 0}
    if args.json:
        print(json.dumps({"source": name, "checkpoint": str(loaded.path), **scores, **extra}))
    else:
        rest = f", the last {scores['remainder']} continuing the last stream" if scores["remainder"] else ""
        print(f"{name}: {scores['bits_per_char']:.4f} bits/char, perplexity {scores['perplexity']:.3f} "
              f"({scores['nats_per_char']:.4f} nats/char; {scores['chars']:,} characters scored "
              f"in {scores['batch_size']} stream(s){rest}; {loaded.path})")
    return 0


def _other_task(args: argparse.Namespace) -> int | None:
    """Runs of other tasks are evaluated by their own command (tag eval, forecast eval); returns its
    exit status, or None for a char-LM run (or a path only the char-LM loader can explain)."""
    from ..errors import ConfigError, RnnlabError
    from ..tasks.registry import LOADERS, task_of
    from ..train.progress import MetricsLog
    from ..train.runs import METRICS

    path = args.run_path
    try:
        task = task_of(path)
    except (RnnlabError, OSError):  # not readable as a run here: the char-LM loader below says what is wrong
        return None
    if task == "charlm":
        return None
    if args.text or args.split or args.unknown != "error":
        how = LOADERS[task][2].replace("RUN", str(path)) if task in LOADERS else "its own command"
        raise ConfigError(f"{path} is a '{task}' run: --text/--split/--unknown are for char-LM runs; use {how}")
    if task == "tagging":
        from .tag import run_eval as tag_eval

        return tag_eval(argparse.Namespace(run_path=path, data=None, data_dir=None, output=None))
    if task == "forecast":
        from .forecast import run_eval as forecast_eval

        return forecast_eval(argparse.Namespace(runs=[path], series=None, origins=5, data_dir=None, stat=False,
                                                plot=None, json=None))
    rows = [r for r in MetricsLog(Path(path) / METRICS).read() if r.get("split") == "val"]
    if not rows:
        raise ConfigError(f"{path} is a '{task}' run with no validation metrics yet")
    last = rows[-1]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float) and k not in ("time", "elapsed"))
    print(f"{path}: '{task}' run, last validation at step {last['step']}: {shown}")
    return 0
