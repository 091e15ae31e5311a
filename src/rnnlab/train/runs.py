"""Run folders: ``runs/<timestamp>`` by default, ``runs/latest`` pointing at the newest.

Every command that takes a RUN accepts the folder (or ``runs/latest``), or a
checkpoint file inside it. A folder that already holds a run is never
trained into by accident (:func:`prepare_run_dir`): resume it, pick another
folder, or pass ``--force``. Every file in a run folder is written atomically
(a hidden temporary file renamed over the name); temporary files left by a
crash are swept at the next start or resume (:func:`sweep_temporaries`).
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write
from ..errors import CheckpointError, ConfigError

BEST = "best.npz"
LAST = "last.npz"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
RUN_FILES = (BEST, LAST, METRICS, CONFIG)
_TEMPORARY = re.compile(r"^\.(best\.npz|last\.npz|metrics\.jsonl|config\.json|metrics\.png)\..+\.tmp$")


def holds_run(path: Path) -> bool:
    """True when ``path`` holds a run worth keeping: a checkpoint. A folder left by a run that never
    saved one (its config.json, perhaps a few metrics lines) can be neither resumed nor evaluated,
    so a new run may be made in it."""
    return any((path / name).exists() for name in (BEST, LAST))


def check_out_dir(out: str | os.PathLike, flag: str = "--out") -> Path:
    """Fail early, in one line, when ``out`` cannot become a writable run folder."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file, not a folder; choose a folder for the run")
    return _parent_is_folder(path, flag)


def _parent_is_folder(path: Path, flag: str) -> Path:
    """``path``, unless its nearest existing parent is a file (one line naming ``flag``)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder; choose another {flag}")
            break
    return path


def check_out_file(out: str | os.PathLike, flag: str) -> Path:
    """Fail early, in one line, when the output file ``out`` names a folder (a run folder, say) or lies
    under a file: checked before any work, so that nothing is computed only to fail at the write."""
    path = Path(out)
    if path.is_dir():
        what = "a run folder" if holds_run(path) else "a folder"
        raise ConfigError(f"{flag} {path} is {what}, not a file; give a file name for {flag}")
    return _parent_is_folder(path, flag)


def refuse_run_folder(out: str | os.PathLike, flag: str = "--out") -> Path:
    """An output folder for files other than a run's (scores, tables): one that holds a training run is
    refused, so that such files never land among (or replace) a run's own."""
    path = check_out_dir(out, flag)
    if path.is_dir() and holds_run(path):
        raise ConfigError(f"{flag} {path} holds a training run ({BEST}/{LAST}); choose a folder of its own "
                          f"for {flag}")
    return path


def prepare_run_dir(out: str | os.PathLike | None, force: bool = False, root: str = "runs") -> Path:
    """A new, writable run folder (created); refuses one that holds a run unless ``force``."""
    if out:
        path = check_out_dir(out)
        if path.is_dir() and holds_run(path):
            if not force:
                raise ConfigError(
                    f"--out {path} already holds a run; continue it with --resume {path}, choose a new --out, "
                    "or pass --force to overwrite it")
        for name in RUN_FILES:  # what is left here is replaced (forced) or never saved a checkpoint
            (path / name).unlink(missing_ok=True)
    else:
        path = Path(root) / time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while path.exists():
            path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{n}"
            n += 1
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to the run folder {path}: {exc.strerror or exc}; "
                          "choose a writable --out") from None
    sweep_temporaries(path)
    _point_latest(path)
    return path


def new_run_dir(out: str | None, root: str = "runs") -> Path:
    """A run folder for a new run (see :func:`prepare_run_dir`; an existing run is refused)."""
    return prepare_run_dir(out, root=root)


def sweep_temporaries(path: Path) -> list[str]:
    """Remove temporary files a crash mid-save left in a run folder; returns their names."""
    removed = []
    try:
        entries = list(path.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if _TEMPORARY.match(entry.name) and entry.is_file():
            try:
                entry.unlink()
                removed.append(entry.name)
            except OSError:
                pass
    return removed


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically."""
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _point_latest(path: Path) -> None:
    """Make ``<parent>/latest`` a symlink to the run (atomically: new link, then rename)."""
    latest = path.parent / "latest"
    if latest.exists() and not latest.is_symlink():
        return  # a real folder named 'latest': never touch user data
    tmp = path.parent / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(path.name)
        os.replace(tmp, latest)
    except OSError:
        pass  # symlinks unavailable: the run is still usable by its own name


def find_checkpoint(run: str | os.PathLike, prefer: str = BEST) -> Path:
    """A run folder's best (or last) checkpoint, or the file itself if one was given."""
    path = Path(run)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"no such run or checkpoint: {path}")
    for name in (prefer, LAST if prefer == BEST else BEST):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"{path} holds no checkpoint ({BEST} or {LAST}); was the run trained? (a run that "
                          f"stopped before its first checkpoint can be started again with --out {path})")
