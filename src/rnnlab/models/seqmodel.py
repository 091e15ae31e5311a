"""A sequence-to-one model, shared by the adding and digits studies.

    h_1..h_T = RNNStack(x_1..x_T)        (B, T, D) -> (B, T, H)
    yhat     = h_T W + b                 a Linear on the LAST step only

The backward pass feeds a gradient only into the last step's output, so any
signal about early inputs must travel back through the recurrence: exactly
the long-range credit assignment these benchmarks are meant to test. It is
trained by the one training loop (:mod:`rnnlab.train`) through
:class:`rnnlab.experiments.seqtask.SequenceTask`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..layers import Linear, RNNStack
from ..module import DEFAULT_DTYPE, Module


class SeqCache(NamedTuple):
    rnn: Any          # StackCache
    out: Any          # LinearCache
    steps: int        # T, to rebuild the (B, T, H) output gradient


class SeqModel(Module):
    """RNNStack -> Linear on the last time step: ``forward(x) -> (yhat (B, K), cache)``."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, *,
                 num_layers: int = 1, seed: int = 0, dtype: Any = DEFAULT_DTYPE, **cell_options: Any) -> None:
        super().__init__()
        self.spec = {"cell": cell, "input_size": input_size, "hidden_size": hidden_size,
                     "output_size": output_size, "num_layers": num_layers, "seed": seed, **cell_options}
        seeds = np.random.SeedSequence(seed).spawn(2)
        self.rnn = self.add_child("rnn", RNNStack(cell, input_size, hidden_size, num_layers,
                                                  seed=int(seeds[0].generate_state(1)[0]), dtype=dtype,
                                                  **cell_options))
        self.out = self.add_child("out", Linear(self.rnn.output_size, output_size,
                                                seed=np.random.default_rng(seeds[1]), dtype=dtype))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, SeqCache]:
        (h, _), rcache = self.rnn.forward(x)
        yhat, ocache = self.out.forward(h[:, -1])
        return yhat, SeqCache(rcache, ocache, x.shape[1])

    def backward(self, dyhat: np.ndarray, cache: SeqCache) -> np.ndarray:
        dlast = self.out.backward(dyhat, cache.out)
        dh = np.zeros((dlast.shape[0], cache.steps, dlast.shape[1]), dtype=dlast.dtype)
        dh[:, -1] = dlast  # earlier steps get no direct gradient: only through time
        dx, _ = self.rnn.backward((dh, None), cache.rnn)
        return dx


def first_below(history: list[dict], key: str, threshold: float) -> dict | None:
    """The first history row whose ``key`` is below ``threshold`` (None if never)."""
    for row in history:
        if row[key] < threshold:
            return row
    return None


def _gradcheck_cases(rng: np.random.Generator) -> list:
    """Gradient-check cases: the loss gradient reaches early inputs only through time."""
    from ..gradcheck import input_case, randomize

    cases = []
    for label, cell, kw in (("LSTM, 2 layers", "lstm", {"num_layers": 2}), ("tanh RNN", "rnn", {}),
                            ("B=1,T=1 GRU", "gru", {})):
        model = randomize(SeqModel(cell, 3, 4, 2, seed=1, **kw), rng)
        B, T = (1, 1) if label.startswith("B=1") else (3, 5)
        cases.append(input_case(label, model, rng.standard_normal((B, T, 3))))
    return cases


def _register() -> None:
    from ..gradcheck import spec_for

    spec_for(SeqModel)(_gradcheck_cases)


_register()
