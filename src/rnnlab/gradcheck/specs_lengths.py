"""Gradcheck cases with variable lengths (``forward(x, state0, lengths)``), added to the specs of
Recurrent, Bidirectional and RNNStack.

Each case has rows of different lengths, one of them 1, and checks y (0 on the padding), the
final state, dx (0 on the padding: x there is perturbed too, and must change nothing), the
initial-state gradient and every weight; reverse directions start at each row's own last token.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np

from .. import fast
from ..cells import BNLSTMCell, GRUCell, LSTMCell, RNNCell
from ..layers import Bidirectional, Recurrent, RNNStack
from ..module import Module
from ..states import flatten, unflatten
from .core import Case
from .specs import SPECS, randomize


def lengths_case(label: str, layer: Module, lengths: list[int], T: int, rng: np.random.Generator, *,
                 before_run: Callable[[], None] = lambda: None,
                 context: Callable[[], Any] = contextlib.nullcontext) -> Case:
    """A recurrent layer on a right-padded batch: outputs y and the final state; inputs x and the
    initial state. ``context`` wraps every run (e.g. :func:`rnnlab.fast.reference_only`)."""
    lengths_ = np.array(lengths)
    x = rng.standard_normal((len(lengths), T, layer.input_size))
    with context():
        before_run()
        (_, stateT), _ = layer.forward(x, None, lengths_)
    states = flatten(stateT)
    inputs = {"x": x, **{name: rng.standard_normal(a.shape) for name, a in states}}

    def run() -> tuple[list[np.ndarray], Any]:
        with context():
            before_run()
            s0 = unflatten(stateT, [inputs[name] for name, _ in states])
            (y, sT), cache = layer.forward(inputs["x"], s0, lengths_)
        return [y] + [a for _, a in flatten(sT)], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        with context():
            dx, dstate0 = layer.backward((G[0], unflatten(stateT, G[1:])), cache)
        return {"x": dx, **dict(flatten(dstate0))}

    return Case(label, layer, inputs, run, grad, kinds={name: "state" for name, _ in states})


# Each function draws from its own fixed generator, not the one passed in: the draws then do not
# depend on how many cases the other specs of the class consumed before (a BN case's finite
# differences are only as good as its batch variances, so its draw is chosen, not incidental).
def _recurrent(_: np.random.Generator) -> list[Case]:
    rng = np.random.default_rng(101)
    bn = randomize(Recurrent(BNLSTMCell(2, 3, max_steps=8)), rng)   # batch statistics of the running rows
    return [
        lengths_case("lengths LSTM", randomize(Recurrent(LSTMCell(3, 4)), rng), [3, 1, 4, 2], 4, rng),
        lengths_case("lengths reverse GRU, max < T", randomize(Recurrent(GRUCell(3, 4), reverse=True), rng),
                     [2, 4, 1], 5, rng),
        lengths_case("lengths reverse tanh RNN", randomize(Recurrent(RNNCell(2, 3), reverse=True), rng),
                     [1, 3, 2], 3, rng),
        lengths_case("lengths reverse LSTM, reference loop", randomize(Recurrent(LSTMCell(2, 3), reverse=True), rng),
                     [2, 3, 1], 3, rng, context=fast.reference_only),
        lengths_case("lengths BN-LSTM train", bn, [3, 3, 2, 2, 3, 1], 3, rng),
    ]


def _bidirectional(_: np.random.Generator) -> list[Case]:
    rng = np.random.default_rng(102)
    lstm = randomize(Bidirectional(LSTMCell(3, 4), LSTMCell(3, 4)), rng)
    gru = randomize(Bidirectional(GRUCell(2, 3), GRUCell(2, 3)), rng)
    return [lengths_case("lengths LSTM", lstm, [3, 1, 4], 4, rng),
            lengths_case("lengths GRU, max < T", gru, [1, 3], 4, rng)]


def _stack(_: np.random.Generator) -> list[Case]:
    rng = np.random.default_rng(103)
    deep = randomize(RNNStack("lstm", 3, 4, 2, dropout=0.3, proj_size=2), rng)
    bi = randomize(RNNStack("gru", 2, 3, 2, bidirectional=True), rng)

    def reseed() -> None:  # the same dropout masks on every run of the check
        for k, drop in enumerate(deep.drops):
            if drop is not None:
                drop.rng = np.random.default_rng(k)
    return [lengths_case("lengths 2-layer LSTM, dropout, proj", deep, [2, 3, 1], 3, rng, before_run=reseed),
            lengths_case("lengths 2-layer bi-GRU", bi, [3, 1, 2], 3, rng)]


def _extend(cls: type, extra: Callable[[np.random.Generator], list[Case]]) -> None:
    """Append ``extra``'s cases to the spec of ``cls`` (its own cases first, unchanged)."""
    base = SPECS[cls]
    SPECS[cls] = lambda rng: base(rng) + extra(rng)


for _cls, _extra in ((Recurrent, _recurrent), (Bidirectional, _bidirectional), (RNNStack, _stack)):
    _extend(_cls, _extra)
