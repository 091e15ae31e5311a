"""The PyTorch twin of :class:`~rnnlab.models.CharRNN`, and ``.pt`` export/import.

``TorchCharLM(config)`` builds the equivalent torch model::

    nn.Embedding(V, E)  (or one-hot vectors when embedding_size is 0)
    nn.LSTM / nn.GRU / nn.RNN(batch_first=True, dropout between layers)
    nn.Linear(H, P, bias=False)   only with proj_size: rnnlab's projection
    nn.Dropout(p) -> nn.Linear(., V)

A ``.pt`` file written by :func:`export_torch` is ``torch.save`` of a dict of
plain values, so ``torch.load(path, weights_only=True)`` reads it::

    {"format": "rnnlab-torch", "version": 1, "state_dict": {...tensors...},
     "vocab": {...Vocab.to_dict()...}, "config": {"model": ModelConfig fields,
     "torch": the torch constructor settings, "train": the training config or None}}

and ``TorchCharLM(ckpt["config"]).load_state_dict(ckpt["state_dict"])``
rebuilds the model. torch is optional: it is imported only here, lazily,
and its absence is a clear error. The weight mapping itself lives in
:mod:`rnnlab.torch_bridge`.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import torch_bridge as bridge
from .data import Vocab
from .io.atomic import atomic_write
from .errors import CheckpointError, ConfigError
from .layers import Embedding
from .models import CharRNN, ModelConfig

FORMAT = "rnnlab-torch"
VERSION = 1


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError("PyTorch is not installed; `pip install torch` to export or import .pt files") from None
    return torch


def torch_spec(model: CharRNN) -> dict[str, Any]:
    """The torch constructor settings of ``model`` (ConfigError if torch cannot express it)."""
    try:
        rnn_class = bridge.torch_cell_name(model.rnn.cell_name)
        rnn_kwargs = bridge.torch_module_kwargs(model.rnn, ignore_proj=True)
    except ValueError as exc:
        raise ConfigError(f"this model has no PyTorch equivalent: {exc}") from None
    cfg = model.config
    return {"vocab_size": cfg.vocab_size, "embedding_size": cfg.embedding_size, "rnn": rnn_class,
            "rnn_kwargs": rnn_kwargs, "proj_size": cfg.proj_size, "dropout": cfg.dropout,
            "dtype": np.dtype(model.dtype).name}


def torch_config(model: CharRNN, train_config: dict | None = None) -> dict[str, Any]:
    return {"model": model.config.to_dict(), "torch": torch_spec(model), "train": train_config}


@functools.lru_cache(maxsize=1)
def _torch_class() -> type:
    torch = require_torch()
    nn = torch.nn

    class TorchCharLMModule(nn.Module):
        """``forward(ids (B, T) int64, state=None) -> (logits (B, T, V), state)``."""

        def __init__(self, spec: dict[str, Any]) -> None:
            super().__init__()
            V, E, P = spec["vocab_size"], spec["embedding_size"], spec["proj_size"]
            self.vocab_size = V
            self.embed = nn.Embedding(V, E) if E > 0 else None
            self.rnn = getattr(nn, spec["rnn"])(**spec["rnn_kwargs"])
            H = self.rnn.hidden_size
            self.proj = nn.Linear(H, P, bias=False) if P else None
            self.drop = nn.Dropout(spec["dropout"])
            self.out = nn.Linear(P or H, V)
            self.to(getattr(torch, spec.get("dtype", "float32")))

        def forward(self, ids: Any, state: Any = None) -> tuple[Any, Any]:
            if self.embed is not None:
                x = self.embed(ids)
            else:
                x = nn.functional.one_hot(ids, self.vocab_size).to(self.out.weight.dtype)
            h, state = self.rnn(x, state)
            if self.proj is not None:
                h = self.proj(h)
            return self.out(self.drop(h)), state

    return TorchCharLMModule


def TorchCharLM(config: dict[str, Any] | ModelConfig) -> Any:  # noqa: N802 - reads as a class
    """A torch ``nn.Module`` equivalent to ``CharRNN`` (randomly initialised by torch).

    ``config``: the ``"config"`` entry of an exported ``.pt``, or a
    :class:`ModelConfig` (or its dict).
    """
    if isinstance(config, ModelConfig):
        config = config.to_dict()
    spec = config.get("torch") if "torch" in config else torch_spec(CharRNN(ModelConfig(**config)))
    return _torch_class()(spec)


# -- weights -------------------------------------------------------------------------------
def state_to_torch(model: CharRNN) -> dict[str, np.ndarray]:
    """``model``'s weights under the TorchCharLM state-dict names (NumPy arrays)."""
    torch_spec(model)  # refuse what torch cannot express before mapping anything
    sd: dict[str, np.ndarray] = {}
    if isinstance(model.embed, Embedding):
        sd.update(bridge.embedding_to_torch(model.embed, prefix="embed."))
    sd.update(bridge.stack_to_torch(model.rnn, prefix="rnn.", ignore_proj=True))
    if model.rnn.proj is not None:
        sd.update(bridge.linear_to_torch(model.rnn.proj, prefix="proj."))
    sd.update(bridge.linear_to_torch(model.out, prefix="out."))
    return sd


def state_from_torch(model: CharRNN, state_dict: dict[str, Any]) -> CharRNN:
    """Load TorchCharLM-named weights (tensors or arrays) into ``model``; returns it."""
    expected = set(state_to_torch(model))
    extra = sorted(set(state_dict) - expected)
    if extra:
        raise ValueError(f"unexpected weights for this model: {extra}")
    if isinstance(model.embed, Embedding):
        bridge.embedding_from_torch(model.embed, state_dict, prefix="embed.")
    bridge.stack_from_torch(model.rnn, state_dict, prefix="rnn.", ignore_proj=True)
    if model.rnn.proj is not None:
        bridge.linear_from_torch(model.rnn.proj, state_dict, prefix="proj.")
    bridge.linear_from_torch(model.out, state_dict, prefix="out.")
    return model


# -- files ---------------------------------------------------------------------------------
def export_torch(path: str | os.PathLike, model: CharRNN, vocab: Vocab, train_config: dict | None = None) -> Path:
    """Write ``model`` as a ``.pt`` file (atomically); see the module docstring for its layout."""
    torch = require_torch()
    payload = {"format": FORMAT, "version": VERSION,
               "state_dict": bridge.to_torch_tensors(state_to_torch(model)),
               "vocab": vocab.to_dict(), "config": torch_config(model, train_config)}
    path = Path(path)
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    return path


def import_torch(path: str | os.PathLike) -> tuple[CharRNN, Vocab, dict | None]:
    """Read a ``.pt`` written by :func:`export_torch` -> (model, vocab, training config or None)."""
    torch = require_torch()
    try:
        # weights_only: plain containers and tensors only, never arbitrary pickled objects
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder; give the .pt file that `rnnlab export --torch` wrote") from None
    except Exception as exc:  # torch raises many types for foreign or damaged files
        if type(exc).__name__ == "UnpicklingError":  # torch's text for it runs to a page of weights_only advice
            reason = "not a PyTorch file, or one holding objects other than tensors and plain containers"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{path}: cannot read as a PyTorch file ({reason}); give a .pt that "
                              "`rnnlab export --torch` wrote") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab export (expected a dict with format {FORMAT!r}, "
                              "as written by `rnnlab export --torch`)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported export version {payload.get('version')!r}")
    try:
        config = payload["config"]
        state = bridge.from_torch_tensors(payload["state_dict"])
        dtype = next(iter(state.values())).dtype
        model = CharRNN(ModelConfig(**config["model"]), dtype=dtype)
        state_from_torch(model, state)
        vocab = Vocab.from_dict(payload["vocab"])
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        raise CheckpointError(f"{path}: export does not describe a valid model ({exc})") from None
    return model, vocab, config.get("train")
