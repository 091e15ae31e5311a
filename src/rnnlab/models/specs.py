"""The gradient-check spec of the complete char-LM model (:class:`~rnnlab.models.charlm.CharRNN`),
registered beside the model (the checker, an engine module, knows nothing of models)."""
from __future__ import annotations

import numpy as np

from ..gradcheck import Case, randomize, spec_for
from ..states import flatten, unflatten
from .charlm import CharRNN, ModelConfig


def _charlm(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, cfg in (("embedding, 2-layer LSTM, dropout", ModelConfig(5, "lstm", 3, 2, 2, dropout=0.2)),
                       ("one-hot, GRU, projection", ModelConfig(4, "gru", 3, 1, 0, proj_size=2)),
                       # 6 positions, 8 tokens: the embedding's vectors, not fused into layer 1's lookup
                       ("embedding, unfused (V > B*T), LSTM", ModelConfig(8, "lstm", 3, 1, 2))):
        model = randomize(CharRNN(cfg), rng)
        ids = rng.integers(0, cfg.vocab_size, size=(2, 3))
        (_, statesT), _ = model.forward(ids)
        states = flatten(statesT)
        inputs = {name: rng.standard_normal(a.shape) for name, a in states}

        def reseed(model: CharRNN = model) -> None:
            for k, (_, drop) in enumerate(model.rng_modules()):
                drop.rng = np.random.default_rng(k)

        def run(model=model, ids=ids, statesT=statesT, states=states, inputs=inputs, reseed=reseed):
            reseed()
            (logits, sT), cache = model.forward(ids, unflatten(statesT, [inputs[n] for n, _ in states]))
            return [logits] + [a for _, a in flatten(sT)], cache

        def grad(G, cache, model=model, statesT=statesT):
            return dict(flatten(model.backward((G[0], unflatten(statesT, G[1:])), cache)))

        cases.append(Case(label, model, inputs, run, grad, kinds={n: "state" for n, _ in states}))
    return cases


spec_for(CharRNN)(_charlm)
