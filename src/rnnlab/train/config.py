"""Old import path: the char-LM's configuration (``TrainConfig``, ``load_toml``, ``check_types``...)
is :mod:`rnnlab.tasks.charlm.config`'s. Names are looked up there when asked for (the loop knows
no task; docs/conventions.md)."""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    import importlib

    module = importlib.import_module("rnnlab.tasks.charlm.config")
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
