"""``--resume RUN`` keeps the run's saved settings in every task; only the flags the user gave
replace them (issue 22, fault 2): budget flags replace the budget, even when they equal the
parser's or the dataclass's default; any other setting given must equal the run's own, or the
command refuses in one line naming the flag (an exact resume cannot change the model)."""
from __future__ import annotations

import pytest

from rnnlab.cli import main
from rnnlab.tasks.charlm import train
from rnnlab.train import TrainConfig

from .test_run_folders import _argv, _capture_run_task, data  # noqa: F401  (data is a fixture)


@pytest.fixture(scope="module")
def patient_run(tmp_path_factory):
    """A char-LM run whose budget differs from the defaults in a field that defaults to 0 (patience)."""
    from .conftest import make_text

    root = tmp_path_factory.mktemp("patient")
    corpus = root / "corpus.txt"
    corpus.write_text(make_text(800), encoding="utf-8")
    cfg = TrainConfig(corpus=str(corpus), hidden_size=8, num_layers=1, embedding_size=4, batch_size=4, seq_len=8,
                      max_steps=4, eval_every=2, log_every=2, patience=3, lr=0.01)
    train(cfg, out=str(root / "run"), log=lambda *_: None)
    return root / "run"


def test_charlm_a_budget_flag_equal_to_the_default_still_replaces_the_runs(patient_run, monkeypatch, capsys):
    seen = _capture_run_task(monkeypatch, "rnnlab.tasks.charlm.api")
    assert main(["train", "--resume", str(patient_run)]) == 0
    assert (seen["cfg"].patience, seen["cfg"].max_steps) == (3, 4)    # the run's own
    assert main(["train", "--resume", str(patient_run), "--patience", "0"]) == 0
    assert (seen["cfg"].patience, seen["cfg"].max_steps) == (0, 4)    # given: 0 (TrainConfig's default) replaces 3
    capsys.readouterr()


def test_charlm_a_setting_given_on_resume_must_be_the_runs(patient_run, monkeypatch, capsys):
    seen = _capture_run_task(monkeypatch, "rnnlab.tasks.charlm.api")
    assert main(["train", "--resume", str(patient_run), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has --lr 0.01, and --lr 0.5 was given" in err and "cfg" not in seen
    assert main(["train", "--resume", str(patient_run), "--lr", "0.01", "--hidden-size", "8"]) == 0  # the same
    assert (seen["cfg"].lr, seen["cfg"].hidden_size) == (0.01, 8)
    capsys.readouterr()


@pytest.mark.parametrize("task, module, flag, same, other", [
    ("tag", "rnnlab.tasks.tagging.api", "--lr", "0.01", "0.5"),
    ("forecast", "rnnlab.tasks.forecast.api", "--hidden-size", "6", "8"),
])
def test_a_setting_given_on_resume_must_be_the_runs(task, module, flag, same, other, data, tmp_path,  # noqa: F811
                                                     monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(_argv(task, data, out, "--max-steps", "4")) == 0
    capsys.readouterr()
    seen = _capture_run_task(monkeypatch, module)
    assert main([task, "train", "--resume", str(out), flag, other]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"has {flag} {same}, and {flag} {other} was given" in err and "cfg" not in seen
    assert main([task, "train", "--resume", str(out), flag, same, "--max-steps", "6"]) == 0
    assert seen["cfg"].max_steps == 6
    capsys.readouterr()
