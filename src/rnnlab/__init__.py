"""rnnlab: recurrent neural networks from scratch in NumPy, with hand-derived backward passes."""
from __future__ import annotations

__version__ = "0.1.0"

from .module import Module, no_grad  # noqa: E402

__all__ = ["CharLM", "Module", "__version__", "load", "no_grad"]


def __getattr__(name: str):
    # CharLM pulls in training, data and generation: import it only when asked for
    if name == "CharLM":
        from .api import CharLM

        return CharLM
    if name == "load":  # any run, as its task's object (CharLM, Tagger, Forecaster)
        from .tasks.registry import load

        return load
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
