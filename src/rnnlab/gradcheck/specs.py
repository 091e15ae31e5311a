"""Gradcheck specs: for every Module subclass, the cases that prove its backward.

``SPECS`` maps each module class to a function ``rng -> list[Case]``. A test
walks all Module subclasses and fails if one is missing here, so no layer can
escape. Every case randomises *all* parameters (biases included) and the
initial states, and includes a degenerate shape (B=1, T=1) where it applies.

A recurrent cell with a fused kernel (rnnlab.fast) can run on four paths, and
each gets its own cases, labelled by the path (:data:`PATHS`, :func:`on_path`):
the kernel with its compiled element-wise steps (numba), the kernel with their
NumPy twins, the reference loop over the cell's own ``step_forward`` /
``step_backward``, and the kernel with the batch split over two threads
(rnnlab.fast.parallel). A case that finds itself on another path than its
label says raises instead of checking the wrong code.

Why one file of about 370 lines: it is the table of every engine module's cases (cells, layers,
losses, the normalised cells), and the coverage test reads it as one registry; the specs of models
and tasks are registered beside their code (``spec_for``) and are not here.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from .. import fast
from ..cells import GRUCell, IRNNCell, LSTMCell, RNNCell
from ..fast import accel, parallel
from ..cells.rnn import RNNStepCache
from ..layers import (Bidirectional, Dropout, Embedding, Linear, MSELoss, OneHot, Recurrent, RNNStack,
                      SoftmaxCrossEntropy)
from ..module import Module
from ..states import flatten, unflatten
from .core import Case, input_case

SpecFn = Callable[[np.random.Generator], list[Case]]
SPECS: dict[type, SpecFn] = {}


def spec_for(*classes: type) -> Callable[[SpecFn], SpecFn]:
    def register(fn: SpecFn) -> SpecFn:
        for cls in classes:
            SPECS[cls] = fn
        return fn
    return register


# -- helpers --------------------------------------------------------------------
def randomize(module: Module, rng: np.random.Generator, scale: float = 0.5) -> Module:
    """float64 and every parameter drawn afresh, so no zero bias hides a bug."""
    module.astype(np.float64)
    for _, value, _ in module.named_parameters():
        value[...] = rng.uniform(-scale, scale, size=value.shape)
    return module


def relu_pattern(cache: Any) -> np.ndarray:
    """Signs of every ReLU pre-activation found in a (nested) recurrent cache."""
    found: list[np.ndarray] = []

    def walk(node: Any) -> None:
        if isinstance(node, RNNStepCache):
            found.append((node.h > 0).ravel())
        elif isinstance(node, (tuple, list)) and not isinstance(node, np.ndarray):
            for sub in node:
                walk(sub)
    walk(cache)
    return np.concatenate(found) if found else np.zeros(0, dtype=bool)


def sequence_case(label: str, layer: Module, B: int, T: int, rng: np.random.Generator, *,
                  with_state: bool = True, kinks: bool = False, before_run: Callable[[], None] = lambda: None) -> Case:
    """A recurrent layer run on random x (and a random initial state); outputs y and the final state."""
    x = rng.standard_normal((B, T, layer.input_size))
    before_run()
    (_, stateT), _ = layer.forward(x)
    states = flatten(stateT)
    inputs = {"x": x}
    if with_state:
        inputs.update((name, rng.standard_normal(a.shape)) for name, a in states)
    kinds = {name: "state" for name, _ in states}

    def state0() -> Any:
        return unflatten(stateT, [inputs[name] for name, _ in states]) if with_state else None

    def run() -> tuple[list[np.ndarray], Any]:
        before_run()
        (y, sT), cache = layer.forward(inputs["x"], state0())
        return [y] + [a for _, a in flatten(sT)], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        dx, dstate0 = layer.backward((G[0], unflatten(stateT, G[1:])), cache)
        out = {"x": dx}
        if with_state:
            out.update(flatten(dstate0))
        return out

    return Case(label, layer, inputs, run, grad, relu_pattern if kinks else None, kinds)


# -- the paths of the time loop ------------------------------------------------------------
PATHS = ("compiled steps", "NumPy steps", "reference loop", "batch split")


@contextmanager
def taking(path: str) -> Iterator[None]:
    """Run a block on one path of the recurrent time loop (see the module docstring)."""
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    kernels, threads = fast.enabled(), parallel._threads_override
    fast.set_enabled(path != "reference loop")
    parallel.set_threads(2 if path == "batch split" else 1)
    try:
        with accel.using(path != "NumPy steps"):
            yield
    finally:
        fast.set_enabled(kernels)
        parallel.set_threads(threads)


def available_paths(batch: int) -> list[str]:
    """The paths this installation can take for a batch of ``batch`` rows: compiled steps need
    numba, the batch split threadpoolctl and at least 2 x parallel.MIN_ROWS rows."""
    with taking("batch split"):
        split = len(parallel.partition(batch)) > 1
    return [p for p in PATHS if (p != "compiled steps" or accel.available()) and (p != "batch split" or split)]


def on_path(path: str, case: Case) -> Case:
    """``case`` run (forward and backward) on ``path``, labelled ``"<path>: <label>"``."""
    layer = case.module

    def run() -> tuple[list[np.ndarray], Any]:
        with taking(path):
            kernel = fast.kernel_for(layer.cell)
            compiled = accel.steps(layer.cell.params["W_h"].dtype) is not None
            outputs, cache = case.run()
        taken = {"reference loop": kernel is None, "NumPy steps": kernel is not None and not compiled,
                 "compiled steps": kernel is not None and compiled,
                 "batch split": kernel is not None and cache.parts is not None}[path]
        if not taken:
            raise RuntimeError(f"gradcheck case {case.label!r} did not run on the {path} path")
        return outputs, cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        with taking(path):
            return case.grad(G, cache)

    return Case(f"{path}: {case.label}", layer, case.inputs, run, grad, case.kink_pattern, case.kinds)


def cell_cases(make: Callable[[int, int], Any], rng: np.random.Generator, kinks: bool = False, *,
               label: str = "", setup: Callable[[Recurrent, np.random.Generator], Any] = lambda layer, rng: None,
               sizes: tuple = ((3, 4, 3, 4), (1, 1, 2, 3)), others: tuple | None = (2, 3, 2, 3),
               split: tuple | None = (16, 2, 1, 2)) -> list[Case]:
    """A cell's cases on every path: each (B, T, D, H) of ``sizes`` on the default path (compiled
    steps where numba is installed), ``others`` (None: the first of ``sizes``) on the other
    single-threaded paths, and ``split`` (B >= 16) on the batch split; ``setup(layer, rng)``
    prepares each layer. The other paths get smaller cases: every path is checked, while the
    check of all of them costs about three times that of the default path alone."""
    if kernel_for_cell(make) is None:
        plans = [("reference loop", size) for size in sizes]
    else:
        paths = available_paths(split[0] if split is not None else 1)
        default = paths[0]
        plans = [(default, size) for size in sizes]
        plans += [(p, others or sizes[0]) for p in paths if p not in (default, "batch split")]
        if split is not None and "batch split" in paths:
            plans.append(("batch split", split))
    cases = []
    for path, (B, T, D, H) in plans:
        layer = randomize(Recurrent(make(D, H)), rng)
        setup(layer, rng)
        cases.append(on_path(path, sequence_case(f"{label}B={B},T={T}", layer, B, T, rng, kinks=kinks)))
    return cases


def kernel_for_cell(make: Callable[[int, int], Any]) -> Any:
    """The kernel registered for the class of cell ``make`` builds (None: reference loop only)."""
    return fast.KERNELS.get(type(make(1, 1)))


# -- cells ------------------------------------------------------------------------
@spec_for(RNNCell)
def _rnn(rng: np.random.Generator) -> list[Case]:
    tanh = cell_cases(lambda d, h: RNNCell(d, h), rng)
    relu = cell_cases(lambda d, h: RNNCell(d, h, nonlinearity="relu"), rng, kinks=True, label="relu ")
    return tanh + relu


@spec_for(IRNNCell)
def _irnn(rng: np.random.Generator) -> list[Case]:
    return cell_cases(lambda d, h: IRNNCell(d, h), rng, kinks=True)


@spec_for(LSTMCell)
def _lstm(rng: np.random.Generator) -> list[Case]:
    return cell_cases(lambda d, h: LSTMCell(d, h), rng)


@spec_for(GRUCell)
def _gru(rng: np.random.Generator) -> list[Case]:
    return cell_cases(lambda d, h: GRUCell(d, h), rng)


# -- recurrent containers ---------------------------------------------------------------
@spec_for(Recurrent)
def _recurrent(rng: np.random.Generator) -> list[Case]:
    rev = randomize(Recurrent(GRUCell(3, 4), reverse=True), rng)
    fresh = randomize(Recurrent(LSTMCell(2, 3)), rng)
    return [sequence_case("reverse GRU", rev, 2, 5, rng),
            sequence_case("zero initial state", fresh, 2, 3, rng, with_state=False)]


@spec_for(Bidirectional)
def _bidirectional(rng: np.random.Generator) -> list[Case]:
    bi = randomize(Bidirectional(LSTMCell(3, 4), LSTMCell(3, 4)), rng)
    return [sequence_case("LSTM", bi, 2, 4, rng), sequence_case("B=1,T=1", bi, 1, 1, rng)]


def _reseed(stack: RNNStack) -> Callable[[], None]:
    def reset() -> None:  # the same dropout masks on every run of the check
        for k, drop in enumerate(stack.drops):
            if drop is not None:
                drop.rng = np.random.default_rng(k)
    return reset


@spec_for(RNNStack)
def _stack(rng: np.random.Generator) -> list[Case]:
    deep = randomize(RNNStack("lstm", 3, 4, 2, dropout=0.3, proj_size=2), rng)
    bi = randomize(RNNStack("gru", 2, 3, 2, bidirectional=True), rng)
    return [sequence_case("2-layer LSTM, dropout, proj", deep, 2, 3, rng, before_run=_reseed(deep)),
            sequence_case("2-layer bi-GRU", bi, 2, 3, rng)]


# -- feed-forward layers -------------------------------------------------------------
def _simple_case(label: str, module: Module, inputs: dict[str, np.ndarray], forward: Callable,
                 backward: Callable) -> Case:
    def run() -> tuple[list[np.ndarray], Any]:
        out, cache = forward()
        return [np.asarray(out, dtype=np.float64)], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        return backward(G[0], cache)

    return Case(label, module, inputs, run, grad)


@spec_for(Embedding)
def _embedding(rng: np.random.Generator) -> list[Case]:
    emb = randomize(Embedding(5, 3), rng)
    ids = np.array([[0, 4, 4, 1], [2, 0, 3, 4]])  # repeats test gradient accumulation
    one = np.array([[2]])
    return [_simple_case(f"ids {i.shape}", emb, {}, lambda i=i: emb.forward(i),
                         lambda g, c: emb.backward(g, c) or {}) for i in (ids, one)]


@spec_for(OneHot)
def _onehot(rng: np.random.Generator) -> list[Case]:
    # One-hot has no parameters; what can be wrong is the path it feeds, so the
    # case checks one-hot ids through a recurrent layer's input projection.
    onehot = OneHot(4).astype(np.float64)
    layer = randomize(Recurrent(RNNCell(4, 3)), rng)
    ids = rng.integers(0, 4, size=(2, 3))

    def run() -> tuple[list[np.ndarray], Any]:
        x, ocache = onehot.forward(ids)
        (y, _), rcache = layer.forward(x)
        return [y], (ocache, rcache)

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        dx, _ = layer.backward((G[0], None), cache[1])
        assert onehot.backward(dx, cache[0]) is None
        return {}

    return [Case("one-hot -> RNN", layer, {}, run, grad)]


@spec_for(Linear)
def _linear(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape in ((2, 3, 4), (5, 4), (1, 1, 4)):
        lin = randomize(Linear(4, 3), rng)
        cases.append(input_case(f"x {shape}", lin, rng.standard_normal(shape)))
    return cases


@spec_for(Dropout)
def _dropout(rng: np.random.Generator) -> list[Case]:
    drop = Dropout(0.4)
    inputs = {"x": rng.standard_normal((3, 4, 5))}

    def forward() -> Any:
        drop.rng = np.random.default_rng(7)  # one fixed mask for all runs
        return drop.forward(inputs["x"])
    return [_simple_case("p=0.4", drop, inputs, forward, lambda g, c: {"x": drop.backward(g, c)})]


@spec_for(SoftmaxCrossEntropy)
def _cross_entropy(rng: np.random.Generator) -> list[Case]:
    ce = SoftmaxCrossEntropy()
    cases = []
    for label, shape, scale, masked in (("(B,T,V) masked", (2, 3, 5), 2.0, True), ("(N,V)", (4, 6), 2.0, False),
                                        ("logits ~1e2", (2, 2, 4), 100.0, False), ("B=1,T=1", (1, 1, 3), 1.0, False)):
        inputs = {"logits": scale * rng.standard_normal(shape)}
        targets = rng.integers(0, shape[-1], size=shape[:-1])
        mask = (rng.random(shape[:-1]) > 0.3).astype(float) if masked else None
        if mask is not None:   # at least one position counted and one masked, whatever the draw
            mask.flat[0], mask.flat[-1] = 1.0, 0.0
        cases.append(_simple_case(
            label, ce, inputs, lambda i=inputs, t=targets, m=mask: ce.forward(i["logits"], t, m),
            lambda g, c: {"logits": ce.backward(float(g), c)}))
    return cases


@spec_for(MSELoss)
def _mse(rng: np.random.Generator) -> list[Case]:
    mse = MSELoss()
    inputs = {"pred": rng.standard_normal((2, 3, 2))}
    target = rng.standard_normal((2, 3, 2))
    mask = (rng.random((2, 3, 2)) > 0.3).astype(float)
    mask.flat[0], mask.flat[-1] = 1.0, 0.0   # both kinds of entry, whatever the draw
    return [_simple_case(label, mse, inputs, lambda m=m: mse.forward(inputs["pred"], target, m),
                         lambda g, c: {"pred": mse.backward(float(g), c)})
            for label, m in (("plain", None), ("masked", mask))]


# -- normalised LSTMs (BN-LSTM, LN-LSTM) --------------------------------------------------
from ..cells import BNLSTMCell, LNLSTMCell  # noqa: E402  (appended section)


def random_population(cell: BNLSTMCell, rng: np.random.Generator, trained_steps: int) -> BNLSTMCell:
    """Random population statistics (variances in [0.5, 2]) with ``trained_steps`` slots filled."""
    for name, value in cell.buffers.items():
        if name.startswith("mean_"):
            value[...] = rng.standard_normal(value.shape)
        elif name.startswith("var_"):
            value[...] = rng.uniform(0.5, 2.0, size=value.shape)
    cell.buffers["trained_steps"][0] = trained_steps
    return cell


@spec_for(BNLSTMCell)
def _bnlstm(rng: np.random.Generator) -> list[Case]:
    # Training mode (batch statistics, examples coupled) needs B >= 2. The
    # finite differences of BN lose accuracy where a feature's batch variance
    # is tiny (truncation ~ eps^2 / sigma^3), which B = 3 makes likely; B = 5
    # keeps every batch variance of this case well away from zero.
    # The batch split cannot run training mode (the statistics couple the rows): eval only.
    def make(d: int, h: int) -> BNLSTMCell:
        return BNLSTMCell(d, h, max_steps=8)

    def population(layer: Recurrent, rng: np.random.Generator) -> None:
        random_population(layer.cell, rng, trained_steps=2)
        layer.eval()

    cases = cell_cases(make, rng, label="train ", sizes=((5, 3, 3, 4),), others=None, split=None)
    # Eval mode: population statistics; T=4 > trained_steps=2, so steps 2 and 3 reuse slot 1.
    # Off the default path a smaller eval case (the normalised cells' forward is the slowest of all).
    return cases + cell_cases(make, rng, label="eval ", setup=population, others=(3, 4, 2, 2), split=(16, 2, 1, 2))


@spec_for(LNLSTMCell)
def _lnlstm(rng: np.random.Generator) -> list[Case]:
    # Few features per group (2 normalise to +-1) make nearly flat groups likely among 16 rows,
    # where finite differences lose their accuracy: H = 4 off the default path too.
    sizes = dict(others=(3, 3, 2, 4), split=(16, 2, 2, 4))   # D = 1: LN(x w) would not depend on |x|
    per_gate = cell_cases(lambda d, h: LNLSTMCell(d, h), rng, **sizes)
    joint = cell_cases(lambda d, h: LNLSTMCell(d, h, per_gate=False), rng, label="joint 4H ", **sizes)
    return per_gate + joint
