"""Gradcheck specs of the forecasters' modules (rnnlab.tasks.forecast.model).

* EncDecForecaster (LSTM and GRU, one and two layers, B=1/H=1 degenerate): the encoder input and
  the decoder's future inputs are both checked, so the gradient through the decoder's initial
  state into the encoder is covered.
* PinballLoss: several quantile levels, including the single median; the loss is piecewise linear
  in the prediction, so ``kink_pattern`` (the signs of ``y - p``) skips any entry whose +-eps run
  would cross a kink (none do with these random draws; counted if they did).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..layers.forecasting import EncDecForecaster, PinballLoss
from .core import Case
from .specs import randomize, spec_for


def _encdec_case(label: str, cell: str, layers: int, B: int, L: int, H: int, Q: int,
                 rng: np.random.Generator) -> Case:
    model = randomize(EncDecForecaster(cell, 3, 2, 4, Q, num_layers=layers, seed=1), rng)
    inputs = {"x": rng.standard_normal((B, L, 3)), "u": rng.standard_normal((B, H, 2))}

    def run() -> tuple[list[np.ndarray], Any]:
        y, cache = model.forward(inputs["x"], inputs["u"])
        return [y], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        dx, du = model.backward(G[0], cache)
        return {"x": dx, "u": du}

    return Case(label, model, inputs, run, grad)


@spec_for(EncDecForecaster)
def _encdec(rng: np.random.Generator) -> list[Case]:
    return [_encdec_case("lstm,B=2,L=4,H=3,Q=2", "lstm", 1, 2, 4, 3, 2, rng),
            _encdec_case("gru,2 layers,B=2,L=3,H=2,Q=3", "gru", 2, 2, 3, 2, 3, rng),
            _encdec_case("lstm,B=1,T=1", "lstm", 1, 1, 1, 1, 1, rng)]


@spec_for(PinballLoss)
def _pinball(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, shape, q in (("(3,4) q=.1,.5,.9", (3, 4), [0.1, 0.5, 0.9]), ("(2,5) median", (2, 5), [0.5]),
                            ("B=1,H=1 q=.05,.95", (1, 1), [0.05, 0.95])):
        loss = PinballLoss()
        inputs = {"pred": rng.standard_normal(shape + (len(q),))}
        target = rng.standard_normal(shape)

        def run(loss=loss, inputs=inputs, target=target, q=q):
            value, cache = loss.forward(inputs["pred"], target, q)
            return [np.asarray(value)], cache

        def grad(G, cache, loss=loss):
            return {"pred": loss.backward(float(G[0]), cache)}

        def kinks(cache) -> np.ndarray:
            return cache.below.ravel() > 0

        cases.append(Case(label, loss, inputs, run, grad, kinks))
    return cases
