"""The one training loop (:class:`Trainer`), its task contract, and running a task in a run folder.

A task builds its task object and calls :func:`run_task`. Training a character LM
(``rnnlab.train.train``, the API behind ``rnnlab train``) now lives in
:mod:`rnnlab.tasks.charlm.api`, its ``TrainConfig`` in :mod:`rnnlab.tasks.charlm.config`; the
old names ``train``, ``prepare``, ``TrainConfig`` and ``load_toml`` still resolve here (the loop
knows nothing of tasks, so they are looked up lazily).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..blas import choice as blas_choice
from ..blas import precision
from ..checkpoint import read_checkpoint_meta
from ..errors import CheckpointError, ConfigError
from .guard import DivergenceError
from .loopconfig import LoopConfig, validate_loop
from .progress import Progress
from .runs import CONFIG, LAST, find_checkpoint, sweep_temporaries, write_json
from .task import EvalInterrupted, Selection, StepOutput, Task
from .trainer import Trainer


def resume_checkpoint(resume: str | Path, task_name: str) -> tuple[Path, dict]:
    """The checkpoint to resume a run from (its ``last.npz``), and its metadata; clear errors otherwise."""
    ckpt = find_checkpoint(resume, prefer=LAST)
    meta = read_checkpoint_meta(ckpt)
    if "optimizer" not in meta or "trainer" not in meta:
        raise CheckpointError(f"{ckpt} holds model weights only (no optimizer or data position), so it "
                              "cannot be resumed exactly; train a new run instead")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{ckpt} holds no training configuration; cannot resume from it")
    saved_task = meta.get("task", "charlm")
    if saved_task != task_name:
        raise CheckpointError(f"{ckpt} is a '{saved_task}' run, not a '{task_name}' run; resume it with the "
                              f"command that trained it")
    return ckpt, meta


def run_task(task: Task, cfg: Any, run_dir: Path, *, resume_from: Path | None = None,
             log: Callable[[str], None] = print, progress: Progress | None = None,
             trainer_cls: type = Trainer) -> dict[str, Any]:
    """Train ``task`` in ``run_dir`` (resuming from ``resume_from``); writes config.json; returns the summary.

    config.json is the configuration (written first) and, once training returns, ``"blas"``: which
    library ran the step products (``RNNLAB_BLAS`` requested and each shape's choice, see
    :func:`rnnlab.blas.choice.choices`) and the precision of the products.

    ``cfg.precision`` (every task's ``--precision``): the loop, its evaluations included, runs in
    that precision (:mod:`rnnlab.blas.precision`); bf16 is checked before any work (one line naming
    the missing CPU feature or package, or the model's layers that have no bf16 time loop)."""
    name = getattr(cfg, "precision", "fp32")
    precision.check(name)
    sweep_temporaries(run_dir)
    trainer = trainer_cls(task, cfg, run_dir, progress=progress, log=log)
    if name == "bf16":
        check_bf16_layers(trainer.model)
    if resume_from is not None:
        trainer.restore(resume_from)
        best = "none yet" if trainer.best is None else f"{trainer.best:.4g}"
        log(f"resumed at step {trainer.step} (best validation {task.selection.key} {best})")
    record = {"task": task.name, **cfg.to_dict()}
    write_json(run_dir / CONFIG, record)
    with precision.use(name):
        summary = trainer.fit()
    write_json(run_dir / CONFIG, {**record, "blas": {**blas_choice.choices(), "precision": name}})
    return summary


def check_bf16_layers(model: Any) -> None:
    """:class:`ConfigError` unless every recurrent layer of ``model`` has a bf16 time loop (LSTM, GRU)."""
    from .. import fast
    from ..fast import gru, lstm
    from ..layers.recurrent import Recurrent

    other = sorted({type(m.cell).__name__ for _, m in model.modules()
                    if isinstance(m, Recurrent) and fast.KERNELS.get(type(m.cell)) not in (lstm, gru)})
    if other:
        raise ConfigError(f"--precision bf16 runs LSTM and GRU layers so far; this model also has "
                          f"{', '.join(other)}; use --precision fp32")


def describe_changes(cfg: Any, defaults: Any) -> str:
    """The settings that differ from the defaults, one ``name = value`` per line."""
    base = defaults.to_dict()
    lines = [f"  {k} = {v!r}" for k, v in cfg.to_dict().items() if base.get(k) != v]
    return "\n".join(lines) if lines else "  (all defaults)"


def __getattr__(name: str) -> Any:
    """Old import paths: ``rnnlab.train.train``, ``prepare``, ``TrainConfig`` and ``load_toml`` are the
    char-LM task's."""
    if name in ("train", "prepare", "LN2", "TrainConfig", "load_toml"):
        import importlib

        module = "api" if name in ("train", "prepare", "LN2") else "config"
        return getattr(importlib.import_module(f"rnnlab.tasks.charlm.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "DivergenceError", "EvalInterrupted", "LoopConfig", "Progress", "Selection",
           "StepOutput", "Task", "TrainConfig", "Trainer", "check_bf16_layers", "describe_changes", "load_toml",
           "resume_checkpoint", "run_task", "validate_loop"]
