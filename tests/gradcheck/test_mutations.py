"""Mutation test: the gradient check must keep its power.

The check accepts a finite difference's own rounding and truncation error
(rnnlab.gradcheck.core), so it cannot cry wolf on a machine whose BLAS sums
in another order. This file shows that the allowance is no hiding place: each
mutation plants one realistic backward bug (monkeypatched for the test only)
and asserts the check FAILS, by a wide margin; the same case unmutated passes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.cells import lstm as lstm_module
from rnnlab.gradcheck import specs
from rnnlab.gradcheck.core import Case, check_case, input_case
from rnnlab.gradcheck.specs_crf import crf_case
from rnnlab.layers import CRF, Dropout, Linear, Recurrent, SoftmaxCrossEntropy


def _recurrent(cell: Callable[[int, int], object], B: int = 2, T: int = 3) -> Callable[[], list[Case]]:
    """A cell in a Recurrent layer on the reference loop (the cell's own step_backward), with state0."""
    def build() -> list[Case]:
        rng = np.random.default_rng(3)
        layer = gradcheck.randomize(Recurrent(cell(2, 3)), rng)
        return [specs.on_path("reference loop", gradcheck.sequence_case("mutant", layer, B, T, rng))]
    return build


def _spec(cls: type) -> Callable[[], list[Case]]:
    return lambda: gradcheck.SPECS[cls](np.random.default_rng(0))


def _crf() -> list[Case]:
    rng = np.random.default_rng(1)
    return [crf_case("lengths 3,2", gradcheck.randomize(CRF(3), rng), rng, [3, 2], 3)]


def _wrap(target: object, name: str, after: Callable) -> Callable:
    """``target.name`` replaced by a version that calls the original and passes its result to ``after``."""
    original = getattr(target, name)

    def mutant(self, *args, **kw):
        return after(self, args, original(self, *args, **kw))
    return mutant


# -- the planted bugs: (monkeypatch) -> None ------------------------------------------------
def rnn_wrong_sign(mp):      # tanh' applied with the wrong sign
    mp.setattr(RNNCell, "step_backward", _wrap(RNNCell, "step_backward", lambda s, a, r: (-r[0], -r[1], r[2])))


def rnn_no_recurrent_term(mp):   # BPTT stops at each step: dh_{t-1} never receives W_h^T da_t
    def after(self, args, result):
        da, dhw, rest = result
        return da, np.zeros_like(dhw), rest
    mp.setattr(RNNCell, "step_backward", _wrap(RNNCell, "step_backward", after))


def lstm_missing_forget_gate(mp):   # d(forget gate) left out
    original = lstm_module.gate_grads

    def mutant(act, c_prev, dc, do, H):
        da = original(act, c_prev, dc, do, H)
        da[:, H:2 * H] = 0.0
        return da
    mp.setattr(lstm_module, "gate_grads", mutant)


def lstm_no_cell_carry(mp):   # dc_{t-1} = dc * f forgotten: the cell state carries no gradient back
    mp.setattr(LSTMCell, "step_backward", _wrap(LSTMCell, "step_backward", lambda s, a, r: (r[0], r[1], (None, None))))


def lstm_output_gate_without_tanh_c(mp):   # do = dh instead of dh * tanh(c)
    def mutant(self, dstate, cache):
        dh, dc_next = dstate
        H = self.hidden_size
        act, c_prev, tanh_c = cache
        f, o = act[:, H:2 * H], act[:, 3 * H:]
        dc = dh * o * (1.0 - tanh_c * tanh_c)
        if dc_next is not None:
            dc += dc_next
        da = lstm_module.gate_grads(act, c_prev, dc, dh, H)
        return da, da, (None, dc * f)
    mp.setattr(LSTMCell, "step_backward", mutant)


def gru_missing_update_gate(mp):   # dz left out
    def after(self, args, result):
        dxw, dhw, rest = result
        H = self.hidden_size
        dxw[:, H:2 * H] = 0.0
        dhw[:, H:2 * H] = 0.0
        return dxw, dhw, rest
    mp.setattr(GRUCell, "step_backward", _wrap(GRUCell, "step_backward", after))


def gru_reset_gate_not_on_hidden(mp):   # the candidate's recurrent part not multiplied by r
    def after(self, args, result):
        dxw, dhw, rest = result
        H = self.hidden_size
        dhw[:, 2 * H:] = dxw[:, 2 * H:]
        return dxw, dhw, rest
    mp.setattr(GRUCell, "step_backward", _wrap(GRUCell, "step_backward", after))


def bptt_off_by_one(mp):   # dW_h paired with h_t instead of h_{t-1}
    def mutant(self, xt, h_prev, dXW, dHW, dxt, grads, token_grad=None):
        return original(self, xt, self._mutant_hs[1:][:len(h_prev)] if len(h_prev) == len(self._mutant_hs) - 1
                        else h_prev, dXW, dHW, dxt, grads, token_grad)
    original = Recurrent._weight_grads

    def backward(self, dout, cache):
        self._mutant_hs = cache.hs
        return original_backward(self, dout, cache)
    original_backward = Recurrent.backward
    mp.setattr(Recurrent, "_weight_grads", mutant)
    mp.setattr(Recurrent, "backward", backward)


def forgotten_dstate0(mp):   # the gradient of the initial state dropped
    mp.setattr(Recurrent, "backward", _wrap(Recurrent, "backward",
                                            lambda s, a, r: (r[0], tuple(np.zeros_like(d) for d in r[1]))))


def _mutate_grad(mp, cls: type, name: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    """``cls.backward`` as it is, but the gradient it adds to ``grads[name]`` replaced by ``change`` of it."""
    original = cls.backward

    def mutant(self, *args):
        before = self.grads[name].copy()
        out = original(self, *args)
        self.grads[name][...] = before + change(self.grads[name] - before)
        return out
    mp.setattr(cls, "backward", mutant)


def linear_transposed_weight_grad(mp):   # dW = (x^T dy)^T on a square weight
    _mutate_grad(mp, Linear, "W", np.transpose)


def linear_missing_bias(mp):   # db forgotten
    _mutate_grad(mp, Linear, "b", np.zeros_like)


def dropout_mask_omitted(mp):   # backward passes dout through unmasked
    mp.setattr(Dropout, "backward", lambda self, dout, cache: dout)


def cross_entropy_not_averaged(mp):   # the 1/count of the mean left out
    mp.setattr(SoftmaxCrossEntropy, "backward",
               _wrap(SoftmaxCrossEntropy, "backward", lambda s, a, r: r * max(a[1].count, 1.0)))


def crf_transitions_transposed(mp):   # expected-minus-gold transition counts as (to, from)
    _mutate_grad(mp, CRF, "transitions", np.transpose)


def crf_missing_end(mp):   # the end-transition gradient forgotten
    _mutate_grad(mp, CRF, "end", np.zeros_like)


def _square_linear() -> list[Case]:
    rng = np.random.default_rng(2)
    lin = gradcheck.randomize(Linear(3, 3), rng)
    return [input_case("square", lin, rng.standard_normal((4, 3)))]


MUTATIONS = {
    "RNN: wrong sign of tanh'": (rnn_wrong_sign, _recurrent(RNNCell)),
    "RNN: no recurrent term in BPTT": (rnn_no_recurrent_term, _recurrent(RNNCell)),
    "LSTM: missing forget-gate derivative": (lstm_missing_forget_gate, _recurrent(LSTMCell)),
    "LSTM: cell state carries no gradient": (lstm_no_cell_carry, _recurrent(LSTMCell)),
    "LSTM: output gate without tanh(c)": (lstm_output_gate_without_tanh_c, _recurrent(LSTMCell)),
    "GRU: missing update-gate derivative": (gru_missing_update_gate, _recurrent(GRUCell)),
    "GRU: reset gate not applied to dW_h of the candidate": (gru_reset_gate_not_on_hidden, _recurrent(GRUCell)),
    "BPTT: dW_h off by one time step": (bptt_off_by_one, _recurrent(RNNCell)),
    "Recurrent: forgotten dstate0": (forgotten_dstate0, _recurrent(GRUCell)),
    "Linear: transposed weight gradient": (linear_transposed_weight_grad, _square_linear),
    "Linear: missing bias gradient": (linear_missing_bias, _spec(Linear)),
    "Dropout: mask omitted in backward": (dropout_mask_omitted, _spec(Dropout)),
    "cross-entropy: mean's 1/N left out": (cross_entropy_not_averaged, _spec(SoftmaxCrossEntropy)),
    "CRF: transition gradient transposed": (crf_transitions_transposed, _crf),
    "CRF: end-transition gradient missing": (crf_missing_end, _crf),
}


def _worst(build: Callable[[], list[Case]]) -> tuple[list, float]:
    rows = [row for case in build() for row in check_case("mutant", case)]
    return rows, max(r.ratio for r in rows if r.checked)


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_planted_backward_bug_fails_the_check(name, monkeypatch):
    mutate, build = MUTATIONS[name]
    rows, _ = _worst(build)
    assert rows and all(r.passed for r in rows), "the unmutated case must pass:\n" + gradcheck.format_table(rows)
    mutate(monkeypatch)
    rows, worst = _worst(build)
    failed = [r for r in rows if not r.passed]
    assert failed, f"{name}: the planted bug passed the check:\n" + gradcheck.format_table(rows)
    # Not a near miss: the bug's error is far outside tolerance + the finite difference's own error.
    assert worst > 100, gradcheck.format_table(rows)
