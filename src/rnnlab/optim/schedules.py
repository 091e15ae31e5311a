"""Learning-rate schedules: small callables mapping a step index to a rate.

``sched(step)`` is a pure function of the 0-based step (no internal counter),
so resuming from a checkpoint needs nothing but the step. A trainer does
``optimizer.lr = sched(step)`` before each update. The values agree with
``torch.optim.lr_scheduler`` where the two correspond: ``StepDecay`` with
``StepLR`` and ``Cosine`` with ``CosineAnnealingLR`` (for steps up to
``total_steps``), with torch's ``last_epoch`` as ``step``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

Schedule = Callable[[int], float]


def _check_step(step: int) -> int:
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step


class Constant:
    """The same rate at every step."""

    def __init__(self, lr0: float) -> None:
        self.lr0 = float(lr0)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return self.lr0

    def __repr__(self) -> str:
        return f"Constant({self.lr0})"


constant = Constant


class StepDecay:
    """``lr0 * gamma ** (step // step_size)``: multiply by gamma every step_size steps."""

    def __init__(self, lr0: float, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.lr0, self.step_size, self.gamma = float(lr0), int(step_size), float(gamma)

    def __call__(self, step: int) -> float:
        return self.lr0 * self.gamma ** (_check_step(step) // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay({self.lr0}, step_size={self.step_size}, gamma={self.gamma})"


class Cosine:
    """Half-cosine from lr0 down to min_lr over total_steps (Loshchilov & Hutter 2017).

    Unlike torch's periodic ``CosineAnnealingLR``, the rate stays at
    ``min_lr`` after ``total_steps`` instead of rising again.
    """

    def __init__(self, lr0: float, total_steps: int, min_lr: float = 0.0) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.lr0, self.total_steps, self.min_lr = float(lr0), int(total_steps), float(min_lr)

    def __call__(self, step: int) -> float:
        progress = min(_check_step(step), self.total_steps) / self.total_steps
        return self.min_lr + (self.lr0 - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0

    def __repr__(self) -> str:
        return f"Cosine({self.lr0}, total_steps={self.total_steps}, min_lr={self.min_lr})"


class Warmup:
    """Linear warm-up to ``schedule(0)``, then ``schedule`` with its clock restarted.

    Step ``s < warmup_steps`` gets ``schedule(0) * (s + 1) / warmup_steps``
    (never 0, so no update is wasted); step ``s >= warmup_steps`` gets
    ``schedule(s - warmup_steps)``. The warm-up part equals torch's
    ``LinearLR(start_factor=1/warmup_steps, total_iters=warmup_steps - 1)``.
    """

    def __init__(self, schedule: Schedule, warmup_steps: int) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.schedule, self.warmup_steps = schedule, int(warmup_steps)

    def __call__(self, step: int) -> float:
        if _check_step(step) < self.warmup_steps:
            return self.schedule(0) * (step + 1) / self.warmup_steps
        return self.schedule(step - self.warmup_steps)

    def __repr__(self) -> str:
        return f"Warmup({self.schedule!r}, warmup_steps={self.warmup_steps})"


def _step(lr: float, step_size: int, gamma: float = 0.1, total_steps: int | None = None) -> Schedule:
    return StepDecay(lr, step_size, gamma)


def _cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    return Cosine(lr, total_steps, min_lr)


def _constant(lr: float, total_steps: int | None = None) -> Schedule:
    return Constant(lr)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": _constant,
    "step": _step,
    "cosine": _cosine,
}


def make_schedule(name: str, lr: float, warmup_steps: int = 0, **kw: Any) -> Schedule:
    """Build a schedule by name ("constant", "step", "cosine").

    ``warmup_steps > 0`` wraps it in :class:`Warmup`. For "cosine",
    ``total_steps`` counts the whole run, warm-up included, so the cosine
    itself spans ``total_steps - warmup_steps`` steps and ends on time.
    ``total_steps`` is accepted (and ignored) by the other schedules so a
    trainer can always pass it.
    """
    key = name.lower()
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    if key == "cosine" and warmup_steps:
        if "total_steps" not in kw:
            raise ValueError("the cosine schedule needs total_steps")
        if kw["total_steps"] <= warmup_steps:
            raise ValueError("total_steps must exceed warmup_steps")
        kw["total_steps"] -= warmup_steps
    sched = SCHEDULES[key](lr, **kw)
    return Warmup(sched, warmup_steps) if warmup_steps else sched
