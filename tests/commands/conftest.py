"""A tiny trained run shared by the command tests (trained once per session, in a few seconds)."""
import numpy as np
import pytest

from rnnlab.tasks.charlm import train
from rnnlab.train import TrainConfig

WORDS = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n", "Over ", "here, "]


def make_text(n_words=3000, seed=0):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(WORDS, size=n_words))


@pytest.fixture(name="make_text")
def make_text_fixture():
    return make_text


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_home, monkeypatch):
    # the encoded-corpus cache lives under XDG_CACHE_HOME: keep the user's own out of the tests
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, cache_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache_home))
        root = tmp_path_factory.mktemp("tiny")
        corpus = root / "corpus.txt"
        corpus.write_text(make_text(), encoding="utf-8")
        cfg = TrainConfig(corpus=str(corpus), cell="lstm", hidden_size=24, num_layers=2, embedding_size=8,
                          dropout=0.1, proj_size=12, batch_size=8, seq_len=16, max_steps=8, eval_every=4,
                          log_every=2, seed=1)
        run = root / "run"
        train(cfg, out=str(run), log=lambda *_: None)
    return run
