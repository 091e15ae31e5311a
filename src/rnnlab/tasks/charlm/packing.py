"""Packing a character language model (:class:`~rnnlab.models.CharRNN` and its vocabulary) into a
checkpoint's arrays + JSON (no pickle), and checking a checkpoint's model settings before anything
is built from them. The loop's own parts of a checkpoint (optimizer, carried state, generators) are
:mod:`rnnlab.train.snapshot`'s.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...cells import CELLS
from ...checkpoint import damaged_error
from ...data import Vocab
from ...errors import CheckpointError, RnnlabError
from ...models import CharRNN, ModelConfig

KIND = "rnnlab.charlm"


def pack_model(model: CharRNN, vocab: Vocab) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = {f"param/{name}": value for name, value in model.state_dict().items()}  # weights and buffers
    meta = {"kind": KIND, "model": model.config.to_dict(), "vocab": vocab.to_dict()}
    return arrays, meta


def unpack_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str = "checkpoint") -> tuple[CharRNN, Vocab]:
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} is not an rnnlab language-model checkpoint (kind {meta.get('kind')!r})")
    config, vocab = check_model_meta(arrays, meta, path)  # before anything is allocated
    try:
        model = CharRNN(config)
        model.load_state_dict({k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")})
    except (KeyError, TypeError, ValueError, ArithmeticError, RnnlabError) as exc:
        raise damaged_error(Path(path), f"checkpoint does not describe a valid model ({exc})") from None
    except MemoryError:
        raise CheckpointError(f"{path}: not enough memory to build this checkpoint's model") from None
    return model, vocab


MAX_LAYERS = 1000
_MODEL_INTS = {"vocab_size": 1, "hidden_size": 1, "num_layers": 1, "embedding_size": 0, "proj_size": 0}


def check_model_meta(arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str = "checkpoint"
                     ) -> tuple[ModelConfig, Vocab]:
    """The model config and vocabulary of a checkpoint's metadata, checked before any model is built.

    Types and ranges of every setting, the vocabulary against ``vocab_size``,
    and the sizes against the weights actually present: the model's
    recurrent, embedding and output matrices alone (``L*H*H + V*E + V*out``
    entries) must fit in the ``param/`` arrays, and every whole-number cell
    option times ``hidden_size`` too (BN-LSTM's ``max_steps`` sizes buffers
    that are saved), so a few bytes of hostile JSON cannot make loading
    allocate gigabytes. The saved training config, when there is one, must
    have the right types (what ``eval`` and ``CharLM.load`` read from it).
    """
    where = Path(path)

    def bad(problem: str) -> CheckpointError:
        return damaged_error(where, f"checkpoint does not describe a valid model ({problem})")

    model = meta.get("model")
    if not isinstance(model, dict):
        raise bad("no 'model' settings")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(model) - known)
    if unknown:
        raise bad(f"unknown model setting(s): {', '.join(map(str, unknown))}")
    if "vocab_size" not in model:
        raise bad("no vocab_size")
    model = {**_model_defaults(), **model}  # what ModelConfig fills in for missing settings
    for key, low in _MODEL_INTS.items():
        value = model[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad(f"{key} must be a whole number, got {type(value).__name__} {value!r}")
        if value < low:
            raise bad(f"{key} must be at least {low}, got {value}")
    if model["num_layers"] > MAX_LAYERS:
        raise bad(f"num_layers {model['num_layers']} is more than {MAX_LAYERS}")
    seed = model["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise bad(f"seed must be a whole number >= 0, got {seed!r}")
    dropout = model["dropout"]
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise bad(f"dropout must be a number in [0, 1), got {dropout!r}")
    cell = model["cell"]
    if not isinstance(cell, str) or cell not in CELLS:
        raise bad(f"unknown cell {cell!r}; rnnlab has {', '.join(CELLS)}")
    options = model["cell_options"]
    if not isinstance(options, dict):
        raise bad(f"cell_options must be an object, got {type(options).__name__}")
    for key, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f"cell option {key} is {value}")
        if not isinstance(value, (int, float, str, bool)):
            raise bad(f"cell option {key} must be a number, string or boolean, got {type(value).__name__}")
    try:
        vocab = Vocab.from_dict(meta.get("vocab"))
    except RnnlabError as exc:
        raise damaged_error(where, f"checkpoint's vocabulary is corrupt ({exc})") from None
    V, H, L = model["vocab_size"], model["hidden_size"], model["num_layers"]
    if V != len(vocab):
        raise bad(f"vocab_size {V} but the vocabulary has {len(vocab)} characters")
    present = sum(int(a.size) for k, a in arrays.items() if k.startswith("param/"))
    E, P = model["embedding_size"], model["proj_size"]
    needed = L * H * H + V * E + V * (P or H) + P * H
    if needed > present:
        raise bad(f"hidden_size {H}, num_layers {L}, embedding_size {E}, proj_size {P} and {V} characters "
                  f"need at least {needed:,} weights, but the checkpoint holds {present:,}")
    for key, value in options.items():
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) * H > present:
            raise bad(f"cell option {key}={value} is out of proportion to the {present:,} weights saved")
    saved = meta.get("config")
    if saved is not None:
        from .config import check_types  # the training config's own field types

        if not isinstance(saved, dict):
            raise damaged_error(where, f"checkpoint's training config is not an object ({type(saved).__name__})")
        try:
            check_types(saved)
        except RnnlabError as exc:
            raise damaged_error(where, f"checkpoint's training config is invalid ({exc})") from None
    return ModelConfig(**model), vocab


def _model_defaults() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(ModelConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out
