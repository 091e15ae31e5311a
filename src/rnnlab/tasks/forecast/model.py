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
from .spec import MODELS as SPEC_MODELS, ForecastSpec, as_spec

class Network:
    """One kind of forecasting network behind one interface: ``build`` it from a spec, ``run`` it on
    ``(x, u)`` to ``(B, H, Q)`` outputs, ``backward`` from ``dy (B, H, Q)``, and name the ``recurrent``
    cache the training loop's diagnostics read."""

    name = ""

    def build(self, spec: ForecastSpec, dtype: Any) -> Module:
        raise NotImplementedError

    def run(self, model: Module, spec: ForecastSpec, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, model: Module, spec: ForecastSpec, dy: np.ndarray, cache: Any) -> None:
        raise NotImplementedError

    def recurrent(self, cache: Any) -> Any:
        raise NotImplementedError


class Direct(Network):
    """A SeqModel whose Linear on the last state outputs all ``H * Q`` values."""

    name = "direct"

    def build(self, spec, dtype):
        return SeqModel(spec.cell, spec.input_size, spec.hidden_size, spec.horizon * spec.num_quantiles,
                        num_layers=spec.num_layers, seed=spec.seed, dtype=dtype)

    def run(self, model, spec, x, u):
        y, cache = model.forward(x)
        return y.reshape(len(x), spec.horizon, -1), cache

    def backward(self, model, spec, dy, cache):
        model.backward(dy.reshape(len(dy), -1), cache)

    def recurrent(self, cache):
        return cache.rnn


class EncDec(Network):
    """The encoder-decoder: the encoder's final states start a decoder over the future steps' inputs."""

    name = "encdec"

    def build(self, spec, dtype):
        return EncDecForecaster(spec.cell, spec.input_size, spec.future_size, spec.hidden_size,
                                spec.num_quantiles, num_layers=spec.num_layers, seed=spec.seed, dtype=dtype)

    def run(self, model, spec, x, u):
        return model.forward(x, u)

    def backward(self, model, spec, dy, cache):
        model.backward(dy, cache)

    def recurrent(self, cache):
        return cache.enc


NETWORKS: dict[str, Network] = {n.name: n for n in (Direct(), EncDec())}
MODELS = tuple(NETWORKS)
assert MODELS == SPEC_MODELS, "spec.MODELS must name the networks"


def network(spec: ForecastSpec | str) -> Network:
    """The :class:`Network` a spec (or a model name) names (``spec.model``)."""
    name = spec if isinstance(spec, str) else spec.model
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"model must be one of {MODELS}, not {name!r}") from None


def make_model(spec: ForecastSpec | dict, dtype: Any = DEFAULT_DTYPE) -> Module:
    """The network a spec describes (``model`` is ``direct`` or ``encdec``). The output layer starts
    at zero, so an untrained network forecasts the base (seasonal naive) exactly."""
    spec = as_spec(spec)
    model = network(spec).build(spec, dtype)
    model.out.params["W"][...] = 0
    return model


def run_model(model: Module, spec: ForecastSpec, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of either network: ``((B, H, Q) outputs, cache)``."""
    return network(spec).run(model, spec, x, u)


def backward_model(model: Module, spec: ForecastSpec, dy: np.ndarray, cache: Any) -> None:
    network(spec).backward(model, spec, dy, cache)
