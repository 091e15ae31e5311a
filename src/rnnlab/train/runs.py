"""Run folders: ``runs/<timestamp>`` by default, ``runs/latest`` pointing at the newest.

Every command that takes a RUN accepts the folder (or ``runs/latest``), or a
checkpoint file inside it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import CheckpointError

BEST = "best.npz"
LAST = "last.npz"
METRICS = "metrics.jsonl"
CONFIG = "config.json"


def new_run_dir(out: str | None, root: str = "runs") -> Path:
    if out:
        path = Path(out)
    else:
        path = Path(root) / time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while path.exists():
            path = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{n}"
            n += 1
    path.mkdir(parents=True, exist_ok=True)
    _point_latest(path)
    return path


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
    raise CheckpointError(f"{path} holds no checkpoint ({BEST} or {LAST}); was the run trained?")
