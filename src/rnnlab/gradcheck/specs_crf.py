"""Gradcheck spec of the linear-chain CRF (rnnlab.layers.crf).

The differentiable input is the emissions; transitions, start and end are
checked as parameters. Cases mix row lengths (a length-1 row among longer
ones, so the end score applies at different steps), take B=1 and T=1, and
draw the transitions at a scale where the pairwise marginals are far from
uniform.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..layers.crf import CRF
from .core import Case
from .specs import randomize, spec_for


def crf_case(label: str, crf: CRF, rng: np.random.Generator, lengths: list[int], T: int,
             scale: float = 1.0, as_mask: bool = True) -> Case:
    B, K = len(lengths), crf.num_tags
    inputs = {"emissions": scale * rng.standard_normal((B, T, K))}
    tags = rng.integers(0, K, size=(B, T))
    lens = np.array(lengths)
    mask = (np.arange(T) < lens[:, None]) if as_mask else lens

    def run() -> tuple[list[np.ndarray], Any]:
        loss, cache = crf.forward(inputs["emissions"], tags, mask)
        return [np.asarray(loss, dtype=np.float64)], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        return {"emissions": crf.backward(float(G[0]), cache)}

    return Case(label, crf, inputs, run, grad)


@spec_for(CRF)
def _crf(rng: np.random.Generator) -> list[Case]:
    return [
        crf_case("mixed lengths 4,1,3 (mask)", randomize(CRF(4), rng, scale=1.5), rng, [4, 1, 3], 4),
        crf_case("lengths 2,5 (lengths vector)", randomize(CRF(3), rng, scale=1.0), rng, [2, 5], 5,
                 scale=2.0, as_mask=False),
        crf_case("B=1,T=1", randomize(CRF(3), rng), rng, [1], 1),
        crf_case("B=1,T=6", randomize(CRF(5), rng, scale=2.0), rng, [6], 6),
    ]
