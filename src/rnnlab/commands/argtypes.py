"""Argument types shared by the commands: one wording for every flag's "expected ..." message."""
from __future__ import annotations

import argparse


def _number(text: str, kind: type, ok, must: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {must}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "at least 1")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "positive")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v < float("inf"), "a finite number >= 0")


def probability(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v <= 1, "a number from 0 to 1")


def name_list(text: str, allowed: tuple[str, ...] | None = None, what: str = "names") -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; with ``allowed``, every name must be one of them."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if allowed is not None and n not in allowed]
    if not names or bad:
        choices = f" from {', '.join(allowed)}" if allowed else ""
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}{choices}, got {text!r}")
    return names


def _loop_help() -> dict[str, str]:
    import dataclasses

    from ..train.loopconfig import LoopConfig

    return {f.name: f.metadata["help"] for f in dataclasses.fields(LoopConfig)}


# Help for the training loop's own flags (the metadata of rnnlab.train.loopconfig.LoopConfig's fields),
# the same for every task's train command.
LOOP_HELP = _loop_help()
