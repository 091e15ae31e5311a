"""LN-LSTM: layer-norm helpers, per-gate groups, batch independence, B=1 and sampling."""
import numpy as np

from rnnlab.cells import CELLS, LNLSTMCell, make_cell
from rnnlab.cells.norm import layer_norm, layer_norm_backward
from rnnlab.generate import Stepper
from rnnlab.gradcheck import randomize
from rnnlab.layers import Recurrent
from rnnlab.models import CharRNN, ModelConfig

D, H = 3, 4


def test_registered_and_initialised_as_in_ba_et_al():
    assert CELLS["lnlstm"] is LNLSTMCell
    cell = make_cell("lnlstm", D, H)
    assert cell.project_bias is False and cell.per_gate
    for key in ("x", "h", "c"):
        np.testing.assert_array_equal(cell.params[f"gamma_{key}"], 1.0)
    np.testing.assert_array_equal(cell.params["beta_c"], 0.0)
    assert not cell.buffers  # no running statistics


def test_layer_norm_groups_normalise_each_block_of_each_row(rng):
    x = rng.standard_normal((3, 4 * H)) * np.repeat([1.0, 10.0, 0.1, 3.0], H) + 5.0
    ones, zeros = np.ones(4 * H), np.zeros(4 * H)
    y, _ = layer_norm(x, ones, zeros, groups=4)
    blocks = y.reshape(3, 4, H)
    # float64: a normalised block's mean is 0 up to rounding (~1e-16 x H terms); 1e-12 has margin on any BLAS
    np.testing.assert_allclose(blocks.mean(axis=-1), 0.0, atol=1e-12)
    v = x.reshape(3, 4, H).var(axis=-1)
    np.testing.assert_allclose(blocks.var(axis=-1), v / (v + 1e-5), rtol=1e-10)  # unit variance up to eps
    joint, _ = layer_norm(x, ones, zeros, groups=1)
    # float64 mean of 4H = 16 normalised values: ~16 eps ~ 4e-15; atol 1e-12.
    np.testing.assert_allclose(joint.mean(axis=-1), 0.0, atol=1e-12)
    assert np.abs(joint.reshape(3, 4, H).mean(axis=-1)).max() > 0.1  # blocks are not centred one by one


def test_layer_norm_backward_sums_to_zero_per_group(rng):
    x, dy = rng.standard_normal((2, 4 * H)), rng.standard_normal((2, 4 * H))
    gamma, beta = rng.uniform(0.5, 2, 4 * H), rng.standard_normal(4 * H)
    _, cache = layer_norm(x, gamma, beta, groups=4)
    dx, dgamma, dbeta = layer_norm_backward(dy, gamma, beta, cache)
    # float64 sums of H values of size O(1) that cancel to 0: ~H*eps ~ 1e-15; atol 1e-12.
    np.testing.assert_allclose(dx.reshape(2, 4, H).sum(axis=-1), 0.0, atol=1e-12)
    # float64 sum over 2 rows, same order: exact or 1 ulp; default rtol 1e-7.
    np.testing.assert_allclose(dbeta, dy.sum(axis=0))
    # float64 sum over 2 rows of products: a few ulps; default rtol 1e-7.
    np.testing.assert_allclose(dgamma, (dy * cache.xhat).sum(axis=0))


def test_examples_are_independent_and_batch_of_one_works(rng):
    lay = randomize(Recurrent(LNLSTMCell(D, H)), rng)
    x = rng.standard_normal((3, 5, D))
    (y, (hT, cT)), _ = lay.forward(x)
    for b in range(3):
        (yb, (hb, cb)), _ = lay.forward(x[b:b + 1])
        # float64, one row alone against the same row in a batch: only the BLAS's blocking differs (rounding)
        np.testing.assert_allclose(yb[0], y[b], rtol=1e-12, atol=1e-14)
        # same as the line above: float64, only the BLAS's blocking differs; rtol 1e-12.
        np.testing.assert_allclose(cb[0], cT[b], rtol=1e-12, atol=1e-14)
    lay.eval()
    (y_eval, _), _ = lay.forward(x)
    np.testing.assert_array_equal(y_eval, y)  # no train/eval difference


def test_per_gate_and_joint_differ(rng):
    per_gate = randomize(Recurrent(LNLSTMCell(D, H)), rng)
    joint = Recurrent(LNLSTMCell(D, H, per_gate=False)).astype(np.float64)
    joint.load_state_dict(per_gate.state_dict())
    x = rng.standard_normal((2, 3, D))
    assert np.abs(per_gate.forward(x)[0][0] - joint.forward(x)[0][0]).max() > 1e-3


def test_bias_is_not_cancelled_by_the_normalisation(rng):
    lay = randomize(Recurrent(LNLSTMCell(D, H)), rng)
    x = rng.standard_normal((2, 3, D))
    (y, _), cache = lay.forward(x)
    lay.backward((rng.standard_normal(y.shape), None), cache)
    assert np.abs(lay.cell.grads["b"]).max() > 1e-3


def test_sampling_stepper_matches_the_model(rng):
    model = randomize(CharRNN(ModelConfig(6, "lnlstm", 5, 2, 0), dtype=np.float64), rng)  # one-hot input
    ids = rng.integers(0, 6, size=(1, 6))
    model.eval()
    (logits, _), _ = model.forward(ids)
    stepper = Stepper(model).reset(1)
    stepped = np.stack([stepper.feed(ids[:, t]).copy() for t in range(ids.shape[1])], axis=1)
    # float64 model, stepped against the full forward: same products, other grouping, 7 steps: ~1e-14; 1e-12.
    np.testing.assert_allclose(stepped, logits, rtol=1e-12, atol=1e-12)
