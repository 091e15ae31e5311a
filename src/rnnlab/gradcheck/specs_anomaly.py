"""Gradcheck specs of the anomaly detectors' layers: GaussianLatent (reparameterisation and KL),
RepeatVector and GaussianNLL (rnnlab.layers.latent, rnnlab.layers.gaussian_nll).

The random draw of GaussianLatent is replaced by a fixed eps, so every finite-difference run sees
the same sample; the KL output is checked through its own upstream gradient. GaussianNLL is
checked with and without a mask, its mean and log-variance as inputs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..layers.gaussian_nll import GaussianNLL
from ..layers.latent import GaussianLatent, RepeatVector
from .core import Case, input_case
from .specs import randomize, spec_for


def _latent_case(label: str, B: int, D: int, Z: int, rng: np.random.Generator) -> Case:
    layer = randomize(GaussianLatent(D, Z, seed=1), rng, scale=0.8)
    inputs = {"h": rng.standard_normal((B, D))}
    eps = rng.standard_normal((B, Z))

    def run() -> tuple[list[np.ndarray], Any]:
        (z, kl), cache = layer.forward(inputs["h"], eps)
        return [z, np.asarray(kl)], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        return {"h": layer.backward((G[0], float(G[1])), cache)}

    return Case(label, layer, inputs, run, grad)


@spec_for(GaussianLatent)
def _latent(rng: np.random.Generator) -> list[Case]:
    return [_latent_case("B=4,D=3,Z=2", 4, 3, 2, rng), _latent_case("B=1,D=1,Z=1", 1, 1, 1, rng)]


@spec_for(RepeatVector)
def _repeat(rng: np.random.Generator) -> list[Case]:
    return [input_case(label, RepeatVector(T), rng.standard_normal((B, D)))
            for label, B, D, T in (("B=2,D=3,T=4", 2, 3, 4), ("B=1,T=1", 1, 1, 1))]


@spec_for(GaussianNLL)
def _nll(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, shape, masked in (("(3,5)", (3, 5), False), ("(2,4) masked", (2, 4), True), ("B=1,T=1", (1, 1), False)):
        loss = GaussianNLL()
        inputs = {"mean": rng.standard_normal(shape), "logvar": rng.uniform(-1.5, 1.5, shape)}
        target = rng.standard_normal(shape)
        mask = (rng.random(shape) < 0.7).astype(np.float64) if masked else None
        if mask is not None:
            mask.flat[0] = 1.0

        def run(loss=loss, inputs=inputs, target=target, mask=mask):
            value, cache = loss.forward(inputs["mean"], inputs["logvar"], target, mask)
            return [np.asarray(value)], cache

        def grad(G, cache, loss=loss):
            dm, dv = loss.backward(float(G[0]), cache)
            return {"mean": dm, "logvar": dv}

        cases.append(Case(label, loss, inputs, run, grad))
    return cases
