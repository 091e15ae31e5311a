"""BN-LSTM: batch-norm helpers, population statistics per step, eval beyond the trained steps, buffers."""
import numpy as np
import pytest

from rnnlab.cells import CELLS, BNLSTMCell, make_cell
from rnnlab.cells.norm import batch_norm, batch_norm_backward, batch_stats
from rnnlab.errors import ConfigError
from rnnlab.generate import Stepper
from rnnlab.gradcheck import randomize
from rnnlab.gradcheck.specs import random_population
from rnnlab.layers import Recurrent
from rnnlab.models import CharRNN, ModelConfig

D, H = 3, 4


def layer(rng, **kw):
    return randomize(Recurrent(BNLSTMCell(D, H, **kw)), rng)


def test_registered_and_initialised_as_in_the_paper():
    assert CELLS["bnlstm"] is BNLSTMCell
    cell = make_cell("bnlstm", D, H)
    assert cell.project_bias is False and cell.training
    for key in ("x", "h", "c"):
        np.testing.assert_array_equal(cell.params[f"gamma_{key}"], np.float32(0.1))
    np.testing.assert_array_equal(cell.params["beta_c"], 0.0)
    np.testing.assert_array_equal(cell.params["b"][H:2 * H], 1.0)  # forget bias, now after the BN
    assert "beta_x" not in cell.params and "beta_h" not in cell.params


def test_batch_norm_backward_sums_to_zero_and_eval_is_affine(rng):
    x, dy = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    gamma, beta = rng.uniform(0.5, 2, 6), rng.standard_normal(6)
    mu, var = batch_stats(x)
    y, cache = batch_norm(x, gamma, beta, mu, var, True)
    # float64: the normalised batch's mean is beta up to rounding (~1e-16 x a few terms)
    np.testing.assert_allclose(y.mean(axis=0), beta, atol=1e-12)
    dx, dgamma, dbeta = batch_norm_backward(dy, gamma, beta, cache)
    np.testing.assert_allclose(dx.sum(axis=0), 0.0, atol=1e-12)  # a shift of x changes nothing
    # float64 sum over a batch of <= 8 rows, two orders: a few ulps; assert_allclose's default rtol 1e-7.
    np.testing.assert_allclose(dbeta, dy.sum(axis=0))
    _, cache = batch_norm(x, gamma, None, mu, var, False)
    dx_eval, _, no_beta = batch_norm_backward(dy, gamma, None, cache)
    assert no_beta is None
    # float64 elementwise dy*gamma/sqrt(var+eps), same formula: a few ulps; default rtol 1e-7.
    np.testing.assert_allclose(dx_eval, dy * gamma / np.sqrt(var + 1e-5))


def test_bias_is_not_cancelled_by_the_normalisation(rng):
    lay = layer(rng)
    x = rng.standard_normal((4, 3, D))
    (y0, _), cache = lay.forward(x)
    lay.backward((rng.standard_normal(y0.shape), None), cache)
    assert np.abs(lay.cell.grads["b"]).max() > 1e-3
    lay.cell.params["b"][:] += 0.5
    (y1, _), _ = lay.forward(x)
    assert np.abs(y1 - y0).max() > 1e-3


def test_training_updates_population_statistics_per_step(rng):
    lay = layer(rng, max_steps=6, momentum=0.1)
    cell = lay.cell
    B, T = 4, 3
    x = rng.standard_normal((B, T, D))
    (y, (_, cT)), _ = lay.forward(x)
    h_prev = np.concatenate([np.zeros((B, 1, H)), y[:, :-1]], axis=1)
    for t in range(T):
        for key, pre in (("x", x[:, t] @ cell.params["W_x"]), ("h", h_prev[:, t] @ cell.params["W_h"])):
            # float32 buffers (the layer's default dtype, eps 1.2e-7): a mean or variance of B = 4 values of
            # size O(1) is exact to a few ulps; atol 1e-6 is ~10 ulps
            np.testing.assert_allclose(cell.buffers[f"mean_{key}"][t], 0.1 * pre.mean(axis=0), atol=1e-6)
            np.testing.assert_allclose(cell.buffers[f"var_{key}"][t], 0.9 + 0.1 * pre.var(axis=0, ddof=1), atol=1e-6)
    # float32 mean of B = 4 cell states of size O(1) times 0.1: a few ulps; atol 1e-6 ~10 ulps.
    np.testing.assert_allclose(cell.buffers["mean_c"][T - 1], 0.1 * cT.mean(axis=0), atol=1e-6)
    untouched = cell.buffers["mean_x"][T:]
    np.testing.assert_array_equal(untouched, 0.0)
    np.testing.assert_array_equal(cell.buffers["var_x"][T:], 1.0)
    assert cell.buffers["trained_steps"][0] == T


def test_steps_past_max_steps_share_the_last_slot(rng):
    lay = layer(rng, max_steps=2, momentum=0.5)
    x = rng.standard_normal((3, 5, D))
    lay.forward(x)
    assert lay.cell.buffers["trained_steps"][0] == 2
    # slot 1 saw steps 1..4: four momentum updates from 0, so its mean is no single step's
    mean_x = x @ lay.cell.params["W_x"]
    expected = 0.0
    for t in range(1, 5):
        expected = 0.5 * expected + 0.5 * mean_x[:, t].mean(axis=0)
    # float32: four momentum updates of a mean of 3 values, O(1): ~10 roundings of ~6e-8; atol 1e-6.
    np.testing.assert_allclose(lay.cell.buffers["mean_x"][1], expected, atol=1e-6)


def test_eval_reuses_the_last_trained_step_beyond_it(rng):
    lay = layer(rng, max_steps=8)
    random_population(lay.cell, rng, trained_steps=2)
    lay.eval()
    x = rng.standard_normal((3, 5, D))
    (y, _), _ = lay.forward(x)
    # The same population with slots 2..4 set to slot 1 and marked trained must give the same output.
    copied = Recurrent(BNLSTMCell(D, H, max_steps=8)).astype(np.float64)
    copied.load_state_dict(lay.state_dict())
    for name, buf in copied.cell.buffers.items():
        if name != "trained_steps":
            buf[2:5] = buf[1]
    copied.cell.buffers["trained_steps"][0] = 5
    copied.eval()
    (y_copied, _), _ = copied.forward(x)
    np.testing.assert_array_equal(y_copied, y)
    # ...and the test can fail: slots 2..4 with their own (random) statistics do change steps 2..4.
    lay.cell.buffers["trained_steps"][0] = 5
    (y_own, _), _ = lay.forward(x)
    np.testing.assert_array_equal(y_own[:, :2], y[:, :2])
    assert np.abs(y_own[:, 2:] - y[:, 2:]).max() > 1e-3


def test_eval_does_not_touch_the_buffers_and_differs_from_training(rng):
    lay = layer(rng)
    x = rng.standard_normal((4, 3, D))
    lay.forward(x)
    before = lay.state_dict()
    lay.eval()
    (y_eval, _), _ = lay.forward(x)
    for name, value in lay.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    lay.train()
    (y_train, _), _ = lay.forward(x)
    assert np.abs(y_train - y_eval).max() > 1e-3


def test_batch_of_one_needs_eval_mode(rng):
    lay = layer(rng)
    x = rng.standard_normal((1, 2, D))
    with pytest.raises(ConfigError, match="at least 2"):
        lay.forward(x)
    lay.eval()
    (y, _), _ = lay.forward(x)
    assert np.isfinite(y).all()


def test_state_dict_holds_the_buffers_and_round_trips(rng):
    lay = layer(rng, max_steps=5)
    lay.forward(rng.standard_normal((3, 4, D)))
    state = lay.state_dict()
    for key in ("x", "h", "c"):
        assert state[f"cell.mean_{key}"].shape == state[f"cell.var_{key}"].shape
        assert state[f"cell.mean_{key}"].shape[0] == 5
    assert state["cell.trained_steps"][0] == 4
    fresh = Recurrent(BNLSTMCell(D, H, max_steps=5, seed=9)).astype(np.float64)
    fresh.load_state_dict(state)
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    lay.eval()
    fresh.eval()
    x = rng.standard_normal((2, 6, D))
    np.testing.assert_array_equal(fresh.forward(x)[0][0], lay.forward(x)[0][0])
    with pytest.raises(ValueError, match="shape"):
        Recurrent(BNLSTMCell(D, H, max_steps=4)).astype(np.float64).load_state_dict(state)


def test_float32_stays_float32(rng):
    lay = Recurrent(BNLSTMCell(D, H))
    x = rng.standard_normal((3, 4, D)).astype(np.float32)
    (y, state), cache = lay.forward(x)
    dx, _ = lay.backward((np.ones_like(y), None), cache)
    assert y.dtype == state[1].dtype == dx.dtype == np.float32
    assert all(v.dtype == np.float32 for _, v in lay.named_buffers())


def test_sampling_stepper_matches_the_eval_model(rng):
    """generate.Stepper (one character at a time, B=1) must leave b to the cell, as the loop does."""
    model = CharRNN(ModelConfig(6, "bnlstm", 5, 2, 4, cell_options={"max_steps": 4}), dtype=np.float64)
    randomize(model, rng)
    for layer_ in model.rnn.layers:
        random_population(layer_.cell, rng, trained_steps=3)
    model.eval()
    ids = rng.integers(0, 6, size=(1, 7))  # longer than the trained steps
    (logits, _), _ = model.forward(ids)
    stepper = Stepper(model).reset(1)
    stepped = np.stack([stepper.feed(ids[:, t]).copy() for t in range(ids.shape[1])], axis=1)
    # float64 model: stepping and the full forward do the same products grouped differently over 7 steps
    # and widths <= 8: ~1e-14 relative; rtol/atol 1e-12 leave 100x.
    np.testing.assert_allclose(stepped, logits, rtol=1e-12, atol=1e-12)
