"""Atomic file replacement shared by the dataset cache and checkpoints.

A reader must never see a half-written file under its final name, even if the
writer is killed. So every cached or saved file is written to a temporary file
in the *same directory* (``os.replace`` is only atomic within one file
system), flushed and fsynced, and then renamed over the final name. If the
writer fails, the temporary file is removed and the old file stays untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Yield a binary file object whose contents replace ``path`` on success.

    The temporary file is hidden (``.name.XXXX.tmp``) so that folder listings
    such as :func:`rnnlab.data.load_text` skip it if a crash leaves it behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates the file 0600; give it the mode a plain open()
            # would (or keep an existing file's), so caches stay shareable.
            os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else _default_mode())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _default_mode() -> int:
    # os.umask can only be read by setting it; restore it immediately.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; best effort (not possible on every OS)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
