"""The Python API: fit, sample, evaluate, save, load, as thin layers over the CLI's functions."""
import math

import numpy as np
import pytest

import rnnlab
from rnnlab import CharLM, generate
from rnnlab.api import load_run
from rnnlab.errors import ConfigError, DataError

TINY = dict(cell="gru", hidden_size=16, num_layers=1, embedding_size=6, batch_size=4, seq_len=12,
            max_steps=6, eval_every=3, log_every=3, seed=2)


def _text(n=2500, seed=0):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(["abc ", "bca ", "cab\n", "aaa "], size=n // 4))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def lm(tmp_path):
    return CharLM(**TINY).fit(_text(), out=tmp_path / "run")


def test_fit_on_raw_text_then_save_load_sample(lm, tmp_path):
    assert isinstance(rnnlab.CharLM, type) and rnnlab.CharLM is CharLM
    assert lm.run_dir == tmp_path / "run" and (lm.run_dir / "best.npz").is_file()
    assert (lm.run_dir / "corpus.txt").read_text() == _text()  # raw text kept beside the run
    assert lm.vocab.chars == ("\n", " ", "a", "b", "c") and lm.config.cell == "gru"
    text = lm.sample("ab", length=40, seed=5)
    assert len(text) == 40 and text == lm.sample("ab", length=40, seed=5)
    path = lm.save(tmp_path / "model.npz")
    again = CharLM.load(path)
    assert again.config == lm.config
    assert again.sample("ab", length=40, seed=5) == text
    assert CharLM.load(tmp_path / "run").sample("ab", length=40, seed=5) == text
    # the API's sample is the CLI's generate.sample
    assert text == generate.sample(load_run(path).model, lm.vocab, "ab", 40, seed=5)


def test_sampling_options(lm):
    greedy = lm.sample("a", 20, argmax=True)
    assert lm.sample("a", 20, beam=1) == greedy
    assert lm.sample("a", 20, top_k=1, seed=9) == greedy
    assert len(lm.sample("a", 20, beam=3)) == 20
    assert "".join(lm.stream("a", 20, argmax=True)) == greedy
    with pytest.raises(DataError, match="'z'"):
        lm.sample("xyz")


def test_evaluate_equals_a_direct_computation(lm):
    text = _text(400, seed=3)
    scores = lm.evaluate(text, batch_size=1)
    ids = lm.vocab.encode(text).astype(np.int64)
    (logits, _), _ = lm.model.forward(ids[None, :-1])
    z = logits[0].astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    nats = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
    # float32 model; float64 log-softmax and mean here and in evaluate: ~1e-7 relative from float32 logits'
    # summation order; rel 1e-5 ~100x.
    assert math.isclose(scores["nats_per_char"], nats, rel_tol=1e-5)
    # same quantity divided by log 2: rel 1e-5.
    assert math.isclose(scores["bits_per_char"], nats / math.log(2), rel_tol=1e-5)
    # exp of the mean nats: relative error ~ nats * 1e-7; rel 1e-5.
    assert math.isclose(scores["perplexity"], math.exp(nats), rel_tol=1e-5)
    assert lm.evaluate(text)["chars"] > 0  # the run's own batch layout also works
    with pytest.raises(DataError, match="'Q'"):
        lm.evaluate("abcQ")


def test_fit_on_a_file_with_overrides(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(_text(), encoding="utf-8")
    lm = CharLM(**TINY).fit(path, out=tmp_path / "r2", cell="lstm", max_steps=3)
    assert lm.config.cell == "lstm" and lm.config.corpus == str(path)
    assert lm.model.config.cell == "lstm"
    assert not (tmp_path / "r2" / "corpus.txt").exists()


def test_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown config keys: hiden_size"):
        CharLM(hiden_size=3)
    with pytest.raises(ConfigError, match="no model yet"):
        CharLM().sample()
    with pytest.raises(DataError, match="empty"):
        CharLM(**TINY).fit("", out=tmp_path / "r")


def test_text_and_paths_are_unambiguous(lm, tmp_path):
    held = tmp_path / "held.txt"
    held.write_text(_text(400, seed=3))
    by_path = lm.evaluate(path=held)
    assert by_path == lm.evaluate(text=held.read_text()) == lm.evaluate(held)  # a Path is a file
    assert lm.evaluate("abc bca cab")["chars"] > 0                           # a sentence is text
    with pytest.raises(ConfigError, match="path="):
        lm.evaluate("held.txt")                 # a file name given as a string is refused, not scored
    with pytest.raises(ConfigError, match="exactly one"):
        lm.evaluate(text="abc", path=held)
    with pytest.raises(DataError, match="no such file"):
        CharLM(**TINY).fit("inptu.txt", out=tmp_path / "typo")   # a misspelt path is not a 9-char corpus
    assert CharLM(**TINY).fit(text=_text(), out=tmp_path / "t").run_dir == tmp_path / "t"


def test_fit_refuses_a_folder_holding_a_run_unless_forced(lm, tmp_path):
    with pytest.raises(ConfigError, match="already holds a run"):
        CharLM(**TINY).fit(text=_text(), out=lm.run_dir)
    again = CharLM(**TINY).fit(text=_text(), out=lm.run_dir, force=True)
    assert (again.run_dir / "best.npz").is_file()


def test_fit_shows_progress_unless_asked_not_to(tmp_path, capsys):
    CharLM(**TINY).fit(text=_text(), out=tmp_path / "a")
    assert "validation" in capsys.readouterr().err
    CharLM(**TINY).fit(text=_text(), out=tmp_path / "b", progress=False)
    assert capsys.readouterr().err == ""
