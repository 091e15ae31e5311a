"""Any run loads and evaluates by its recorded task."""
import numpy as np
import pytest

import rnnlab
from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.experiments.seqtask import SequenceTask, fit_sequence
from rnnlab.train.batches import EpochBatches
from rnnlab.tasks.registry import task_of
from rnnlab.train.loopconfig import LoopConfig


def _text(n=2500):
    rng = np.random.default_rng(0)
    return "".join(rng.choice(["abc ", "bca ", "cab\n", "aaa "], size=n // 4))


def test_a_charlm_run_loads_as_a_charlm(tmp_path):
    lm = rnnlab.CharLM(hidden_size=8, num_layers=1, embedding_size=4, batch_size=4, seq_len=8, max_steps=3,
                       eval_every=3).fit(text=_text(), out=tmp_path / "lm", progress=False)
    assert task_of(lm.run_dir) == "charlm" and task_of(lm.run_dir / "best.npz") == "charlm"
    again = rnnlab.load(lm.run_dir)
    assert isinstance(again, rnnlab.CharLM) and again.sample("a", length=5, seed=0) == lm.sample("a", length=5, seed=0)


def test_a_study_run_is_evaluated_from_its_metrics(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(16, 4, 1)).astype(np.float32)
    spec = {"cell": "rnn", "input_size": 1, "hidden_size": 3, "output_size": 1, "seed": 0}
    task = SequenceTask(spec, EpochBatches(x, x[:, 0], 4, 0), (x, x[:, 0]), "regression")
    fit_sequence(task, LoopConfig(max_steps=4, eval_every=2), tmp_path / "study")
    assert task_of(tmp_path / "study") == "sequence"
    assert main(["eval", str(tmp_path / "study")]) == 0
    assert "'sequence' run, last validation at step 4" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="no model object"):
        rnnlab.load(tmp_path / "study")
    assert main(["eval", str(tmp_path / "study"), "--text", "x.txt"]) == 2
