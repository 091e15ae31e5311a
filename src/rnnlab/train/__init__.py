"""Training a character language model: config, loop, guard, checkpoints, run folders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..checkpoint import read_checkpoint_meta
from ..data import EncodedCorpus
from ..errors import CheckpointError, ConfigError
from ..fast import accel
from .config import TrainConfig, load_toml
from .guard import DivergenceError
from .progress import Progress
from .runs import CONFIG, LAST, find_checkpoint, new_run_dir
from .trainer import Trainer, evaluate, model_config


def prepare(cfg: TrainConfig) -> tuple[EncodedCorpus, tuple]:
    corpus = EncodedCorpus.from_source(cfg.corpus, data_dir=cfg.data_dir)
    return corpus, corpus.split(cfg.split)


def train(cfg: TrainConfig, out: str | None = None, resume: str | None = None,
          log: Callable[[str], None] = print, progress: Progress | None = None) -> dict:
    """Train (or resume) a run; returns a summary dict. The API behind ``rnnlab train``."""
    if resume:
        run_dir = Path(resume)
        ckpt = find_checkpoint(run_dir, prefer=LAST)
        resume = str(ckpt.parent)
        meta = read_checkpoint_meta(ckpt)
        saved = meta.get("config")
        if "optimizer" not in meta or "trainer" not in meta:
            raise CheckpointError(f"{ckpt} holds model weights only (no optimizer or data position), so it "
                                  "cannot be resumed exactly; train a new run instead")
        if not isinstance(saved, dict):
            raise CheckpointError(f"{ckpt} holds no training configuration; cannot resume from it")
        # Budget settings may change on resume; everything else must match the run.
        budget = {k: getattr(cfg, k) for k in ("max_steps", "max_minutes", "patience")}
        cfg = TrainConfig.from_dict(saved).replace(**{k: v for k, v in budget.items() if v})
    cfg.validate()
    corpus, (train_ids, val_ids, _) = prepare(cfg)
    run_dir = Path(resume) if resume else new_run_dir(out)
    log(f"rnnlab train: {corpus!r}\nrun folder: {run_dir}\nconfig:\n{cfg.describe()}")
    trainer = Trainer(cfg, corpus.vocab, train_ids, val_ids, run_dir, progress=progress, log=log)
    log(f"model: {trainer.model.num_parameters():,} parameters; element-wise steps: {accel.describe()}")
    if resume:
        trainer.restore(ckpt)
        log(f"resumed at step {trainer.step} (best validation {trainer.best_val / 0.6931471805599453:.4f} bits/char)")
    (run_dir / CONFIG).write_text(json.dumps(cfg.to_dict(), indent=2))
    summary = trainer.fit()
    log(f"done ({summary['stop']}): {summary['steps']} steps in {summary['elapsed_s']:.0f}s; "
        f"best validation {summary['best_val_bpc']:.4f} bits/char; checkpoints in {run_dir}")
    return summary


__all__ = ["ConfigError", "DivergenceError", "Progress", "TrainConfig", "Trainer", "evaluate", "load_toml",
           "model_config", "prepare", "train"]
