"""Every Module subclass must have a gradcheck spec, and every spec must pass."""
import importlib
import pkgutil

import numpy as np
import pytest

import rnnlab
from rnnlab import gradcheck
from rnnlab.cells import RNNCell
from rnnlab.gradcheck.core import Case, check_case
from rnnlab.layers import Recurrent


def _import_all_modules() -> None:
    # A layer defined in a module nobody imported would escape the walk.
    for info in pkgutil.walk_packages(rnnlab.__path__, "rnnlab."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def test_every_module_subclass_has_a_spec():
    _import_all_modules()
    classes = gradcheck.module_classes()
    assert len(classes) >= 13  # the walk found the engine's layers, not nothing
    missing = [f"{c.__module__}.{c.__qualname__}" for c in classes if c not in gradcheck.SPECS]
    assert not missing, f"modules without a gradcheck spec: {missing}"


def _spec_ids():
    _import_all_modules()
    return sorted(gradcheck.SPECS, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _spec_ids(), ids=lambda c: c.__name__)
def test_spec_passes(cls):
    rows = gradcheck.check(cls)
    assert rows, f"{cls.__name__}: spec checked nothing"
    bad = [r for r in rows if not r.passed]
    assert not bad, gradcheck.format_table(bad)
    # error within 1e-6 relative plus the finite difference's own rounding/truncation bound
    assert all(r.ratio < 1 for r in rows)
    assert sum(r.checked for r in rows) > 0


def test_specs_include_degenerate_shapes():
    labels = {case.label for cls in (rnnlab.cells.LSTMCell, rnnlab.cells.GRUCell)
              for case in gradcheck.SPECS[cls](np.random.default_rng(0))}
    assert any("B=1,T=1" in label for label in labels)


def test_check_detects_a_wrong_backward():
    """The checker must be able to fail: break the tanh derivative and watch it."""
    class BrokenRNN(RNNCell):
        abstract = True  # test-only; keeps the coverage walk honest

        def step_backward(self, dstate, cache):
            da, dhw, rest = super().step_backward(dstate, cache)
            return da * 1.01, dhw * 1.01, rest

    layer = gradcheck.randomize(Recurrent(BrokenRNN(2, 3)), np.random.default_rng(0))
    case = gradcheck.sequence_case("broken", layer, 2, 3, np.random.default_rng(1))
    rows = check_case("BrokenRNN", case)
    assert any(not r.passed for r in rows)
    # a derivative 1 % off gives a relative error ~1e-2 (float64 central differences resolve ~1e-8):
    # 1e-3 is a thousand times the tolerance, so the bug is seen on any BLAS kernel
    assert max(r.max_error for r in rows) > 1e-3


def test_relu_kinks_are_skipped_and_counted():
    """A pre-activation placed within eps of zero must be skipped, not averaged in."""
    layer = gradcheck.randomize(Recurrent(RNNCell(1, 1, nonlinearity="relu")), np.random.default_rng(0))
    cell = layer.cell
    cell.params["W_x"][...] = 1.0
    cell.params["W_h"][...] = 0.5
    cell.params["b"][...] = 0.0
    # step 0 pre-activation: x_0 + 0.5 * h_0 = 5e-6, within eps = 1e-5 of the kink
    x = np.array([[[0.5 + 5e-6], [2.0]]])
    inputs = {"x": x}
    h0 = (np.array([[-1.0]]),)

    def run():
        (y, _), cache = layer.forward(inputs["x"], h0)
        return [y], cache

    def grad(G, cache):
        dx, _ = layer.backward((G[0], None), cache)
        return {"x": dx}

    case = Case("kink", layer, inputs, run, grad, gradcheck.specs.relu_pattern)
    rows = check_case("kink", case)
    by_name = {r.tensor: r for r in rows}
    assert by_name["x"].skipped == 1 and by_name["x"].checked == 1
    assert by_name["cell.b"].checked == 0 and not by_name["cell.b"].passed  # nothing checked is no pass
    assert all(r.passed for r in rows if r.checked)


def test_list_names_task_level_models_too(capsys):
    from rnnlab.cli import main

    assert main(["gradcheck", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"SeqModel", "CharRNN", "CRF", "LSTMCell"} <= set(names)
