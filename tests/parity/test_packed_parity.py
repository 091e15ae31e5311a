"""RNNStack(lengths=...) vs torch packed sequences in float64.

torch runs ``pack_padded_sequence(x, lengths, batch_first=True,
enforce_sorted=False)`` through nn.RNN/LSTM/GRU and ``pad_packed_sequence``
back (total_length=T, zeros on the padding); rnnlab runs the padded batch with
``lengths``. Compared: outputs, h_n (and c_n), and the gradients of every
weight, of x and of the initial states for a random upstream gradient on the
outputs (padding included: both must ignore it) and on the final states.
Weights are copied with rnnlab.torch_bridge, and both sides run and are compared
(tolerance included) by test_rnn_parity.py's run_rnnlab, run_torch and compare.
"""
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnlab.gradcheck import randomize  # noqa: E402
from rnnlab.layers import RNNStack  # noqa: E402
from rnnlab.torch_bridge import torch_rnn_from_stack  # noqa: E402

from .test_rnn_parity import compare, run_rnnlab, run_torch  # noqa: E402

D, H = 4, 3
# unsorted, with ties and a length-1 row; the second set leaves the last position padding everywhere
LENGTHS = {"max=T": (5, [3, 5, 1, 4, 3]), "max<T": (6, [2, 4, 1, 4])}
CELLS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("irnn", {}), ("lstm", {}), ("gru", {})]
CELL_IDS = ["rnn-tanh", "rnn-relu", "irnn", "lstm", "gru"]


def problem(rng, B, T, L, bi, lstm):
    rows, width = L * (2 if bi else 1), (2 if bi else 1) * H
    p = {"x": rng.standard_normal((B, T, D)), "h0": rng.standard_normal((rows, B, H)),
         "gy": rng.standard_normal((B, T, width)), "gh": rng.standard_normal((rows, B, H))}
    if lstm:
        p["c0"], p["gc"] = rng.standard_normal((rows, B, H)), rng.standard_normal((rows, B, H))
    return p


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
    ours = run_rnnlab(stack, p, lengths)
    compare(ours, run_torch(theirs, p, lengths))
    o_out = ours[0]
    for b, n in enumerate(lengths):   # exact zeros on the padding, as torch's
        assert not o_out["y"][b, n:].any() and not o_out["dx"][b, n:].any()
