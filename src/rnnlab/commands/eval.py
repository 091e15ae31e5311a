"""``rnnlab eval RUN``: bits per character and perplexity of a text, or of the run's own split."""
from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a text: bits per character and perplexity",
                       description="Score a UTF-8 text file (--text) or the run's own validation/test split "
                                   "(--split) with a trained model.")
    p.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or a checkpoint .npz")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", metavar="FILE", help="UTF-8 text file (or folder) to score")
    what.add_argument("--split", choices=("train", "val", "test"), help="the run's own corpus split")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of a run folder to use (default: best)")
    p.add_argument("--batch-size", type=int, default=None, dest="batch_size",
                   help="parallel streams, each scored from a zero state (default: the run's batch size; "
                        "1 scores the text as one stream)")
    p.add_argument("--seq-len", type=int, default=None, dest="seq_len",
                   help="characters per chunk (default: the run's seq_len)")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import encode_text, load_run, score_ids, split_of_run
    from ..data import load_text
    from ..errors import ConfigError

    loaded = load_run(args.run_path, args.checkpoint)
    cfg = loaded.meta.get("config") or {}
    batch_size = args.batch_size if args.batch_size is not None else cfg.get("batch_size", 64)
    seq_len = args.seq_len if args.seq_len is not None else cfg.get("seq_len", 100)
    if batch_size < 1 or seq_len < 1:
        raise ConfigError("--batch-size and --seq-len must be at least 1")
    if args.text:
        ids, name = encode_text(loaded.vocab, load_text(args.text), args.text), args.text
        scores = score_ids(loaded.model, ids, batch_size, seq_len)
    else:
        ids, name = split_of_run(loaded.meta, args.split, loaded.vocab), f"{args.split} split"
        # the run's own layout, unshrunk: reproduces the validation numbers the trainer logged
        scores = score_ids(loaded.model, ids, batch_size, seq_len, shrink=False)
    if args.json:
        print(json.dumps({"source": name, "checkpoint": str(loaded.path), **scores}))
    else:
        print(f"{name}: {scores['bits_per_char']:.4f} bits/char, perplexity {scores['perplexity']:.3f} "
              f"({scores['nats_per_char']:.4f} nats/char; {scores['chars']:,} characters scored "
              f"in {scores['batch_size']} stream(s); {loaded.path})")
    return 0
