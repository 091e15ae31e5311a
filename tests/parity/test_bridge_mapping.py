"""rnnlab.torch_bridge without torch: names, layouts, bias folding, state layout and errors."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab.gradcheck import randomize
from rnnlab.layers import Embedding, Linear, RNNStack
from rnnlab.torch_bridge import (
    embedding_from_torch, embedding_to_torch, linear_from_torch, linear_to_torch, stack_from_torch,
    stack_grads_to_torch, stack_to_torch, states_from_torch, states_to_torch, torch_cell_name,
    torch_module_kwargs,
)

D, H = 4, 3


def test_bridge_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None; import rnnlab.torch_bridge; print('ok')"
    src = str(Path(rnnlab.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_names_shapes_and_zero_hidden_bias_for_bidirectional_lstm():
    stack = randomize(RNNStack("lstm", D, H, 2, bidirectional=True), np.random.default_rng(0))
    sd = stack_to_torch(stack)
    expected = {f"{w}_{m}_l{k}{r}" for w in ("weight", "bias") for m in ("ih", "hh") for k in (0, 1)
                for r in ("", "_reverse")}
    assert set(sd) == expected
    assert sd["weight_ih_l0"].shape == (4 * H, D) and sd["weight_ih_l1_reverse"].shape == (4 * H, 2 * H)
    assert sd["weight_hh_l1"].shape == (4 * H, H)
    np.testing.assert_array_equal(sd["weight_ih_l1_reverse"], stack.layers[1].bwd.cell.params["W_x"].T)
    np.testing.assert_array_equal(sd["bias_ih_l0"], stack.layers[0].fwd.cell.params["b"])
    assert not any(sd[k].any() for k in sd if k.startswith("bias_hh"))


def test_gru_hidden_bias_carries_b_hn_and_import_folds_r_z():
    stack = randomize(RNNStack("gru", D, H, 1), np.random.default_rng(1))
    cell = stack.layers[0].cell
    sd = stack_to_torch(stack)
    np.testing.assert_array_equal(sd["bias_hh_l0"], np.r_[np.zeros(2 * H), cell.params["b_hn"]])
    rng = np.random.default_rng(2)
    sd = {k: rng.standard_normal(v.shape) for k, v in sd.items()}
    stack_from_torch(stack, sd)
    b_ih, b_hh = sd["bias_ih_l0"], sd["bias_hh_l0"]
    # float64 b_ih + b_hh: one rounding, the bridge does the same sum; default rtol 1e-7.
    np.testing.assert_allclose(cell.params["b"], np.r_[b_ih[:2 * H] + b_hh[:2 * H], b_ih[2 * H:]])
    # a copy: exact; default rtol 1e-7.
    np.testing.assert_allclose(cell.params["b_hn"], b_hh[2 * H:])
    # a transpose: exact; default rtol 1e-7.
    np.testing.assert_allclose(cell.params["W_h"], sd["weight_hh_l0"].T)


def test_lstm_import_sums_the_two_biases():
    stack = RNNStack("lstm", D, H, 1, dtype=np.float64)
    rng = np.random.default_rng(3)
    sd = {k: rng.standard_normal(v.shape) for k, v in stack_to_torch(stack).items()}
    stack_from_torch(stack, sd)
    # float64 sum of two biases: one rounding, the same sum; default rtol 1e-7.
    np.testing.assert_allclose(stack.layers[0].cell.params["b"], sd["bias_ih_l0"] + sd["bias_hh_l0"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradient_mapping_of_biases(cell):
    stack = RNNStack(cell, D, H, 1, dtype=np.float64)
    c = stack.layers[0].cell
    rng = np.random.default_rng(4)
    for name in c.grads:
        c.grads[name][...] = rng.standard_normal(c.grads[name].shape)
    g = stack_grads_to_torch(stack)
    np.testing.assert_array_equal(g["bias_ih_l0"], c.grads["b"])
    expected_hh = np.r_[c.grads["b"][:2 * H], c.grads["b_hn"]] if cell == "gru" else c.grads["b"]
    np.testing.assert_array_equal(g["bias_hh_l0"], expected_hh)
    np.testing.assert_array_equal(g["weight_ih_l0"], c.grads["W_x"].T)


def test_state_layout_rows_are_layer_major_then_direction():
    stack = RNNStack("lstm", D, H, 2, bidirectional=True)
    B = 2
    h = np.arange(4 * B * H, dtype=float).reshape(4, B, H)
    c = -h
    states = states_from_torch(stack, h, c)
    assert len(states) == 2
    (f0, b0), (f1, b1) = states
    np.testing.assert_array_equal(f0[0], h[0])
    np.testing.assert_array_equal(b0[0], h[1])
    np.testing.assert_array_equal(f1[0], h[2])
    np.testing.assert_array_equal(b1[1], c[3])
    back_h, back_c = states_to_torch(stack, states)
    np.testing.assert_array_equal(back_h, h)
    np.testing.assert_array_equal(back_c, c)


def test_state_conversion_errors():
    lstm = RNNStack("lstm", D, H, 2)
    gru = RNNStack("gru", D, H, 2)
    h = np.zeros((2, 1, H))
    with pytest.raises(ValueError, match="2 arrays"):
        states_from_torch(lstm, h)  # c missing
    with pytest.raises(ValueError, match="1 arrays"):
        states_from_torch(gru, h, h)
    with pytest.raises(ValueError, match="state shape"):
        states_from_torch(gru, np.zeros((4, 1, H)))
    with pytest.raises(ValueError, match="layer states"):
        states_to_torch(gru, [(h[0],)])


def test_import_errors_leave_the_stack_untouched():
    stack = RNNStack("gru", D, H, 2, dtype=np.float64)
    before = stack.state_dict()
    good = stack_to_torch(stack)
    missing = {k: v for k, v in good.items() if k != "bias_hh_l1"}
    with pytest.raises(ValueError, match="missing 'bias_hh_l1'"):
        stack_from_torch(stack, {k: v + 1 for k, v in missing.items()})
    wrong = {**good, "weight_hh_l1": np.zeros((3 * H, H + 1))}
    with pytest.raises(ValueError, match="shape mismatch for 'weight_hh_l1'"):
        stack_from_torch(stack, {k: v + 1 if k != "weight_hh_l1" else v for k, v in wrong.items()})
    extra = {**good, "weight_ih_l2": np.zeros((3 * H, H)), "bias_ih_l0_reverse": np.zeros(3 * H)}
    with pytest.raises(ValueError, match="lacks"):
        stack_from_torch(stack, extra)
    for name, value in before.items():
        np.testing.assert_array_equal(stack.state_dict()[name], value)


def test_prefix_keeps_other_keys_out():
    stack = randomize(RNNStack("rnn", D, H, 1), np.random.default_rng(5))
    sd = stack_to_torch(stack, prefix="rnn.")
    assert set(sd) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"}
    sd["embedding.weight"] = np.zeros((5, D))  # a language model's other layers are not the stack's business
    fresh = RNNStack("rnn", D, H, 1, dtype=np.float64, seed=3)
    stack_from_torch(fresh, sd, prefix="rnn.")
    np.testing.assert_array_equal(fresh.layers[0].cell.params["W_x"], stack.layers[0].cell.params["W_x"])


def test_cell_names_and_module_kwargs():
    assert [torch_cell_name(n) for n in ("lstm", "gru", "rnn", "irnn")] == ["LSTM", "GRU", "RNN", "RNN"]
    with pytest.raises(ValueError, match="no PyTorch equivalent"):
        torch_cell_name("bnlstm")
    kw = torch_module_kwargs(RNNStack("irnn", D, H, 3, dropout=0.25, bidirectional=True))
    assert kw == dict(input_size=D, hidden_size=H, num_layers=3, batch_first=True, bidirectional=True,
                      dropout=0.25, nonlinearity="relu")
    assert torch_module_kwargs(RNNStack("rnn", D, H))["nonlinearity"] == "tanh"
    assert torch_module_kwargs(RNNStack("rnn", D, H, nonlinearity="relu"))["nonlinearity"] == "relu"
    assert "nonlinearity" not in torch_module_kwargs(RNNStack("gru", D, H))


def test_projection_is_refused_unless_ignored():
    stack = RNNStack("lstm", D, H, 1, proj_size=2)
    for fn in (stack_to_torch, stack_grads_to_torch, torch_module_kwargs):
        with pytest.raises(ValueError, match="proj_size"):
            fn(stack)
    with pytest.raises(ValueError, match="proj_size"):
        stack_from_torch(stack, {})
    assert set(stack_to_torch(stack, ignore_proj=True)) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    proj = linear_to_torch(stack.proj)
    assert set(proj) == {"weight"}  # bias-free: torch.nn.Linear(bias=False)
    np.testing.assert_array_equal(proj["weight"], stack.proj.params["W"].T)


def test_linear_and_embedding_layouts_and_errors():
    lin = randomize(Linear(D, 2), np.random.default_rng(6))
    sd = linear_to_torch(lin)
    assert sd["weight"].shape == (2, D)
    np.testing.assert_array_equal(sd["weight"], lin.params["W"].T)
    with pytest.raises(ValueError, match="shape mismatch for 'weight'"):
        linear_from_torch(lin, {"weight": lin.params["W"], "bias": sd["bias"]})
    with pytest.raises(ValueError, match="missing 'bias'"):
        linear_from_torch(lin, {"weight": sd["weight"]})
    emb = randomize(Embedding(5, D), np.random.default_rng(7))
    np.testing.assert_array_equal(embedding_to_torch(emb, prefix="emb.")["emb.weight"], emb.params["W"])
    fresh = Embedding(5, D, seed=9, dtype=np.float64)
    embedding_from_torch(fresh, embedding_to_torch(emb))
    np.testing.assert_array_equal(fresh.params["W"], emb.params["W"])
