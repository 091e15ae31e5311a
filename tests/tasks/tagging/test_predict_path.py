"""The forward-only tagging path is the old one, bit for bit: the distinct spellings found by
``unique_rows`` (not ``np.unique(axis=0)``), the character BiLSTM's outputs never scattered
(``outputs=False``), the compiled Viterbi. Emissions equal (``array_equal``), tags identical, on
generated sentences, on random batches, and on a slice of the real corpora made at test time when
/work/shared holds them (skipped otherwise). Run also under ``OPENBLAS_CORETYPE=Sandybridge``."""
from pathlib import Path

import numpy as np
import pytest

from rnnlab.layers import crf as crf_module
from rnnlab.module import no_grad
from rnnlab.tasks.tagging.data import convert_sentences, load_dataset
from rnnlab.tasks.tagging.model import CharCache, TaggerModel, random_batch, unique_rows
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import TagConfig, model_spec, predict_tags
from rnnlab.tasks.tagging.vocab import build_vocabs, encode, make_batches

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def old_chars(model: TaggerModel, batch):
    """TaggerModel._chars as it was: np.unique(axis=0), the outputs scattered and dropped."""
    chars, char_lengths = np.asarray(batch.chars), np.asarray(batch.char_lengths)
    B, T = chars.shape[:2]
    mask = np.arange(T)[None, :] < np.asarray(batch.lengths)[:, None]
    rows, lens = chars[mask], char_lengths[mask]
    width = max(int(lens.max()), 1)
    rows = np.ascontiguousarray(rows[:, :width])
    uniq, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    ulens = np.maximum(lens[first], 1)
    (_, (hf, _)), cf = model.char_fwd.forward(model.char.tokens(uniq), None, ulens)
    (_, (hb, _)), cb = model.char_bwd.forward(model.char.tokens(uniq), None, ulens)
    rep = np.concatenate([hf, hb], axis=1)
    out = np.zeros((B, T, rep.shape[1]), dtype=rep.dtype)
    out[mask] = rep[inverse]
    return out, CharCache(mask, inverse, cf, cb, len(uniq))


class OldPath:
    """Within the block, ``model`` runs the old path: old_chars, the NumPy Viterbi."""

    def __init__(self, model: TaggerModel, monkeypatch) -> None:
        self.model, self.mp = model, monkeypatch

    def __enter__(self):
        self.mp.setattr(self.model, "_chars", lambda b: old_chars(self.model, b), raising=False)
        self.mp.setattr(crf_module, "_compiled_viterbi", lambda *a: None)

    def __exit__(self, *exc):
        self.mp.undo()


def old_and_new(model: TaggerModel, batches, monkeypatch) -> None:
    """Every batch through the old and the current forward-only path: the same bits."""
    model.eval()
    with no_grad():
        for batch in batches:
            em_new, _ = model.forward(batch)
            tags_new = model.decode(em_new, batch.lengths)
            with OldPath(model, monkeypatch):
                em_old, _ = model.forward(batch)
                tags_old = model.decode(em_old, batch.lengths)
            assert np.array_equal(em_new, em_old)
            assert tags_new == tags_old


@pytest.mark.parametrize("seed", [0, 1])
def test_unique_rows_is_np_unique(seed):
    rng = np.random.default_rng(seed)
    for N, w, V in ((1, 1, 3), (50, 4, 3), (400, 12, 90), (300, 30, 70000), (0, 3, 5)):
        rows = rng.integers(0, V, size=(N, w))
        if N > 10:
            rows[N // 2:] = rows[:N - N // 2]     # duplicates
            rows[:, -2:] = 0                       # padding columns, as char rows have
        uniq, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        got = unique_rows(rows)
        assert np.array_equal(got[0], uniq) and np.array_equal(got[1], first)
        assert np.array_equal(got[2], inverse.reshape(-1)) and got[2].shape == (N,)


def test_recurrent_outputs_false_keeps_the_states():
    from rnnlab.cells import LSTMCell
    from rnnlab.layers import Recurrent

    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    lengths = np.array([7, 1, 4, 7, 2])
    for reverse in (False, True):
        layer = Recurrent(LSTMCell(3, 4, seed=1), reverse=reverse)
        for grad in (False, True):
            if grad:
                (y, s1), _ = layer.forward(x, None, lengths)
                (none, s2), _ = layer.forward(x, None, lengths, outputs=False)
            else:
                with no_grad():
                    (y, s1), _ = layer.forward(x, None, lengths)
                    (none, s2), _ = layer.forward(x, None, lengths, outputs=False)
            assert none is None and y.shape == (5, 7, 4)
            for a, b in zip(s1, s2):
                assert np.array_equal(a, b)


@pytest.mark.parametrize("kw", [{}, {"crf": False}, {"feature_vocabs": (5,)}, {"lm_dim": 3}],
                         ids=["crf", "softmax", "feature", "lm"])
def test_random_batches_bit_identical(kw, monkeypatch):
    rng = np.random.default_rng(5)
    model = TaggerModel(9, 7, 5, 4, word_dim=6, case_dim=3, feature_dim=2, char_dim=4, char_hidden=5,
                        hidden_size=8, seed=3, **kw)
    batches = [random_batch(rng, lengths, vocab=9, chars=7, cases=5, features=tuple(kw.get("feature_vocabs", ())),
                            tags=4, max_chars=6, lm_dim=kw.get("lm_dim", 0))
               for lengths in ([6, 1, 4, 6, 3], [1], [9, 9, 2, 5, 7, 8, 1, 3])]
    old_and_new(model, batches, monkeypatch)


def sentences_batches(sentences, batch_size):
    vocabs = build_vocabs(sentences, scheme="BIOES")
    model = TaggerModel(**model_spec(TagConfig(), vocabs))
    return model, vocabs, make_batches(encode(sentences, vocabs, 30), batch_size, shuffle=True, seed=0)


@pytest.mark.parametrize("batch_size", [16, 128])
def test_generated_sentences_bit_identical(batch_size, monkeypatch):
    sentences = convert_sentences(synthetic_sentences(300, seed=4, types=("Disease", "Gene"), max_len=30), "BIOES")
    model, vocabs, batches = sentences_batches(sentences, batch_size)
    old_and_new(model, batches, monkeypatch)


@pytest.mark.parametrize("name", ["conll2000", "ncbi-disease"])
def test_real_slice_bit_identical(name, monkeypatch):
    """A slice of the real training split, taken now (nothing of it is kept in the repository)."""
    if not (DATA / "tagging" / name).exists():
        pytest.skip(f"{DATA / 'tagging' / name} is not here")
    sentences = load_dataset(name, str(DATA), scheme="BIOES").train[:400]
    model, vocabs, batches = sentences_batches(sentences, 16)
    old_and_new(model, batches[:12], monkeypatch)
    # and tag predict's own path (batches of 128) against the old one
    new, _ = predict_tags(model, vocabs, sentences[:200], "BIOES")
    with OldPath(model, monkeypatch):
        old, _ = predict_tags(model, vocabs, sentences[:200], "BIOES")
    assert new == old
