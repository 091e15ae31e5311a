"""What a training checkpoint holds, packed as arrays + JSON (no pickle).

Arrays: ``param/<name>`` (model weights), ``optim/<key>`` (optimizer slots),
``carry/<i>`` (the hidden state carried between batches). Meta (JSON): the
resolved config, the model config, the vocabulary, the optimizer's scalars,
the batcher position, every dropout generator's state, and the trainer's
counters. Together they let ``--resume`` continue exactly where a run
stopped.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data import Vocab
from ..errors import CheckpointError
from ..states import flatten, unflatten
from ..models import CharRNN, ModelConfig

KIND = "rnnlab.charlm"


def pack_model(model: CharRNN, vocab: Vocab) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = {f"param/{name}": value for name, value in model.state_dict().items()}  # weights and buffers
    meta = {"kind": KIND, "model": model.config.to_dict(), "vocab": vocab.to_dict()}
    return arrays, meta


def unpack_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str = "checkpoint") -> tuple[CharRNN, Vocab]:
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} is not an rnnlab language-model checkpoint (kind {meta.get('kind')!r})")
    try:
        config = ModelConfig(**meta["model"])
        vocab = Vocab.from_dict(meta["vocab"])
        model = CharRNN(config)
        model.load_state_dict({k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not describe a valid model ({exc})") from None
    return model, vocab


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


def rng_states(model: CharRNN) -> dict[str, Any]:
    return {name: m.rng.bit_generator.state for name, m in model.rng_modules()}


def set_rng_states(model: CharRNN, states: dict[str, Any]) -> None:
    for name, m in model.rng_modules():
        if name in states:
            m.rng.bit_generator.state = states[name]
