"""``rnnlab import MODEL.pt --out RUN``: a PyTorch export back into an rnnlab run folder."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a PyTorch export (.pt) as an rnnlab run",
                       description="Read a .pt written by `rnnlab export --torch` (or built the same way) "
                                   "and write best.npz and config.json into a run folder.")
    p.add_argument("model", metavar="MODEL.pt", help="the .pt file")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import save_model, train_config_for
    from ..errors import ConfigError
    from ..torch_model import import_torch
    from ..tasks.charlm.config import TrainConfig
    from ..train.runs import BEST, CONFIG, new_run_dir, write_json

    model, vocab, train_config = import_torch(args.model)
    # config.json as `rnnlab train` writes it; without the original, the model settings on defaults
    cfg = TrainConfig.from_dict(train_config) if train_config else train_config_for(model.config)
    try:
        run_dir = new_run_dir(args.out)
        path = save_model(run_dir / BEST, model, vocab, train_config)
        write_json(run_dir / CONFIG, {"task": "charlm", **cfg.to_dict()})
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot write the run folder: {exc.strerror or exc}") from None
    print(f"wrote {path} ({model.num_parameters():,} parameters, vocabulary of {len(vocab)})")
    return 0
