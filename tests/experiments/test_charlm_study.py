"""The character-LM study: parameter matching, the missing-dataset error, a quick run."""
import math

import pytest

from rnnlab.errors import DataError
from rnnlab.experiments import Options, run
from rnnlab.experiments.charlm import count_params, find_corpus, solve_hidden


@pytest.mark.parametrize("cell,embed", [("rnn", 16), ("lstm", 16), ("gru", 0), ("irnn", 0)])
def test_solve_hidden_hits_the_target(cell, embed):
    target = 30_000
    h = solve_hidden(60, cell, embed, target)
    got = count_params(60, cell, h, embed, {})
    assert abs(got - target) <= abs(count_params(60, cell, h + 1, embed, {}) - target)
    assert abs(got - target) <= abs(count_params(60, cell, h - 1, embed, {}) - target)


def test_missing_dataset_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    with pytest.raises(DataError, match="--data-dir DIR or set RNNLAB_DATA=DIR"):
        find_corpus(Options(data_dir=str(tmp_path)))
    assert find_corpus(Options(corpus="some/file.txt")) == "some/file.txt"


def test_quick_charlm_on_a_small_text(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    result = run("charlm", Options(quick=True, seeds=1, cells=["lstm", "rnn"], corpus=str(text),
                                   out=str(tmp_path / "out"), log=lambda s: None))
    labels = [(row["budget"], row["label"]) for row in result["rows"]]
    names = ["rnn embedding", "lstm embedding", "lstm one-hot", "rnn one-hot"]
    assert labels == [("steps", n) for n in names] + [("time", n) for n in names]
    for row in result["rows"]:
        rec = row["runs"][0]
        assert math.isfinite(rec["val_bpc"]) and rec["steps"] > 0
        if row["budget"] == "steps":
            assert rec["steps"] == 40  # step-matched: every model the same number of updates
        assert abs(rec["params"] - 4_000) < 0.1 * 4_000
        assert rec["val_bpc"] < math.log2(27)  # better than uniform over the ~27 characters
    assert "| lstm one-hot |" in result["table"]
