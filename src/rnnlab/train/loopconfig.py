"""The training loop's own settings, shared by every task.

:class:`LoopConfig` lists what :class:`~rnnlab.train.trainer.Trainer` reads
from a configuration: optimizer, schedule, clipping, guard, budgets and
bookkeeping. A task's configuration subclasses it (the char-LM's
:class:`~rnnlab.tasks.charlm.config.TrainConfig`, the tagger's, the forecaster's...),
setting its own defaults where they differ; the trainer reads the fields by name.

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
from dataclasses import dataclass, field
from typing import Any

from ..blas.precision import PRECISIONS
from ..errors import ConfigError
from ..optim import OPTIMIZERS, SCHEDULES

GUARD_POLICIES = ("abort", "skip", "backoff")
BUDGET_FIELDS = ("max_steps", "max_minutes", "patience")


def _opt(default: Any, help: str) -> Any:
    """A field whose help a command shows (rnnlab.commands.configflags reads the metadata)."""
    return field(default=default, metadata={"help": help})


@dataclass
class LoopConfig:
    optimizer: str = _opt("adam", "sgd, adagrad, rmsprop, adam or adamw")
    lr: float = _opt(1e-3, "learning rate")
    weight_decay: float = _opt(0.0, "L2 weight decay (decoupled for adamw)")
    momentum: float = _opt(0.0, "momentum for sgd and rmsprop")
    clip: float = _opt(1.0, "clip the global gradient norm to this value; 0 disables")
    clip_value: float = _opt(0.0, "clip each gradient entry to +-this value; 0 disables")
    schedule: str = _opt("constant", "learning-rate schedule: constant, step, cosine, or auto (cosine to min-lr over "
                                     "--max-steps or --max-minutes when one is set, else constant)")
    warmup_steps: int = _opt(0, "linear learning-rate warm-up steps")
    lr_step_size: int = _opt(1000, "steps between decays of the 'step' schedule")
    lr_gamma: float = _opt(0.5, "decay factor of the 'step' schedule")
    min_lr: float = _opt(0.0, "final learning rate of the 'cosine' schedule")
    max_steps: int = _opt(1000, "stop after this many steps; 0: no limit")
    max_minutes: float = _opt(0.0, "training-time budget in minutes (evaluation and saving excluded); 0: no limit")
    eval_every: int = _opt(100, "evaluate on the validation split every N steps")
    patience: int = _opt(0, "stop after N evaluations without improvement; 0: never")
    log_every: int = _opt(10, "log training metrics every N steps")
    guard: str = _opt("backoff", "on a non-finite or exploding step: abort, skip or backoff")
    diagnostics: bool = _opt(False, "log hidden-state and gradient statistics per layer")
    average: float = _opt(0.0, "keep a moving average of the weights with this decay (e.g. 0.999; 0: off); each "
                               "evaluation scores the current and the averaged weights, and best.npz keeps the "
                               "set that wins on validation")
    seed: int = _opt(0, "random seed for initialisation, dropout and batching")
    precision: str = _opt("fp32", "fp32, or bf16: matrix products with bf16 inputs and fp32 accumulation (oneMKL; "
                                  "LSTM and GRU layers; needs a CPU with AVX512_BF16 or AMX and pip install "
                                  "'rnnlab[mkl]'); weights, optimizer and the rest stay fp32")

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
    if getattr(cfg, "precision", "fp32") not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
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
    if not 0.0 <= getattr(cfg, "average", 0.0) < 1.0:
        raise ConfigError(f"--average must be in [0, 1) (a decay such as 0.999; 0: off), got {cfg.average}")
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
