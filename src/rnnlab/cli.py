"""The ``rnnlab`` command: one subcommand per module in :mod:`rnnlab.commands`.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
User errors (:class:`rnnlab.errors.RnnlabError`) are printed as one line,
``error: ...``, with exit status 2 — never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import RnnlabError

COMMANDS = ["train", "sample", "eval", "export", "import_", "plot", "gradcheck", "experiment"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Recurrent neural networks from scratch in NumPy: train, sample, evaluate, check.")
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"rnnlab.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except RnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
