"""Training a character language model: the API behind ``rnnlab train``.

:func:`train` checks the output folder first, loads the corpus, builds the char-LM
task (:class:`~rnnlab.tasks.charlm.task.CharLMTask`) and runs the one training loop.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...blas import precision
from ...checkpoint import load_checkpoint
from ...data import EncodedCorpus, Vocab
from ...errors import CheckpointError
from ...fast import accel
from ...train import describe_changes, run_task
from ...train.job import Job, open_job
from ...train.loopconfig import BUDGET_FIELDS
from ...train.progress import Progress
from ...train.runs import CONFIG
from .config import TrainConfig
from .packing import check_model_meta
from .task import CharLMTask

LN2 = 0.6931471805599453


def prepare(cfg: TrainConfig) -> tuple[EncodedCorpus, tuple]:
    corpus = EncodedCorpus.from_source(cfg.corpus, data_dir=cfg.data_dir)
    splits = corpus.split(cfg.split)
    if getattr(cfg, "reverse", False):  # a backward LM: each split read from its end
        splits = tuple(np.ascontiguousarray(ids[::-1]) for ids in splits)
    return corpus, splits


def train(cfg: TrainConfig, out: str | None = None, resume: str | None = None,
          log: Callable[[str], None] = print, progress: Progress | None = None,
          force: bool = False, given: dict | None = None) -> dict:
    """Train (or resume) a character LM; returns a summary dict. The API behind ``rnnlab train``.

    On resume the run's own settings stand; ``given`` holds those the user gave: budget ones
    replace the run's budget, ``data_dir`` its data folder, others must equal the run's
    (:func:`~rnnlab.train.job.resumed_config`). ``given=None`` (the API) takes the budget fields
    of ``cfg`` that differ from the defaults."""
    if given is None:  # the API: budget fields of cfg that differ from the defaults count as given
        given = {k: getattr(cfg, k) for k in BUDGET_FIELDS if getattr(cfg, k) != getattr(TrainConfig(), k)}
    with open_job("charlm", TrainConfig, cfg, out=out, resume=resume, force=force, given=given) as job:
        return _train(job, log, progress)


def _train(job: Job, log: Callable[[str], None], progress: Progress | None) -> dict:
    cfg, ckpt, meta, run_dir = job.cfg, job.ckpt, job.meta, job.run_dir
    if ckpt is not None:
        check_model_meta(load_checkpoint(ckpt)[0], meta, str(ckpt))  # sizes checked before building anything
    cfg.validate()
    precision.check(cfg.precision)   # one line naming the missing CPU feature or package, before any work
    corpus, (train_ids, val_ids, _) = prepare(cfg)
    if ckpt is not None and Vocab.from_dict(meta["vocab"]) != corpus.vocab:
        raise CheckpointError(f"{ckpt}: the checkpoint's vocabulary differs from this corpus's")
    log(f"rnnlab train: {corpus!r}\nrun folder: {run_dir}\nsettings (changed from the defaults; all of them "
        f"in {run_dir / CONFIG}):\n{describe_changes(cfg, TrainConfig().validate())}")
    task = CharLMTask(cfg, corpus.vocab, train_ids, val_ids)
    if progress is None:
        progress = Progress(loss_label=lambda loss: f"loss {loss:.3f}  {loss / LN2:.3f} bits/char")
    with precision.use(cfg.precision):
        summary = run_task(task, cfg, run_dir, resume_from=ckpt, log=log, progress=progress)
    summary["best_val_loss"] = summary["best"] if summary["best"] is not None else float("inf")
    summary["best_val_bpc"] = summary["best_val_loss"] / LN2
    log(f"done ({summary['stop']}): {summary['steps']} steps in {summary['elapsed_s']:.0f}s of training; "
        f"best validation {summary['best_val_bpc']:.4f} bits/char; checkpoints in {run_dir}; "
        f"element-wise steps: {accel.describe()}")
    return summary
