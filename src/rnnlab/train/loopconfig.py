"""The training loop's own settings, shared by every task.

:class:`LoopConfig` lists what :class:`~rnnlab.train.trainer.Trainer` reads
from a configuration: optimizer, schedule, clipping, guard, budgets and
bookkeeping. A task's configuration either subclasses it (the studies, the
tagger...) or, like the char-LM's :class:`~rnnlab.train.config.TrainConfig`,
has fields of the same names; the trainer reads them by name.

Budgets and the schedule
------------------------
``max_steps`` and ``max_minutes`` bound a run (0: no bound); the minutes count
training only (evaluation and checkpoint writing excluded). With
``schedule="auto"`` the rate follows a cosine from ``lr`` to ``min_lr`` over the
budget (over the steps when a step budget is set, else over the training
time). Resuming a run with a new budget (``--resume RUN --max-steps N``)
replaces the old budget, and the schedule is planned over the new total as if
it had been set from the start: the rate continues from the value the longer
schedule has at the current step, so extending a finished 10,000-step run to
20,000 resumes at about half the peak rate, not at the peak and not at the
final rate. Resuming without budget flags keeps the run's own budget.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..optim import OPTIMIZERS, SCHEDULES

GUARD_POLICIES = ("abort", "skip", "backoff")
BUDGET_FIELDS = ("max_steps", "max_minutes", "patience")


@dataclass
class LoopConfig:
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    clip: float = 1.0                  # global gradient-norm threshold; 0 disables
    clip_value: float = 0.0            # element-wise clip; 0 disables
    schedule: str = "constant"         # constant, step, cosine, auto
    warmup_steps: int = 0
    lr_step_size: int = 1000
    lr_gamma: float = 0.5
    min_lr: float = 0.0
    max_steps: int = 1000              # 0: no step limit
    max_minutes: float = 0.0           # 0: no time limit (training time, evaluation excluded)
    eval_every: int = 100
    patience: int = 0                  # evaluations without improvement before stopping; 0: never
    log_every: int = 10
    guard: str = "backoff"
    diagnostics: bool = False
    seed: int = 0

    def validate(self) -> "LoopConfig":
        validate_loop(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "LoopConfig":
        return dataclasses.replace(self, **changes)


def validate_loop(cfg: Any) -> None:
    """Check the loop fields of any config object (and resolve ``schedule="auto"``)."""
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown --optimizer {cfg.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if cfg.schedule == "auto":
        cfg.schedule = "cosine" if (cfg.max_steps or cfg.max_minutes) else "constant"
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"unknown --schedule {cfg.schedule!r}; choose from auto, {', '.join(SCHEDULES)}")
    if cfg.guard not in GUARD_POLICIES:
        raise ConfigError(f"unknown --guard policy {cfg.guard!r}; choose from {', '.join(GUARD_POLICIES)}")
    for name in ("eval_every", "log_every"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    for name in ("max_steps", "patience", "warmup_steps"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise ConfigError(f"--lr must be a positive number, got {cfg.lr}")
    if cfg.schedule == "cosine" and not (cfg.max_steps or cfg.max_minutes):
        raise ConfigError("the cosine schedule anneals over the run: set --max-steps or --max-minutes")
    if cfg.schedule == "cosine" and cfg.max_steps and cfg.warmup_steps >= cfg.max_steps:
        raise ConfigError(f"--warmup-steps ({cfg.warmup_steps}) must be below --max-steps ({cfg.max_steps}) "
                          "for the cosine schedule to anneal after it")
    if cfg.clip < 0 or cfg.clip_value < 0 or cfg.max_minutes < 0:
        raise ConfigError("--clip, --clip-value and --max-minutes must be >= 0")


def with_new_budget(saved: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the budget flags given on resume.

    Any budget given replaces the saved budget as a whole (``--max-steps N``
    after a run that stopped on ``--max-minutes`` trains to step N, with no time
    limit); with none given the saved budget stands.
    """
    given = {k: v for k, v in given.items() if k in BUDGET_FIELDS and v is not None}
    if not given:
        return dict(saved)
    out = dict(saved)
    if "max_steps" in given or "max_minutes" in given:
        out["max_steps"], out["max_minutes"] = 0, 0.0
    out.update(given)
    return out
