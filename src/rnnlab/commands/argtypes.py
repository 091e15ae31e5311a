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


def name_list(text: str, allowed: tuple[str, ...] | None = None, what: str = "names") -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; with ``allowed``, every name must be one of them."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if allowed is not None and n not in allowed]
    if not names or bad:
        choices = f" from {', '.join(allowed)}" if allowed else ""
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}{choices}, got {text!r}")
    return names


# Help for the training loop's own flags (rnnlab.train.loopconfig), the same for every task's train command.
LOOP_HELP = {
    "optimizer": "sgd, adagrad, rmsprop, adam or adamw",
    "lr": "learning rate",
    "weight_decay": "L2 weight decay (decoupled for adamw)",
    "momentum": "momentum for sgd and rmsprop",
    "clip": "clip the global gradient norm to this value; 0 disables",
    "clip_value": "clip each gradient entry to +-this value; 0 disables",
    "schedule": "learning-rate schedule: constant, step, cosine, or auto (cosine to min-lr over --max-steps or "
                "--max-minutes when one is set, else constant)",
    "warmup_steps": "linear learning-rate warm-up steps",
    "lr_step_size": "steps between decays of the 'step' schedule",
    "lr_gamma": "decay factor of the 'step' schedule",
    "min_lr": "final learning rate of the 'cosine' schedule",
    "max_steps": "stop after this many steps; 0: no limit",
    "max_minutes": "training-time budget in minutes (evaluation and saving excluded); 0: no limit",
    "patience": "stop after N evaluations without improvement; 0: never",
    "log_every": "log training metrics every N steps",
    "guard": "on a non-finite or exploding step: abort, skip or backoff",
    "diagnostics": "log hidden-state and gradient statistics per layer",
    "seed": "random seed for initialisation, dropout and batching",
}
