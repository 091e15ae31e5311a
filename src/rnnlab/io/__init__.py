"""File input/output shared by every layer: crash-safe writes (:mod:`.atomic`) and the run-folder
lock (:mod:`.lock`)."""
from .atomic import atomic_write
from .lock import RunInUse, RunLock

__all__ = ["RunInUse", "RunLock", "atomic_write"]
