"""Weight mapping between rnnlab and PyTorch: the one place where it lives.

Everything here works on plain dicts ``torch_name -> ndarray`` (a NumPy copy
of a torch ``state_dict``); torch is imported lazily, only by the few helpers
that build tensors or modules, so rnnlab runs without it.

Recurrent layers (``RNNStack`` <-> ``torch.nn.LSTM/GRU/RNN(batch_first=True)``),
per layer ``k`` and direction (``_reverse`` for the right-to-left half)::

    weight_ih_l{k} = W_x.T        (G*H, D)      rnnlab stores (fan_in, fan_out)
    weight_hh_l{k} = W_h.T        (G*H, H)
    bias_ih_l{k}   = b            (G*H,)
    bias_hh_l{k}   = 0            RNN / LSTM: torch adds the two biases, so
                                  rnnlab keeps only their sum
                   = [0, 0, b_hn] GRU: r multiplies (h W_hn + b_hn), so b_hn
                                  cannot be folded into b

Importing folds torch's pair back: ``b = b_ih + b_hh`` (GRU: ``b = b_ih +
[b_hr, b_hz, 0]`` and ``b_hn = b_hh[2H:]``). Gradients follow from the sums:
``d bias_ih = d bias_hh = db`` (GRU: ``d bias_hh = [db_r, db_z, db_hn]``).

Initial/final states: torch stacks them as ``(L * dirs, B, H)`` with row
``k * dirs + d``; rnnlab keeps a list with one state per layer, ``(h,)`` or
``(h, c)``, and ``(state_fwd, state_bwd)`` per layer when bidirectional.

``RNNStack(proj_size=P)`` is *not* torch's ``LSTM(proj_size=P)``: rnnlab
projects once after the last layer (a bias-free ``Linear``), torch projects
``h`` inside every step of every layer. The stack functions therefore refuse
a stack with a projection unless ``ignore_proj=True``; export the projection
on its own with ``linear_to_torch(stack.proj)`` as ``torch.nn.Linear(...,
bias=False)`` applied to the torch RNN's output.
"""
from __future__ import annotations

import re
from typing import Any, Iterator

import numpy as np

from .cells.base import Cell
from .cells.gru import GRUCell
from .layers.bidirectional import Bidirectional
from .layers.embedding import Embedding
from .layers.linear import Linear
from .layers.stack import RNNStack
from .module import Module

TORCH_CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN", "irnn": "RNN"}
_RNN_KEY = re.compile(r"(weight|bias)_(ih|hh)_l\d+(_reverse)?$")


def torch_cell_name(cell_name: str) -> str:
    """rnnlab registry name -> ``torch.nn`` class name (``irnn`` is a ReLU ``RNN``)."""
    try:
        return TORCH_CELLS[cell_name]
    except KeyError:
        raise ValueError(f"cell {cell_name!r} has no PyTorch equivalent; "
                         f"mappable: {', '.join(TORCH_CELLS)}") from None


# -- recurrent stacks ---------------------------------------------------------------
def _check_proj(stack: RNNStack, ignore_proj: bool) -> None:
    if stack.proj is not None and not ignore_proj:
        raise ValueError(
            "RNNStack has a projection (proj_size): it is a bias-free Linear after the stack, not "
            "torch.nn.LSTM(proj_size=...). Pass ignore_proj=True to map the recurrent layers and map "
            "stack.proj separately with linear_to_torch (torch.nn.Linear(..., bias=False)).")


def _cells(stack: RNNStack) -> Iterator[tuple[str, Cell]]:
    """``(torch suffix, cell)`` in torch's parameter order."""
    torch_cell_name(stack.cell_name)  # fail early for cells torch cannot express
    for k, layer in enumerate(stack.layers):
        if isinstance(layer, Bidirectional):
            yield f"l{k}", layer.fwd.cell
            yield f"l{k}_reverse", layer.bwd.cell
        else:
            yield f"l{k}", layer.cell


def _cell_to_torch(cell: Cell, arrays: dict[str, np.ndarray], grads: bool) -> dict[str, np.ndarray]:
    """The four torch arrays of one cell from its params (or grads, which map differently)."""
    H = cell.hidden_size
    db = arrays["b"]
    if isinstance(cell, GRUCell):
        # params: b_hh = [0, 0, b_hn];  grads: d b_hr = db_r, d b_hz = db_z (they sit in sums)
        hh = np.concatenate([db[:2 * H] if grads else np.zeros_like(db[:2 * H]), arrays["b_hn"]])
    else:
        hh = db.copy() if grads else np.zeros_like(db)
    return {"weight_ih": arrays["W_x"].T.copy(), "weight_hh": arrays["W_h"].T.copy(),
            "bias_ih": db.copy(), "bias_hh": hh}


def _stack_export(stack: RNNStack, prefix: str, ignore_proj: bool, grads: bool) -> dict[str, np.ndarray]:
    _check_proj(stack, ignore_proj)
    out = {}
    for suffix, cell in _cells(stack):
        source = cell.grads if grads else cell.params
        for kind, value in _cell_to_torch(cell, source, grads).items():
            out[f"{prefix}{kind}_{suffix}"] = value
    return out


def stack_to_torch(stack: RNNStack, *, prefix: str = "", ignore_proj: bool = False) -> dict[str, np.ndarray]:
    """Parameters of ``stack`` as the state dict of the equivalent torch RNN module."""
    return _stack_export(stack, prefix, ignore_proj, grads=False)


def stack_grads_to_torch(stack: RNNStack, *, prefix: str = "", ignore_proj: bool = False) -> dict[str, np.ndarray]:
    """What ``param.grad`` of each torch parameter equals, given ``stack``'s accumulated grads."""
    return _stack_export(stack, prefix, ignore_proj, grads=True)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, recognised without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _fetch(state: dict[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in state:
        raise ValueError(f"torch state dict is missing {key!r}")
    value = _to_numpy(state[key])
    if value.shape != shape:
        raise ValueError(f"shape mismatch for {key!r}: expected {shape}, got {value.shape}")
    return value


def stack_from_torch(stack: RNNStack, state_dict: dict[str, Any], *, prefix: str = "",
                     ignore_proj: bool = False) -> RNNStack:
    """Load a torch LSTM/GRU/RNN state dict (arrays or tensors) into ``stack``; returns it.

    Nothing is written unless every key is present with the right shape, and
    recurrent keys under ``prefix`` that the stack does not have (an extra
    layer, a direction too many) are an error too.
    """
    _check_proj(stack, ignore_proj)
    new: list[tuple[Cell, dict[str, np.ndarray]]] = []
    expected = set()
    for suffix, cell in _cells(stack):
        G_H, D = cell.params["W_x"].shape[1], cell.params["W_x"].shape[0]
        shapes = {"weight_ih": (G_H, D), "weight_hh": (G_H, cell.hidden_size), "bias_ih": (G_H,), "bias_hh": (G_H,)}
        t = {kind: _fetch(state_dict, f"{prefix}{kind}_{suffix}", shape) for kind, shape in shapes.items()}
        expected.update(f"{prefix}{kind}_{suffix}" for kind in shapes)
        new.append((cell, _cell_from_torch(cell, t)))
    extra = sorted(k for k in state_dict if k.startswith(prefix) and _RNN_KEY.match(k[len(prefix):])
                   and k not in expected)
    if extra:
        raise ValueError(f"torch state dict has recurrent keys this stack lacks: {extra}")
    for cell, arrays in new:
        for name, value in arrays.items():
            cell.params[name][...] = value
    return stack


def _cell_from_torch(cell: Cell, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    H = cell.hidden_size
    out = {"W_x": t["weight_ih"].T, "W_h": t["weight_hh"].T}
    if isinstance(cell, GRUCell):
        b_hh = t["bias_hh"]
        out["b"] = t["bias_ih"] + np.concatenate([b_hh[:2 * H], np.zeros_like(b_hh[2 * H:])])
        out["b_hn"] = b_hh[2 * H:]
    else:
        out["b"] = t["bias_ih"] + t["bias_hh"]
    return out


def torch_module_kwargs(stack: RNNStack, *, ignore_proj: bool = False) -> dict[str, Any]:
    """Constructor arguments of the equivalent ``torch.nn.<torch_cell_name>``."""
    _check_proj(stack, ignore_proj)
    name = torch_cell_name(stack.cell_name)
    kw: dict[str, Any] = dict(input_size=stack.input_size, hidden_size=stack.hidden_size,
                              num_layers=stack.num_layers, batch_first=True, bidirectional=stack.bidirectional)
    # torch drops the outputs of every layer but the last: rnnlab's dropout before layers 1..L-1
    kw["dropout"] = next((d.p for d in stack.drops if d is not None), 0.0)
    if name == "RNN":
        kw["nonlinearity"] = next(_cells(stack))[1].nonlinearity
    return kw


# -- states ------------------------------------------------------------------------
def _state_size(stack: RNNStack) -> int:
    return next(_cells(stack))[1].state_size


def states_to_torch(stack: RNNStack, states: list) -> tuple[np.ndarray, ...]:
    """rnnlab per-layer states -> torch's ``(h,)`` or ``(h, c)``, each ``(L * dirs, B, H)``."""
    if len(states) != stack.num_layers:
        raise ValueError(f"expected {stack.num_layers} layer states, got {len(states)}")
    rows = [d for s in states for d in (s if stack.bidirectional else (s,))]  # row k * dirs + d
    return tuple(np.stack([row[i] for row in rows]) for i in range(_state_size(stack)))


def states_from_torch(stack: RNNStack, h: Any, c: Any = None) -> list:
    """torch's ``h`` (and ``c`` for the LSTM), ``(L * dirs, B, H)`` -> rnnlab per-layer states."""
    arrays = [_to_numpy(h)] + ([] if c is None else [_to_numpy(c)])
    if len(arrays) != _state_size(stack):
        raise ValueError(f"{stack.cell_name} state has {_state_size(stack)} arrays, got {len(arrays)}")
    dirs = 2 if stack.bidirectional else 1
    for a in arrays:
        if a.ndim != 3 or a.shape[0] != stack.num_layers * dirs or a.shape[2] != stack.hidden_size:
            raise ValueError(f"expected state shape ({stack.num_layers * dirs}, B, {stack.hidden_size}), got {a.shape}")
    per_row = [tuple(a[r] for a in arrays) for r in range(stack.num_layers * dirs)]
    if not stack.bidirectional:
        return per_row
    return [(per_row[2 * k], per_row[2 * k + 1]) for k in range(stack.num_layers)]


# -- Linear and Embedding --------------------------------------------------------------
def _simple_map(module: Module) -> list[tuple[str, str, bool]]:
    """``(torch name, rnnlab name, transposed)`` for the parameters of a simple layer."""
    if isinstance(module, Linear):
        return [("weight", "W", True)] + ([("bias", "b", False)] if "b" in module.params else [])
    if isinstance(module, Embedding):
        return [("weight", "W", False)]
    raise TypeError(f"no torch mapping for {type(module).__name__}")


def _simple_export(module: Module, prefix: str, source: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {prefix + tname: (source[name].T if transposed else source[name]).copy()
            for tname, name, transposed in _simple_map(module)}


def _simple_import(module: Module, state_dict: dict[str, Any], prefix: str) -> Module:
    new = {}
    for tname, name, transposed in _simple_map(module):
        shape = module.params[name].shape
        value = _fetch(state_dict, prefix + tname, shape[::-1] if transposed else shape)
        new[name] = value.T if transposed else value
    for name, value in new.items():
        module.params[name][...] = value
    return module


def linear_to_torch(linear: Linear, *, prefix: str = "") -> dict[str, np.ndarray]:
    """``torch.nn.Linear`` state: ``weight = W.T`` (K, D) and ``bias = b`` when present."""
    return _simple_export(linear, prefix, linear.params)


def linear_grads_to_torch(linear: Linear, *, prefix: str = "") -> dict[str, np.ndarray]:
    return _simple_export(linear, prefix, linear.grads)


def linear_from_torch(linear: Linear, state_dict: dict[str, Any], *, prefix: str = "") -> Linear:
    return _simple_import(linear, state_dict, prefix)


def embedding_to_torch(embedding: Embedding, *, prefix: str = "") -> dict[str, np.ndarray]:
    """``torch.nn.Embedding`` state: ``weight = W`` (V, E), same layout."""
    return _simple_export(embedding, prefix, embedding.params)


def embedding_grads_to_torch(embedding: Embedding, *, prefix: str = "") -> dict[str, np.ndarray]:
    return _simple_export(embedding, prefix, embedding.grads)


def embedding_from_torch(embedding: Embedding, state_dict: dict[str, Any], *, prefix: str = "") -> Embedding:
    return _simple_import(embedding, state_dict, prefix)


# -- torch objects (lazy import) ------------------------------------------------------------
def to_torch_tensors(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """NumPy state dict -> torch tensors (same dtype); imports torch."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v).copy()) for k, v in arrays.items()}


def from_torch_tensors(state_dict: dict[str, Any]) -> dict[str, np.ndarray]:
    """torch state dict -> NumPy copies."""
    return {k: _to_numpy(v).copy() for k, v in state_dict.items()}


def torch_rnn_from_stack(stack: RNNStack, *, ignore_proj: bool = False) -> Any:
    """A ``torch.nn.LSTM/GRU/RNN`` with ``stack``'s weights, dtype and train/eval mode."""
    import torch

    cls = getattr(torch.nn, torch_cell_name(stack.cell_name))
    dtype = getattr(torch, np.dtype(stack.dtype).name)
    module = cls(**torch_module_kwargs(stack, ignore_proj=ignore_proj)).to(dtype)
    module.load_state_dict(to_torch_tensors(stack_to_torch(stack, ignore_proj=ignore_proj)))
    return module.train(stack.training)
