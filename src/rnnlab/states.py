"""Recurrent states as nested tuples/lists of arrays, and their flat form.

A layer's state is ``(h,)`` or ``(h, c)``; a stack holds a list of them; a
bidirectional layer a pair. Gradient checks and checkpoints both need the
arrays one by one, with names, and the structure back afterwards.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def flatten(tree: Any, prefix: str = "state0") -> list[tuple[str, np.ndarray]]:
    """Name the arrays of a nested tuple/list state: state0[1][0] ..."""
    if isinstance(tree, np.ndarray):
        return [(prefix, tree)]
    return [leaf for i, sub in enumerate(tree) for leaf in flatten(sub, f"{prefix}[{i}]")]


def unflatten(tree: Any, leaves: list) -> Any:
    """The structure of ``tree`` with its arrays replaced, in order, by ``leaves``."""
    it = iter(leaves)

    def build(node: Any) -> Any:
        if isinstance(node, np.ndarray):
            return next(it)
        return type(node)(build(sub) for sub in node)
    return build(tree)
