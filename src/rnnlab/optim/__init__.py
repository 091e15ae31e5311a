"""Optimizers, gradient clipping and learning-rate schedules (NumPy only).

Optimizers take ``Module.named_parameters()`` and update the parameters in
place; their ``state_dict()`` holds only arrays and JSON scalars.
"""
from __future__ import annotations

from typing import Any, Iterable

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .base import Optimizer, ParamTriple
from .clip import clip_grad_norm, clip_grad_value, global_grad_norm
from .rmsprop import RMSprop
from .schedules import SCHEDULES, Constant, Cosine, Schedule, StepDecay, Warmup, constant, make_schedule
from .sgd import SGD

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def make_optimizer(name: str, params: Iterable[ParamTriple], **kw: Any) -> Optimizer:
    """Build an optimizer by (case-insensitive) name, e.g. ``make_optimizer("adam", model.named_parameters(), lr=2e-3)``."""
    cls = OPTIMIZERS.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return cls(params, **kw)


__all__ = [
    "Optimizer", "ParamTriple", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
    "OPTIMIZERS", "make_optimizer",
    "clip_grad_norm", "clip_grad_value", "global_grad_norm",
    "Schedule", "Constant", "constant", "StepDecay", "Cosine", "Warmup", "SCHEDULES", "make_schedule",
]
