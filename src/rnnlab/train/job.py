"""The job scaffold every task's training entry point shares: which folder, which settings, which
checkpoint, and the lock on the folder.

>>> with open_job("forecast", ForecastConfig, cfg, out=out, resume=resume, force=force, given=given) as job:
...     ...  # build the task from job.cfg; run_task(task, job.cfg, job.run_dir, resume_from=job.ckpt)

* ``resume=RUN``: the run's own saved settings, with only the budget flags the user gave
  (``given``) replacing its budget (:func:`~rnnlab.train.loopconfig.with_new_budget`); a flag the
  user did not give never replaces a setting, whatever the parser's default.
* otherwise a new run folder (``out``, or ``runs/<timestamp>``): a folder holding a run (a
  checkpoint) is refused unless ``force``; one left by a run that never saved a checkpoint is
  made again.
* either way the folder is locked (:class:`~rnnlab.io.lock.RunLock`) for the whole job, before
  anything in it is read or removed.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..io.lock import RunLock
from .loopconfig import BUDGET_FIELDS, with_new_budget
from .runs import check_out_dir, prepare_run_dir


@dataclass
class Job:
    run_dir: Path
    cfg: Any
    ckpt: Path | None = None
    meta: dict = field(default_factory=dict)
    lock: RunLock | None = None


def budget_given(given: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (given or {}).items() if k in BUDGET_FIELDS and v is not None}


def _run_folder(resume: str | os.PathLike) -> Path:
    path = Path(resume)
    return path.parent if path.is_file() else path


@contextlib.contextmanager
def open_job(task_name: str, config_cls: Any, cfg: Any = None, *, out: str | os.PathLike | None = None,
             resume: str | os.PathLike | None = None, force: bool = False,
             given: dict[str, Any] | None = None) -> Iterator[Job]:
    """Yield the :class:`Job` of a new or resumed run, its folder locked until the block ends."""
    from . import resume_checkpoint

    lock = None
    try:
        if resume:
            folder = _run_folder(resume)
            if folder.is_dir():
                lock = RunLock(folder).acquire("--resume")
            ckpt, meta = resume_checkpoint(resume, task_name)
            cfg = config_cls.from_dict(with_new_budget(meta["config"], budget_given(given)))
            run_dir = ckpt.parent
        else:
            if out:
                path = check_out_dir(out)
                with contextlib.suppress(OSError):  # prepare_run_dir reports a folder it cannot make
                    path.mkdir(parents=True, exist_ok=True)
                if path.is_dir():
                    lock = RunLock(path).acquire()
            run_dir = prepare_run_dir(out, force=force)
            if lock is None:
                lock = RunLock(run_dir).acquire()
            ckpt, meta = None, {}
        yield Job(run_dir, cfg, ckpt, meta, lock)
    finally:
        if lock is not None:
            lock.release()
