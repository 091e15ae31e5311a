"""The tagger against the same model in torch (float64), its gradcheck spec, padding."""

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.tasks.tagging.model import TaggerModel, random_batch

torch = pytest.importorskip("torch")


CONFIGS = {
    "crf+chars": ({}, [6, 1, 4, 6, 3]),
    "softmax+chars+feature": ({"crf": False, "feature_vocabs": (5,)}, [3, 5, 2]),
    "crf, no chars, 2 layers": ({"use_chars": False, "num_layers": 2}, [5, 2, 5]),
    "crf+chars+char-LM features": ({"lm_dim": 4}, [4, 2, 5]),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("unique", [True, False], ids=["torch-unique-spellings", "torch-every-token"])
def test_matches_torch_in_float64(torch_tagger, name, unique):
    kw, lengths = CONFIGS[name]
    rng = np.random.default_rng(3)
    model = TaggerModel(9, 7, 5, 4, word_dim=5, case_dim=3, feature_dim=2, char_dim=4, char_hidden=3,
                        hidden_size=6, dropout=0.0, seed=2, **kw)
    gradcheck.randomize(model, rng, scale=0.8)
    batch = random_batch(rng, lengths, vocab=9, chars=7, cases=5, features=tuple(kw.get("feature_vocabs", ())),
                         tags=4, max_chars=5, lm_dim=kw.get("lm_dim", 0))
    tt = torch_tagger
    tm = tt.TorchTagger(model, unique_chars=unique)
    em_t = tm.emissions(batch)
    loss_t = tm.loss(em_t, batch)
    loss_t.backward()

    model.zero_grad()
    em, cache = model.forward(batch)
    loss, lcache = model.loss(em, batch)
    model.backward(model.loss_backward(lcache), cache)
    live = batch.mask[..., None]
    # float64 on both sides, small model: emissions are products of width <= 16 through a BiLSTM over a few
    # steps: ~1e-14 relative; rtol 1e-10, atol 1e-12 for values near 0.
    np.testing.assert_allclose(em * live, em_t.detach().numpy() * live, rtol=1e-10, atol=1e-12)
    # float64 CRF loss, a mean over a few sentences of log-sum-exps: ~1e-15 relative; rel 1e-12.
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    theirs = tt.grads_as_rnnlab(tm, model)
    ours = {name: g for name, _, g in model.named_parameters()}
    assert ours.keys() == theirs.keys()
    for key in ours:
        # float64 gradients summed over all tokens and steps through the BiLSTM and char encoder, in another order
        # than torch: ~1e-13 relative for the smallest; rtol 1e-9 leaves 1e4x, atol 1e-12 for entries near 0.
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert model.decode(em, batch.lengths) == tm.predict(batch)


def test_gradcheck_spec_passes():
    rows = gradcheck.check(TaggerModel)
    assert rows and all(r.passed for r in rows), gradcheck.format_table([r for r in rows if not r.passed])
    assert {r.case for r in rows} >= {"CRF, chars, lengths 4,1,3", "CRF, no chars, 2 layers, B=1,T=1"}


def test_padding_never_matters():
    """Whatever sits in the padded positions (ids, chars), the real positions' emissions are the same."""
    rng = np.random.default_rng(0)
    model = TaggerModel(9, 7, 5, 3, word_dim=4, char_dim=3, char_hidden=2, hidden_size=4, seed=0).eval()
    batch = random_batch(rng, [4, 2], vocab=9, chars=7, cases=5)
    em, _ = model.forward(batch)
    pad = ~batch.mask
    batch.words[pad], batch.cases[pad] = 8, 4
    batch.chars[pad] = 6
    em2, _ = model.forward(batch)
    np.testing.assert_array_equal(em[batch.mask], em2[batch.mask])
