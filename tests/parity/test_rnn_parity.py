"""RNNStack vs torch.nn.RNN/LSTM/GRU in float64: outputs, final states and every gradient.

Both directions of the weight mapping are exercised: "import" randomises the
torch module (bias_ih and bias_hh independently) and loads it into rnnlab
with stack_from_torch, which is what proves the bias folding; "export"
randomises rnnlab (b and b_hn included) and loads it into torch.
"""
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from rnnlab.gradcheck import randomize  # noqa: E402
from rnnlab.layers import RNNStack  # noqa: E402
from rnnlab.torch_bridge import (  # noqa: E402
    linear_grads_to_torch, linear_to_torch, stack_from_torch, stack_grads_to_torch, stack_to_torch,
    states_from_torch, states_to_torch, to_torch_tensors, torch_rnn_from_stack,
)

B, T, D, H = 3, 5, 4, 3  # D != H != 2H so that a wrong transpose or layer width cannot pass

# (rnnlab registry name, extra cell kwargs, torch class, torch nonlinearity)
CELLS = [
    ("rnn", {}, "RNN", "tanh"),
    ("rnn", {"nonlinearity": "relu"}, "RNN", "relu"),
    ("irnn", {}, "RNN", "relu"),
    ("lstm", {}, "LSTM", None),
    ("gru", {}, "GRU", None),
]
CELL_IDS = ["rnn-tanh", "rnn-relu", "irnn", "lstm", "gru"]


# Tolerance (float64 on both sides): eps = 2.2e-16, and these problems are tiny (T <= 6 steps, widths
# <= 8), so each output is a few hundred rounded operations: about 1e-13 relative whichever order the
# BLAS kernel sums in (OPENBLAS_CORETYPE changes it). rtol 1e-10 leaves 1000x to spare and still fails
# any wrong equation (its error is O(1)); atol 1e-13 covers entries that are 0 up to rounding.
def assert_close(actual, expected, name, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    rel = np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-300)
    assert rel <= rtol, f"{name}: relative error {rel:.3e}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-13, err_msg=name)


def explicit_torch_module(torch_name, nonlin, L, bi):
    # Built by hand, not via the bridge, so the import direction checks torch_module_kwargs independently.
    kw = {"nonlinearity": nonlin} if nonlin else {}
    return getattr(torch.nn, torch_name)(D, H, L, batch_first=True, bidirectional=bi, dtype=torch.float64, **kw)


def randomize_torch(module, rng):
    with torch.no_grad():
        for p in module.parameters():  # bias_ih and bias_hh drawn independently
            p.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, size=tuple(p.shape))))
    return module


def random_problem(rng, L, bi, lstm):
    rows = L * (2 if bi else 1)
    p = {"x": rng.standard_normal((B, T, D)), "h0": rng.standard_normal((rows, B, H)),
         "gy": rng.standard_normal((B, T, (2 if bi else 1) * H)), "gh": rng.standard_normal((rows, B, H))}
    if lstm:
        p["c0"] = rng.standard_normal((rows, B, H))
        p["gc"] = rng.standard_normal((rows, B, H))
    return p


def run_torch(module, p, lengths=None):
    """torch's outputs and gradients; with ``lengths`` through pack_padded_sequence (unsorted rows) and
    pad_packed_sequence back (total_length=T, zeros on the padding)."""
    lstm = "c0" in p
    x = torch.tensor(p["x"], requires_grad=True)
    h0 = torch.tensor(p["h0"], requires_grad=True)
    c0 = torch.tensor(p["c0"], requires_grad=True) if lstm else None
    if lengths is None:
        y, hx = module(x, (h0, c0) if lstm else h0)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
        y, hx = module(packed, (h0, c0) if lstm else h0)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
    hn, cn = hx if lstm else (hx, None)
    loss = (y * torch.from_numpy(p["gy"])).sum() + (hn * torch.from_numpy(p["gh"])).sum()
    if lstm:
        loss = loss + (cn * torch.from_numpy(p["gc"])).sum()
    loss.backward()
    out = {"y": y, "h_n": hn, "dx": x.grad, "dh0": h0.grad}
    if lstm:
        out.update(c_n=cn, dc0=c0.grad)
    out = {k: v.detach().numpy() for k, v in out.items()}
    return out, {name: param.grad.numpy() for name, param in module.named_parameters()}


def run_rnnlab(stack, p, lengths=None):
    lstm = "c0" in p
    lengths = None if lengths is None else np.array(lengths)
    (y, statesT), cache = stack.forward(p["x"], states_from_torch(stack, p["h0"], p.get("c0")), lengths)
    stack.zero_grad()
    dx, dstates0 = stack.backward((p["gy"], states_from_torch(stack, p["gh"], p.get("gc"))), cache)
    final, dinit = states_to_torch(stack, statesT), states_to_torch(stack, dstates0)
    out = {"y": y, "h_n": final[0], "dx": dx, "dh0": dinit[0]}
    if lstm:
        out.update(c_n=final[1], dc0=dinit[1])
    return out, stack_grads_to_torch(stack)


def compare(ours, theirs):
    (o_out, o_grads), (t_out, t_grads) = ours, theirs
    assert set(o_out) == set(t_out) and set(o_grads) == set(t_grads)
    for name in t_out:
        assert_close(o_out[name], t_out[name], name)
    for name in t_grads:
        assert_close(o_grads[name], t_grads[name], f"grad {name}")


@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("cell,kw,torch_name,nonlin", CELLS, ids=CELL_IDS)
def test_import_from_torch_matches(cell, kw, torch_name, nonlin, L, bi):
    rng = np.random.default_rng(zlib.crc32(f"{cell}{kw}{L}{bi}".encode()))
    theirs = randomize_torch(explicit_torch_module(torch_name, nonlin, L, bi), rng)
    stack = randomize(RNNStack(cell, D, H, L, bidirectional=bi, dtype=np.float64, **kw), rng)
    stack_from_torch(stack, theirs.state_dict())
    p = random_problem(rng, L, bi, torch_name == "LSTM")
    compare(run_rnnlab(stack, p), run_torch(theirs, p))


@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("cell,kw,torch_name,nonlin", CELLS, ids=CELL_IDS)
def test_export_to_torch_matches(cell, kw, torch_name, nonlin, L, bi):
    rng = np.random.default_rng(7 + L + 2 * bi)
    stack = randomize(RNNStack(cell, D, H, L, bidirectional=bi, dtype=np.float64, **kw), rng)
    theirs = torch_rnn_from_stack(stack)
    assert type(theirs).__name__ == torch_name and getattr(theirs, "nonlinearity", None) == nonlin
    p = random_problem(rng, L, bi, torch_name == "LSTM")
    compare(run_rnnlab(stack, p), run_torch(theirs, p))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_dropout_stack_in_eval_mode_matches_torch_eval(cell):
    rng = np.random.default_rng(3)
    stack = randomize(RNNStack(cell, D, H, 3, dropout=0.5, bidirectional=True, dtype=np.float64), rng)
    stack.eval()
    theirs = torch_rnn_from_stack(stack)
    assert theirs.dropout == 0.5 and not theirs.training
    p = random_problem(rng, 3, True, cell == "lstm")
    ours = run_rnnlab(stack, p)
    compare(ours, run_torch(theirs, p))
    # the comparison above is only meaningful if dropout does act in training mode
    stack.train()
    (y_train, _), _ = stack.forward(p["x"], states_from_torch(stack, p["h0"], p.get("c0")))
    assert not np.allclose(y_train, ours[0]["y"])


@pytest.mark.parametrize("cell", ["rnn", "irnn", "lstm", "gru"])
def test_round_trip_through_torch_dict_gives_identical_outputs(cell):
    rng = np.random.default_rng(11)
    src = randomize(RNNStack(cell, D, H, 2, bidirectional=True, dtype=np.float64), rng)
    dst = RNNStack(cell, D, H, 2, bidirectional=True, dtype=np.float64, seed=99)
    stack_from_torch(dst, stack_to_torch(src))
    for (name, a, _), (_, b, _) in zip(src.named_parameters(), dst.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x = rng.standard_normal((B, T, D))
    (y_src, s_src), _ = src.forward(x)
    (y_dst, s_dst), _ = dst.forward(x)
    np.testing.assert_array_equal(y_src, y_dst)
    for a, b in zip(states_to_torch(src, s_src), states_to_torch(dst, s_dst)):
        np.testing.assert_array_equal(a, b)


def test_projection_maps_to_a_separate_bias_free_linear():
    rng = np.random.default_rng(5)
    P = 2
    stack = randomize(RNNStack("lstm", D, H, 2, proj_size=P, dtype=np.float64), rng)
    with pytest.raises(ValueError, match="proj"):
        stack_to_torch(stack)
    rnn = torch_rnn_from_stack(stack, ignore_proj=True)
    proj = torch.nn.Linear(H, P, bias=False, dtype=torch.float64)
    proj.load_state_dict(to_torch_tensors(linear_to_torch(stack.proj)))
    x = rng.standard_normal((B, T, D))
    gy = rng.standard_normal((B, T, P))

    xt = torch.tensor(x, requires_grad=True)
    yt = proj(rnn(xt)[0])
    (yt * torch.from_numpy(gy)).sum().backward()

    (y, _), cache = stack.forward(x)
    dx, _ = stack.backward((gy, None), cache)
    assert_close(y, yt.detach().numpy(), "y")
    assert_close(dx, xt.grad.numpy(), "dx")
    ours = {**stack_grads_to_torch(stack, ignore_proj=True), **linear_grads_to_torch(stack.proj, prefix="proj.")}
    theirs = {**{k: v.grad.numpy() for k, v in rnn.named_parameters()},
              **{f"proj.{k}": v.grad.numpy() for k, v in proj.named_parameters()}}
    assert set(ours) == set(theirs)
    for name in theirs:
        assert_close(ours[name], theirs[name], f"grad {name}")
