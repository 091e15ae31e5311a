"""RNNStack(lengths=...) vs torch packed sequences in float64.

torch runs ``pack_padded_sequence(x, lengths, batch_first=True,
enforce_sorted=False)`` through nn.RNN/LSTM/GRU and ``pad_packed_sequence``
back (total_length=T, zeros on the padding); rnnlab runs the padded batch with
``lengths``. Compared: outputs, h_n (and c_n), and the gradients of every
weight, of x and of the initial states for a random upstream gradient on the
outputs (padding included: both must ignore it) and on the final states.
Weights are copied with rnnlab.torch_bridge, as in test_rnn_parity.py.
"""
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from rnnlab.gradcheck import randomize  # noqa: E402
from rnnlab.layers import RNNStack  # noqa: E402
from rnnlab.torch_bridge import (  # noqa: E402
    stack_grads_to_torch, states_from_torch, states_to_torch, torch_rnn_from_stack,
)

D, H = 4, 3
# unsorted, with ties and a length-1 row; the second set leaves the last position padding everywhere
LENGTHS = {"max=T": (5, [3, 5, 1, 4, 3]), "max<T": (6, [2, 4, 1, 4])}
CELLS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("irnn", {}), ("lstm", {}), ("gru", {})]
CELL_IDS = ["rnn-tanh", "rnn-relu", "irnn", "lstm", "gru"]


# Tolerance (float64 on both sides): eps = 2.2e-16, and these problems are tiny (T <= 6 steps, widths
# <= 8), so each output is a few hundred rounded operations: about 1e-13 relative whichever order the
# BLAS kernel sums in (OPENBLAS_CORETYPE changes it). rtol 1e-10 leaves 1000x to spare and still fails
# any wrong equation (its error is O(1)); atol 1e-13 covers entries that are 0 up to rounding.
def assert_close(actual, expected, name, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-13, err_msg=name)


def problem(rng, B, T, L, bi, lstm):
    rows, width = L * (2 if bi else 1), (2 if bi else 1) * H
    p = {"x": rng.standard_normal((B, T, D)), "h0": rng.standard_normal((rows, B, H)),
         "gy": rng.standard_normal((B, T, width)), "gh": rng.standard_normal((rows, B, H))}
    if lstm:
        p["c0"], p["gc"] = rng.standard_normal((rows, B, H)), rng.standard_normal((rows, B, H))
    return p


def run_torch(module, p, lengths):
    lstm = "c0" in p
    x = torch.tensor(p["x"], requires_grad=True)
    h0 = torch.tensor(p["h0"], requires_grad=True)
    c0 = torch.tensor(p["c0"], requires_grad=True) if lstm else None
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, hx = module(packed, (h0, c0) if lstm else h0)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    hn, cn = hx if lstm else (hx, None)
    loss = (y * torch.from_numpy(p["gy"])).sum() + (hn * torch.from_numpy(p["gh"])).sum()
    if lstm:
        loss = loss + (cn * torch.from_numpy(p["gc"])).sum()
    loss.backward()
    out = {"y": y, "h_n": hn, "dx": x.grad, "dh0": h0.grad}
    if lstm:
        out.update(c_n=cn, dc0=c0.grad)
    return {k: v.detach().numpy() for k, v in out.items()}, \
        {name: param.grad.numpy() for name, param in module.named_parameters()}


def run_rnnlab(stack, p, lengths):
    lstm = "c0" in p
    (y, statesT), cache = stack.forward(p["x"], states_from_torch(stack, p["h0"], p.get("c0")), np.array(lengths))
    stack.zero_grad()
    dx, dstates0 = stack.backward((p["gy"], states_from_torch(stack, p["gh"], p.get("gc"))), cache)
    final, dinit = states_to_torch(stack, statesT), states_to_torch(stack, dstates0)
    out = {"y": y, "h_n": final[0], "dx": dx, "dh0": dinit[0]}
    if lstm:
        out.update(c_n=final[1], dc0=dinit[1])
    return out, stack_grads_to_torch(stack)


@pytest.mark.parametrize("shape", LENGTHS)
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("cell,kw", CELLS, ids=CELL_IDS)
def test_packed_sequences_match_torch(cell, kw, L, bi, shape):
    T, lengths = LENGTHS[shape]
    rng = np.random.default_rng(zlib.crc32(f"{cell}{kw}{L}{bi}{shape}".encode()))
    stack = randomize(RNNStack(cell, D, H, L, bidirectional=bi, dtype=np.float64, **kw), rng)
    theirs = torch_rnn_from_stack(stack)
    p = problem(rng, len(lengths), T, L, bi, cell == "lstm")
    (o_out, o_grads), (t_out, t_grads) = run_rnnlab(stack, p, lengths), run_torch(theirs, p, lengths)
    assert set(o_out) == set(t_out) and set(o_grads) == set(t_grads)
    for name in t_out:
        assert_close(o_out[name], t_out[name], name)
    for name in t_grads:
        assert_close(o_grads[name], t_grads[name], f"grad {name}")
    for b, n in enumerate(lengths):   # exact zeros on the padding, as torch's
        assert not o_out["y"][b, n:].any() and not o_out["dx"][b, n:].any()
