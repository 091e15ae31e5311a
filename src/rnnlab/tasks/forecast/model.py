"""The forecasters' networks: direct multi-step and encoder-decoder, built from a spec.

Both networks read a window of ``L`` normalised values with their time features,
``x (B, L, F)``, and output the whole horizon at once, ``Q`` quantiles per step,
``(B, H, Q)`` (in the normalised space, as a correction of the seasonal-naive base when the
task uses one; :mod:`rnnlab.tasks.forecast.features`):

* ``direct`` -- :class:`rnnlab.models.seqmodel.SeqModel` (an RNNStack and a Linear on its
  last step) with ``H*Q`` outputs, reshaped to ``(B, H, Q)``;
* ``encdec`` -- :class:`~rnnlab.layers.forecasting.EncDecForecaster` (encoder final states into a
  decoder over the future steps' known inputs).

Both are trained with :class:`~rnnlab.layers.forecasting.PinballLoss`; the layers' equations and
gradcheck specs are in :mod:`rnnlab.layers.forecasting` and :mod:`rnnlab.gradcheck.specs_forecast`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...models.seqmodel import SeqModel
from ...module import DEFAULT_DTYPE, Module
from ...layers.forecasting import EncDecForecaster, PinballLoss  # noqa: F401  (re-exported)

MODELS = ("direct", "encdec")


def make_model(spec: dict, dtype: Any = DEFAULT_DTYPE) -> Module:
    """The network a spec describes (``model`` is ``direct`` or ``encdec``). The output layer starts
    at zero, so an untrained network forecasts the base (seasonal naive) exactly."""
    model = _build(spec, dtype)
    model.out.params["W"][...] = 0
    return model


def _build(spec: dict, dtype: Any) -> Module:
    q = len(spec["quantiles"])
    if spec["model"] == "direct":
        return SeqModel(spec["cell"], spec["input_size"], spec["hidden_size"], spec["horizon"] * q,
                        num_layers=spec["num_layers"], seed=spec["seed"], dtype=dtype)
    if spec["model"] == "encdec":
        return EncDecForecaster(spec["cell"], spec["input_size"], spec["future_size"], spec["hidden_size"], q,
                                num_layers=spec["num_layers"], seed=spec["seed"], dtype=dtype)
    raise ValueError(f"model must be one of {MODELS}, not {spec['model']!r}")


def run_model(model: Module, spec: dict, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of either network: ``((B, H, Q) outputs, cache)``."""
    if spec["model"] == "direct":
        y, cache = model.forward(x)
        return y.reshape(len(x), spec["horizon"], -1), cache
    return model.forward(x, u)


def backward_model(model: Module, spec: dict, dy: np.ndarray, cache: Any) -> None:
    if spec["model"] == "direct":
        model.backward(dy.reshape(len(dy), -1), cache)
    else:
        model.backward(dy, cache)
