"""What a training checkpoint holds besides the model, packed as arrays + JSON (no pickle).

Arrays: ``optim/<key>`` (optimizer slots), ``carry/<i>`` (the hidden state carried between
batches); meta (JSON): the optimizer's scalars and every dropout generator's state. With the
task's model packing (the char-LM's: :mod:`rnnlab.tasks.charlm.packing`), the data position and
the trainer's counters they let ``--resume`` continue exactly where a run stopped.

The char-LM's packing (``pack_model``, ``unpack_model``, ``check_model_meta``, ``KIND``) lived
here; those names still resolve from this module (looked up when asked for: the loop knows no task).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..states import flatten, unflatten

def pack_optimizer(optimizer: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, scalars = {}, {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, np.ndarray):
            arrays[f"optim/{key}"] = value
        else:
            scalars[key] = value
    return arrays, scalars


def unpack_optimizer(optimizer: Any, arrays: dict[str, np.ndarray], scalars: dict[str, Any]) -> None:
    state = dict(scalars)
    state.update({k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})
    optimizer.load_state_dict(state)


def pack_carry(states: list) -> tuple[dict[str, np.ndarray], Any]:
    """The carried state as arrays plus a JSON skeleton (None where a layer has no state yet)."""
    if any(s is None for s in states):
        return {}, None
    leaves = flatten(states)
    skeleton = _skeleton(states)
    return {f"carry/{i}": a for i, (_, a) in enumerate(leaves)}, skeleton


def unpack_carry(arrays: dict[str, np.ndarray], skeleton: Any, num_layers: int) -> list:
    if skeleton is None:
        return [None] * num_layers
    leaves = [arrays[f"carry/{i}"] for i in range(len([k for k in arrays if k.startswith("carry/")]))]
    return unflatten(_rebuild(skeleton), leaves)


def _skeleton(tree: Any) -> Any:
    if isinstance(tree, np.ndarray):
        return 0
    return [_skeleton(t) for t in tree] if isinstance(tree, list) else {"tuple": [_skeleton(t) for t in tree]}


def _rebuild(skel: Any) -> Any:
    # unflatten only needs the structure; a placeholder array marks each leaf
    if skel == 0:
        return np.zeros(0)
    if isinstance(skel, dict):
        return tuple(_rebuild(s) for s in skel["tuple"])
    return [_rebuild(s) for s in skel]


def rng_states(modules: list[tuple[str, Any]]) -> dict[str, Any]:
    """The state of each ``(name, module)``'s generator ``rng`` (JSON-able), e.g. every dropout layer."""
    return {name: m.rng.bit_generator.state for name, m in modules}


def set_rng_states(modules: list[tuple[str, Any]], states: dict[str, Any]) -> None:
    for name, m in modules:
        if name in states:
            m.rng.bit_generator.state = states[name]


_MOVED = ("KIND", "MAX_LAYERS", "pack_model", "unpack_model", "check_model_meta")


def __getattr__(name: str) -> Any:
    """Old import paths: the char-LM's model packing is :mod:`rnnlab.tasks.charlm.packing`'s."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module("rnnlab.tasks.charlm.packing"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
