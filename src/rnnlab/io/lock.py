"""A lock on a run folder: one live process writes into a folder at a time.

``RunLock(folder).acquire()`` takes an exclusive ``fcntl.flock`` on ``folder/.rnnlab.lock`` and
writes its pid there. A second process asking for the same folder is refused in one line naming
the holder's pid. The kernel drops a flock when its process ends, however it ends (``kill -9``
included), so a lock left by a dead process is simply taken over: the file's stale pid is
overwritten. Where ``fcntl`` does not exist (Windows) the lock does nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

LOCK_FILE = ".rnnlab.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


class RunInUse(ConfigError):
    """The run folder is held by another live process."""


class RunLock:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, flag: str = "--out") -> "RunLock":
        if fcntl is None or self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot write to the run folder {self.folder}: {exc.strerror or exc}; "
                              f"choose a writable {flag}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunInUse(f"{flag} {self.folder} is in use by another rnnlab process (pid {holder}); wait for it "
                           f"to finish or stop it, or choose another {flag}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
