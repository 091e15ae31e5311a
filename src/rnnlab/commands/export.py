"""``rnnlab export RUN --torch out.pt``: the model as a PyTorch state dict, vocabulary and config."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to PyTorch (.pt)",
                       description="Write a .pt file holding a state dict for rnnlab.torch_model.TorchCharLM "
                                   "plus the vocabulary and config. Load it with torch.load(path, "
                                   "weights_only=True); TorchCharLM(ckpt['config']) rebuilds the module.")
    p.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or a checkpoint .npz")
    p.add_argument("--torch", required=True, metavar="OUT.pt", help="the .pt file to write")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of a run folder to use (default: best)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import load_run
    from ..errors import ConfigError
    from ..torch_model import export_torch

    from ..train.runs import check_out_file

    check_out_file(args.torch, "--torch")  # before loading anything
    loaded = load_run(args.run_path, args.checkpoint)
    try:
        path = export_torch(args.torch, loaded.model, loaded.vocab, loaded.meta.get("config"))
    except OSError as exc:
        raise ConfigError(f"--torch {args.torch}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {path} ({loaded.model.num_parameters():,} parameters, from {loaded.path})")
    return 0
