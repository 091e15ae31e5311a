"""The one training loop (:class:`Trainer`), its task contract, and training a character LM.

:func:`train` is the API behind ``rnnlab train``: it checks the output folder
first, loads the corpus, builds the char-LM task (:mod:`rnnlab.tasks.charlm`)
and runs the loop. Other tasks build their own task object and call
:func:`run_task`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checkpoint import load_checkpoint, read_checkpoint_meta
from ..data import EncodedCorpus, Vocab
from ..errors import CheckpointError, ConfigError
from ..fast import accel
from .config import TrainConfig, load_toml
from .guard import DivergenceError
from .loopconfig import LoopConfig, validate_loop, with_new_budget
from .progress import Progress
from .runs import CONFIG, LAST, find_checkpoint, prepare_run_dir, sweep_temporaries, write_json
from .snapshot import check_model_meta
from .task import EvalInterrupted, Selection, StepOutput, Task
from .trainer import Trainer

LN2 = 0.6931471805599453


def prepare(cfg: TrainConfig) -> tuple[EncodedCorpus, tuple]:
    corpus = EncodedCorpus.from_source(cfg.corpus, data_dir=cfg.data_dir)
    splits = corpus.split(cfg.split)
    if getattr(cfg, "reverse", False):  # a backward LM: each split read from its end
        splits = tuple(np.ascontiguousarray(ids[::-1]) for ids in splits)
    return corpus, splits


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
    """Train ``task`` in ``run_dir`` (resuming from ``resume_from``); writes config.json; returns the summary."""
    sweep_temporaries(run_dir)
    trainer = trainer_cls(task, cfg, run_dir, progress=progress, log=log)
    if resume_from is not None:
        trainer.restore(resume_from)
        best = "none yet" if trainer.best is None else f"{trainer.best:.4g}"
        log(f"resumed at step {trainer.step} (best validation {task.selection.key} {best})")
    write_json(run_dir / CONFIG, {"task": task.name, **cfg.to_dict()})
    return trainer.fit()


def describe_changes(cfg: Any, defaults: Any) -> str:
    """The settings that differ from the defaults, one ``name = value`` per line."""
    base = defaults.to_dict()
    lines = [f"  {k} = {v!r}" for k, v in cfg.to_dict().items() if base.get(k) != v]
    return "\n".join(lines) if lines else "  (all defaults)"


def train(cfg: TrainConfig, out: str | None = None, resume: str | None = None,
          log: Callable[[str], None] = print, progress: Progress | None = None,
          force: bool = False) -> dict:
    """Train (or resume) a character LM; returns a summary dict. The API behind ``rnnlab train``."""
    from ..tasks.charlm import CharLMTask

    ckpt = None
    if resume:
        ckpt, meta = resume_checkpoint(resume, "charlm")
        check_model_meta(load_checkpoint(ckpt)[0], meta, str(ckpt))  # sizes checked before building anything
        given = {k: getattr(cfg, k) for k in ("max_steps", "max_minutes", "patience")}
        cfg = TrainConfig.from_dict(with_new_budget(meta["config"], given))
        run_dir = ckpt.parent
    else:
        run_dir = prepare_run_dir(out, force=force)  # before the corpus is read: fail fast on a bad --out
    cfg.validate()
    corpus, (train_ids, val_ids, _) = prepare(cfg)
    if ckpt is not None and Vocab.from_dict(meta["vocab"]) != corpus.vocab:
        raise CheckpointError(f"{ckpt}: the checkpoint's vocabulary differs from this corpus's")
    log(f"rnnlab train: {corpus!r}\nrun folder: {run_dir}\nsettings (changed from the defaults; all of them "
        f"in {run_dir / CONFIG}):\n{describe_changes(cfg, TrainConfig().validate())}")
    task = CharLMTask(cfg, corpus.vocab, train_ids, val_ids)
    if progress is None:
        progress = Progress(loss_label=lambda loss: f"loss {loss:.3f}  {loss / LN2:.3f} bits/char")
    summary = run_task(task, cfg, run_dir, resume_from=ckpt, log=log, progress=progress)
    summary["best_val_loss"] = summary["best"] if summary["best"] is not None else float("inf")
    summary["best_val_bpc"] = summary["best_val_loss"] / LN2
    log(f"done ({summary['stop']}): {summary['steps']} steps in {summary['elapsed_s']:.0f}s of training; "
        f"best validation {summary['best_val_bpc']:.4f} bits/char; checkpoints in {run_dir}; "
        f"element-wise steps: {accel.describe()}")
    return summary


__all__ = ["ConfigError", "DivergenceError", "EvalInterrupted", "LoopConfig", "Progress", "Selection",
           "StepOutput", "Task", "TrainConfig", "Trainer", "describe_changes", "load_toml", "prepare",
           "resume_checkpoint", "run_task", "train", "validate_loop"]
