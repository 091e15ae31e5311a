"""Per-layer training diagnostics (``rnnlab train --diagnostics``).

From one training step's forward cache and gradients, per recurrent layer:

* ``h_norm``   – mean L2 norm of h_t over batch and time (growth = trouble for ReLU cells),
* ``h_max``    – largest |h| in the layer,
* ``grad_norm``– L2 norm of the layer's parameter gradients,
* ``saturated``– tanh/sigmoid cells: fraction of gate activations within 0.01 of
  their bounds, where the derivative all but vanishes,
* ``dead``     – ReLU cells: fraction of units that were zero for every example
  and time step of the batch (they get no gradient at all).

Keys are flat (``h_norm/l0``) so the metrics log and ``rnnlab plot`` can
treat them alike.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cells.gru import GRUStepCache
from ..cells.lstm import LSTMStepCache
from ..cells.norm import NormLSTMStepCache
from ..cells.rnn import RNNStepCache

SATURATION_MARGIN = 0.01


def _directions(layer_cache: Any) -> list[tuple[str, Any]]:
    if hasattr(layer_cache, "hs"):
        return [("", layer_cache)]
    return [(".fwd", layer_cache.fwd), (".bwd", layer_cache.bwd)]


def _bounded(cell: Any, step: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(sigmoid activations, tanh activations) of one step, by the cell's cache type."""
    H = cell.hidden_size
    if isinstance(step, NormLSTMStepCache):  # BN-/LN-LSTM: output tanh acts on the normalised cell
        g = step.gates
        return [g[:, :2 * H], g[:, 3 * H:]], [g[:, 2 * H:3 * H], step.tanh_u]
    if isinstance(step, LSTMStepCache):
        g = step.gates
        return [g[:, :2 * H], g[:, 3 * H:]], [g[:, 2 * H:3 * H]]
    if isinstance(step, GRUStepCache):
        return [step.rz], [step.n]
    if isinstance(step, RNNStepCache):
        return [], [step.h]
    return [], []


def _activity(cell: Any, steps: list) -> dict[str, float]:
    """Saturation of bounded activations, or dead units of a ReLU, from the per-step caches."""
    if not steps:
        return {}
    if getattr(cell, "nonlinearity", None) == "relu" and isinstance(steps[0], RNNStepCache):
        active = np.zeros(steps[0].h.shape[-1], dtype=bool)
        for s in steps:
            active |= (s.h > 0).any(axis=0)
        return {"dead": float(1.0 - active.mean())}
    near, total = 0, 0
    for s in steps:
        sig, tanh = _bounded(cell, s)
        for a in sig:  # sigmoid in (0, 1): flat near 0 and 1
            near += int(((a < SATURATION_MARGIN) | (a > 1 - SATURATION_MARGIN)).sum())
            total += a.size
        for a in tanh:  # tanh in (-1, 1): flat near +-1
            near += int((np.abs(a) > 1 - SATURATION_MARGIN).sum())
            total += a.size
    return {"saturated": near / total} if total else {}


def layer_diagnostics(model: Any, rnn_cache: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    stack = model.rnn
    for k, (layer, layer_cache) in enumerate(zip(stack.layers, rnn_cache.layers)):
        for suffix, cache in _directions(layer_cache):
            key = f"l{k}{suffix}"
            hs = cache.hs[1:]
            out[f"h_norm/{key}"] = float(np.linalg.norm(hs, axis=-1).mean())
            out[f"h_max/{key}"] = float(np.abs(hs).max())
            sub = layer if not suffix else getattr(layer, suffix[1:])
            steps = [s for _, part in cache.step_lists() for s in part]  # per-step caches, all row blocks
            for name, value in _activity(sub.cell, steps).items():
                out[f"{name}/{key}"] = value
        sq = sum(float(np.sum(g.astype(np.float64) ** 2)) for _, _, g in layer.named_parameters())
        out[f"grad_norm/l{k}"] = float(np.sqrt(sq))
    return out
