"""Which task a run folder belongs to, and how to load or evaluate any run.

Every run folder records its task (``config.json``'s ``"task"``, and each
checkpoint's metadata), so ``rnnlab eval RUN``, ``rnnlab plot RUN`` and
:func:`load` work on a run of any task. Runs written before tasks were
recorded are char-LM runs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# task name -> (module, class with a ``load(run)`` classmethod, the command that evaluates it)
LOADERS: dict[str, tuple[str, str, str]] = {
    "charlm": ("rnnlab.api", "CharLM", "rnnlab eval RUN"),
    "tagging": ("rnnlab.tasks.tagging", "Tagger", "rnnlab tag eval RUN"),
    "forecast": ("rnnlab.tasks.forecast", "Forecaster", "rnnlab forecast eval RUN"),
}


def task_of(run: str | os.PathLike) -> str:
    """The task of a run folder (or of a checkpoint file)."""
    path = Path(run)
    if path.is_dir() and (path / "config.json").is_file():
        try:
            data = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and isinstance(data.get("task"), str):
            return data["task"]
    from ..checkpoint import read_checkpoint_meta
    from ..train.runs import find_checkpoint

    meta = read_checkpoint_meta(find_checkpoint(path))
    task = meta.get("task", "charlm")
    return task if isinstance(task, str) else "charlm"


def load(run: str | os.PathLike) -> Any:
    """The trained model of any run, as its task's API object (``CharLM``, ``Tagger``, ``Forecaster``)."""
    import importlib

    task = task_of(run)
    if task not in LOADERS:
        raise ConfigError(f"{run} is a '{task}' run, which has no model object to load; its metrics are in "
                          f"{Path(run) / 'metrics.jsonl'} (rnnlab plot {run})")
    module, name, _ = LOADERS[task]
    return getattr(importlib.import_module(module), name).load(run)
