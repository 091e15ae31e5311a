"""Argument types shared by the commands: one wording for every flag's "expected ..." message."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def name_list(text: str, allowed: tuple[str, ...] | None = None, what: str = "names") -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; with ``allowed``, every name must be one of them."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if allowed is not None and n not in allowed]
    if not names or bad:
        choices = f" from {', '.join(allowed)}" if allowed else ""
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}{choices}, got {text!r}")
    return names
