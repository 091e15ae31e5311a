"""rnnlab: recurrent neural networks from scratch in NumPy, with hand-derived backward passes."""
from __future__ import annotations

__version__ = "0.1.0"

from .module import Module  # noqa: E402

__all__ = ["Module", "__version__"]
