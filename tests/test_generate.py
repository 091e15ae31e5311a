"""Generation: one-step stepping equals the full forward, sampling options, beam search."""
import contextlib
import math

import numpy as np
import pytest

from rnnlab import fast, generate
from rnnlab.fast import accel
from rnnlab.cells import CELLS
from rnnlab.data import Vocab
from rnnlab.errors import ConfigError, DataError
from rnnlab.gradcheck import randomize
from rnnlab.layers.losses import log_softmax
from rnnlab.models import CharRNN, ModelConfig

VOCAB = Vocab("\n abcdefghij")


def _model(cell="lstm", embedding_size=6, proj_size=0, dropout=0.0, num_layers=2, seed=0):
    cfg = ModelConfig(len(VOCAB), cell, hidden_size=7, num_layers=num_layers, embedding_size=embedding_size,
                      dropout=dropout, proj_size=proj_size, seed=seed)
    # float64 and every weight random (no zero bias hides a mapping error)
    return randomize(CharRNN(cfg), np.random.default_rng(seed), scale=0.6)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("embedding_size", [6, 0], ids=["embedding", "onehot"])
@pytest.mark.parametrize("proj_size", [0, 4], ids=["noproj", "proj"])
def test_stepping_char_by_char_equals_the_full_forward(cell, embedding_size, proj_size):
    model = _model(cell, embedding_size, proj_size, dropout=0.3).eval()
    ids = np.random.default_rng(1).integers(len(VOCAB), size=(3, 9))
    (expected, statesT), _ = model.forward(ids)
    stepper = generate.Stepper(model).reset(3)
    got = np.stack([stepper.feed(ids[:, t]).copy() for t in range(ids.shape[1])], axis=1)
    # float64 model (_model): stepping and the full forward do the same products, grouped differently: rounding
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(stepper.states, statesT):
        for a, b in zip(mine, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_select_reorders_streams_like_beam_search_needs():
    model = _model("gru").eval()
    ids = np.random.default_rng(2).integers(len(VOCAB), size=(2, 5))
    stepper = generate.Stepper(model).reset(2)
    for t in range(4):
        stepper.feed(ids[:, t])
    stepper.select(np.array([1, 1, 0]))
    logits = stepper.feed(np.array([ids[1, 4], ids[1, 4], ids[0, 4]])).copy()
    (full, _), _ = model.forward(ids)
    # float64 model: after select() the stepper's rows are copies; stepped vs full forward differ only in
    # grouping of the same products (5 steps, small widths): ~1e-14; rtol 1e-12.
    np.testing.assert_allclose(logits, full[[1, 1, 0], 4], rtol=1e-12)


def test_generation_leaves_the_models_mode_alone():
    model = _model(dropout=0.5).train()
    generate.sample(model, VOCAB, "ab", 5, seed=0)
    assert model.training


def test_same_seed_same_text_different_seed_different_text():
    model = _model()
    a = generate.sample(model, VOCAB, "ab", 60, seed=7)
    assert len(a) == 60 and set(a) <= set(VOCAB.chars)
    assert generate.sample(model, VOCAB, "ab", 60, seed=7) == a
    assert generate.sample(model, VOCAB, "ab", 60, seed=8) != a
    assert generate.sample(model, VOCAB, "ab", 60, seed=7, top_k=3) != a


def test_stream_yields_characters_one_at_a_time():
    chars = generate.stream(_model(), VOCAB, "a", 5, seed=1)
    assert next(chars) in VOCAB.chars
    assert len(list(chars)) == 4


def test_unknown_prime_characters_are_named():
    with pytest.raises(DataError, match=r"prime text.*'Z', '€'"):
        generate.stream(_model(), VOCAB, "ab€Z", 5)  # raises before the first character
    with pytest.raises(DataError, match="'€'"):
        generate.beam_search(_model(), VOCAB, "€", 5, 2)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="temperature"):
        generate.sample(_model(), VOCAB, "a", 5, temperature=0)
    with pytest.raises(ConfigError, match="top_k"):
        generate.sample(_model(), VOCAB, "a", 5, top_k=-1)
    with pytest.raises(ConfigError, match="beam width"):
        generate.beam_search(_model(), VOCAB, "a", 5, 0)


def test_empty_prime_and_zero_length():
    model = _model()
    assert generate.sample(model, VOCAB, "", 0) == ""
    assert len(generate.sample(model, VOCAB, "", 12, seed=0)) == 12
    # with no prime the model starts from a newline, as if primed with one
    assert generate.sample(model, VOCAB, "", 12, seed=3) == generate.sample(model, VOCAB, "\n", 12, seed=3)


def _one_shot(rng, **kw):
    return lambda logits: generate.pick(logits, rng, **kw)


def _streamed(rng, **kw):
    return generate.Sampler(rng, block=64, **kw)  # several noise blocks in every count below


@pytest.mark.parametrize("make", [_one_shot, _streamed], ids=["pick", "Sampler"])
def test_draws_follow_softmax_temperature_and_top_k(make):
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    n = 20000
    draw = make(rng)
    counts = np.bincount([draw(logits) for _ in range(n)], minlength=4) / n
    # seeded draws; each tolerance is about 4 binomial standard deviations (sqrt(p(1-p)/n): 0.0035 for n = 20000,
    # 0.0079 for n = 4000), so the test does not hinge on this seed's luck, and a wrong distribution is off by more
    np.testing.assert_allclose(counts, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    draw = make(rng, temperature=0.25)
    hot = np.bincount([draw(logits) for _ in range(4000)], minlength=4) / 4000
    p = np.exp(log_softmax(logits.astype(np.float64) / 0.25))
    # seeded draws: 4000 samples, binomial sd <= 0.0079, so atol 0.03 is ~4 sd (see above).
    np.testing.assert_allclose(hot, p, atol=0.03)
    draw = make(rng, top_k=2)
    top2 = np.bincount([draw(logits) for _ in range(4000)], minlength=4) / 4000
    assert top2[2] == top2[3] == 0
    # seeded draws: 4000 samples, sd <= 0.0077; atol 0.03 ~4 sd, and top-k's renormalised 0.625/0.375 is checked.
    np.testing.assert_allclose(top2[:2], [0.625, 0.375], atol=0.03)
    assert make(rng, argmax=True)(logits) == 0


def test_sampler_is_deterministic_for_a_seed():
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1], dtype=np.float32))
    runs = []
    for seed in (1, 1, 2):
        draw = generate.Sampler(np.random.default_rng(seed), temperature=0.7, block=8)
        runs.append([draw(logits) for _ in range(50)])
    assert runs[0] == runs[1] != runs[2]
    assert len(set(runs[0])) > 1


def test_top_k_one_and_argmax_are_greedy():
    model = _model()
    greedy = generate.sample(model, VOCAB, "ab", 30, argmax=True)
    assert generate.sample(model, VOCAB, "ab", 30, top_k=1, seed=5, temperature=3.0) == greedy


def test_beam_width_one_is_greedy_and_wider_beams_score_at_least_as_well():
    model = _model(seed=4)
    greedy = generate.sample(model, VOCAB, "ab", 15, argmax=True)
    one = generate.beam_search(model, VOCAB, "ab", 15, 1)
    assert one.text == greedy
    greedy_lp = generate.log_prob(model, VOCAB, "ab", greedy)
    # float64 sums of 15 log-probabilities in two code paths (beam vs log_prob): ~15 eps; rel 1e-10.
    assert one.log_prob == pytest.approx(greedy_lp, rel=1e-10)
    wide = generate.beam_search(model, VOCAB, "ab", 15, 6)
    assert len(wide.text) == 15
    # same: float64 sums of 15 log-probabilities, two orders; rel 1e-10.
    assert wide.log_prob == pytest.approx(generate.log_prob(model, VOCAB, "ab", wide.text), rel=1e-10)
    assert wide.log_prob >= greedy_lp - 1e-12


def _bigram_model(vocab, table):
    """A one-layer tanh RNN that is exactly a bigram model: h = onehot(x), logits = log P(.|x)."""
    V = len(vocab)
    model = CharRNN(ModelConfig(V, "rnn", hidden_size=V, num_layers=1, embedding_size=0), dtype=np.float64)
    cell = model.rnn.layers[0].cell
    cell.params["W_x"][...] = 40.0 * np.eye(V)   # tanh(40) == 1.0 in float64
    cell.params["W_h"][...] = 0.0
    cell.params["b"][...] = 0.0
    model.out.params["W"][...] = np.log(table)
    model.out.params["b"][...] = 0.0
    return model


def test_beam_search_finds_what_greedy_misses():
    vocab = Vocab("abcs")
    P = np.array([[0.25, 0.25, 0.25, 0.25],   # after a: anything
                  [0.01, 0.01, 0.97, 0.01],   # after b: almost surely c
                  [0.25, 0.25, 0.25, 0.25],
                  [0.50, 0.40, 0.09, 0.01]])  # after s: a is likelier than b
    model = _bigram_model(vocab, P)
    greedy = generate.sample(model, vocab, "s", 2, argmax=True)
    assert greedy == "aa"  # 0.5 * 0.25 = 0.125 (ties go to the lowest id)
    best = generate.beam_search(model, vocab, "s", 2, 2)
    assert best.text == "bc"  # 0.4 * 0.97 = 0.388
    # float64 log(0.4) + log(0.97) vs log(0.4 * 0.97): a few ulps; rel 1e-12.
    assert best.log_prob == pytest.approx(math.log(0.4 * 0.97), rel=1e-12)
    assert generate.beam_search(model, vocab, "s", 2, 1).text == "aa"
    assert generate.beam_search(model, vocab, "s", 0, 3) == ("", 0.0)
    assert generate.beam_search(model, vocab, "s", 1, 9).text == "a"  # a beam wider than the vocabulary


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("proj_size", [0, 4], ids=["noproj", "proj"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_fused_runners_equal_the_reference_stepper(cell, proj_size, batch, compiled, monkeypatch):
    """LSTM/GRU layers step through rnnlab.fast.stepping (with the compiled element-wise steps
    and with the NumPy ones); the cells' own step_forward is the reference."""
    if compiled and not accel.available():
        pytest.skip(f"no compiled steps: {accel.describe()}")
    monkeypatch.setattr(accel, "_enabled", compiled)
    model = _model(cell, 6, proj_size, num_layers=3).eval()
    ids = np.random.default_rng(3).integers(len(VOCAB), size=(batch, 12))
    runs = []
    for use_fast in (True, False):
        with (contextlib.nullcontext() if use_fast else fast.reference_only()):
            stepper = generate.Stepper(model).reset(batch)
            assert type(stepper.runners[0]).__name__ == (cell.upper() + "Runner" if use_fast else "CellRunner")
            logits = np.stack([stepper.feed(ids[:, t]).copy() for t in range(ids.shape[1])])
        runs.append((logits, [tuple(a.copy() for a in s) for s in stepper.states]))
    # float64 model, fused runners vs the cells' own step: same products grouped differently, 12 steps, 3
    # layers, width 6: ~1e-14; rtol 1e-12, atol 1e-13.
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-12, atol=1e-13)
    for mine, ref in zip(runs[0][1], runs[1][1]):
        for a, b in zip(mine, ref):
            # same as above for the states: ~1e-14; rtol 1e-12.
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
