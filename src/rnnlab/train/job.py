"""The job scaffold every task's training entry point shares: which folder, which settings, which
checkpoint, and the lock on the folder.

>>> with open_job("forecast", ForecastConfig, cfg, out=out, resume=resume, force=force, given=given) as job:
...     ...  # build the task from job.cfg; run_task(task, job.cfg, job.run_dir, resume_from=job.ckpt)

* ``resume=RUN``: the run's own saved settings (:func:`resumed_config`). ``given`` holds only the
  settings the user gave (a flag left out never replaces a setting, whatever the parser's
  default): budget flags replace the run's budget
  (:func:`~rnnlab.train.loopconfig.with_new_budget`), ``data_dir`` says where the same data is
  now, and any other setting given must equal the run's own (one line naming the flag otherwise:
  an exact resume cannot change the model or the data).
* otherwise a new run folder (``out``, or ``runs/<timestamp>``): a folder holding a run (a
  checkpoint) is refused unless ``force``; one left by a run that never saved a checkpoint is
  made again.
* either way the folder is locked (:class:`~rnnlab.io.lock.RunLock`) for the whole job, before
  anything in it is read or removed.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError
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


RELOCATABLE = ("data_dir",)   # where the run's data is now: given on resume, it replaces the saved one


def budget_given(given: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (given or {}).items() if k in BUDGET_FIELDS and v is not None}


def flag_of(name: str) -> str:
    """The command-line flag of a config field: ``hidden_size`` -> ``--hidden-size``."""
    return "--" + name.replace("_", "-")


def _plain(value: Any) -> Any:
    """A setting as config.json holds it (tuples as lists), for comparing a flag with a saved value."""
    return json.loads(json.dumps(value, default=str))


def resumed_config(config_cls: Any, saved: dict[str, Any], given: dict[str, Any] | None, *,
                   flags: dict[str, str] | None = None, where: str = "the run") -> Any:
    """The config a resumed run trains with: its ``saved`` settings, the budget in ``given``
    replacing its budget, ``data_dir`` replacing its data folder; any other setting in ``given``
    must equal the run's (after validation, so ``--schedule auto`` matches the cosine it became),
    else a :class:`~rnnlab.errors.ConfigError` names the flag. ``flags`` maps a field to its flag
    where that is not ``--field-name``."""
    given = {k: v for k, v in (given or {}).items() if v is not None}
    names = {f.name for f in dataclasses.fields(config_cls)}
    base = {**with_new_budget(saved, budget_given(given)), **{k: given[k] for k in RELOCATABLE if k in given}}
    cfg = config_cls.from_dict(base)
    fixed = {k: v for k, v in given.items() if k in names and k not in BUDGET_FIELDS and k not in RELOCATABLE}
    if fixed:
        wanted = copy.deepcopy(cfg).replace(**fixed) if hasattr(cfg, "replace") else \
            dataclasses.replace(copy.deepcopy(cfg), **fixed)
        wanted.validate()
        kept = copy.deepcopy(cfg).validate()
        for k in sorted(fixed):
            if _plain(getattr(wanted, k)) != _plain(getattr(kept, k)):
                flag = (flags or {}).get(k, flag_of(k))
                raise ConfigError(f"--resume: {where} has {flag} {_shown(getattr(kept, k))}, and {flag} "
                                  f"{_shown(getattr(wanted, k))} was given; a resumed run keeps its settings "
                                  f"(only --max-steps, --max-minutes, --patience and --data-dir may change); "
                                  f"leave {flag} out, or train a new run")
    return cfg


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _run_folder(resume: str | os.PathLike) -> Path:
    path = Path(resume)
    return path.parent if path.is_file() else path


@contextlib.contextmanager
def open_job(task_name: str, config_cls: Any, cfg: Any = None, *, out: str | os.PathLike | None = None,
             resume: str | os.PathLike | None = None, force: bool = False,
             given: dict[str, Any] | None = None, flags: dict[str, str] | None = None) -> Iterator[Job]:
    """Yield the :class:`Job` of a new or resumed run, its folder locked until the block ends."""
    from . import resume_checkpoint

    lock = None
    try:
        if resume:
            folder = _run_folder(resume)
            if folder.is_dir():
                lock = RunLock(folder).acquire("--resume")
            ckpt, meta = resume_checkpoint(resume, task_name)
            cfg = resumed_config(config_cls, meta["config"], given, flags=flags, where=f"the run in {folder}")
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
