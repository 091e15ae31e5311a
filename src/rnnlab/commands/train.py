"""``rnnlab train [TEXT]``: train a character language model."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from .configflags import add_config_flags as _add_flags


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions, got {len(parts)}")
    return parts  # type: ignore[return-value]


def _parse_json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, defaults and help from the dataclass; unset flags stay None
    so TOML/defaults apply (and on --resume, the run's own settings)."""
    from ..tasks.charlm.config import TrainConfig

    _add_flags(p, TrainConfig, skip=("corpus",), types={"split": _parse_split, "cell_options": _parse_json})


def resolve_config(args: argparse.Namespace):
    return resolve_settings(args)[0]


def resolve_settings(args: argparse.Namespace):
    """``(config, given)``: the config of a new run (defaults < TOML < flags, cell presets where
    nothing was set) and the settings the user gave (TOML and flags), which on ``--resume`` are
    the only ones that may replace the run's own."""
    from ..tasks.charlm.config import TrainConfig, load_toml

    data = load_toml(args.config) if args.config else {}
    cfg = TrainConfig.from_dict(data)
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if getattr(args, "text", None):
        flags["corpus"] = args.text
    if getattr(args, "identity_scale", None) is not None:
        flags["cell_options"] = {**flags.get("cell_options", cfg.cell_options), "identity_scale": args.identity_scale}
    cell = flags.get("cell", data.get("cell", cfg.cell))
    preset = {k: v for k, v in CELL_PRESETS.get(cell, {}).items() if k not in flags and k not in data}
    if preset and not getattr(args, "resume", None):
        print(f"note: --cell {cell} trains with its own defaults unless given: "
              + ", ".join(f"--{k.replace('_', '-')} {_flag_value(v)}" for k, v in preset.items()),
              file=sys.stderr)
        flags.update(preset)
    given = {**data, **{k: v for k, v in flags.items() if k not in preset}}
    return cfg.replace(**flags).validate(), given


def _flag_value(v) -> str:
    """A preset value as it would be typed on the command line."""
    if isinstance(v, dict):
        return f"'{json.dumps(v)}'"
    return f"{v:g}" if isinstance(v, float) else str(v)


# Defaults that differ by cell, applied where the user set nothing. The IRNN with Adam at lr 2e-3, clipping
# at 5 and the full identity moves every entry of its recurrence at once (a perturbation of norm up to
# H*lr) and its carried state blows up; plain SGD (lr 0.05, clip 1, identity 0.9) is stable but stays at
# the unigram level for 30 minutes at 2 x 1024. Adam at 1e-3 with 30 warm-up steps, clipping at 1 and a
# half identity trains, stably and fast (docs/charlm.md, "The thread's configuration").
CELL_PRESETS: dict[str, dict] = {
    "irnn": {"optimizer": "adam", "lr": 1e-3, "clip": 1.0, "warmup_steps": 30,
             "cell_options": {"identity_scale": 0.5}},
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a character-level language model",
                       description="Train a character-level language model on a text file, a folder of text "
                                   "files, a named dataset (nietzsche, tinyshakespeare), or by default the "
                                   "Python standard library's own source.")
    p.add_argument("text", nargs="?", help="text file, folder, or dataset name (default: embedded stdlib corpus)")
    p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (flags override it)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>, with runs/latest)")
    p.add_argument("--resume", metavar="RUN",
                   help="continue a run exactly where it stopped (Ctrl-C, SIGTERM, kill or a budget). Without "
                        "budget flags the run's own budget stands; --max-steps/--max-minutes given here replace "
                        "it, and the cosine schedule is re-planned over the new total as if it had been set from "
                        "the start (the rate continues from the longer schedule's value at the current step); other "
                        "settings given (flags or --config) must be the run's own")
    p.add_argument("--force", action="store_true",
                   help="train into an --out folder that already holds a run, deleting that run's checkpoints "
                        "and metrics (without it such a folder is refused)")
    p.add_argument("--identity-scale", type=float, dest="identity_scale",
                   help="IRNN: scale of the identity recurrent matrix (default 1.0)")
    add_config_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..tasks.charlm import train

    cfg, given = resolve_settings(args)
    summary = train(cfg, out=args.out, resume=args.resume, force=args.force, given=given)
    if summary["exit_code"]:
        return summary["exit_code"]    # 130 after Ctrl-C, 143 after SIGTERM: scripts can tell
    return 0 if summary["steps"] > 0 else 1
