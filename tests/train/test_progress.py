"""Progress for people (bar, plain lines in logs, validation progress) and the settings dump."""
import importlib.util
import io

import numpy as np

from rnnlab.cli import build_parser
from rnnlab.tasks.charlm import evaluate
from rnnlab.models import CharRNN, ModelConfig
from rnnlab.tasks.charlm import train
from rnnlab.train import TrainConfig, describe_changes
from rnnlab.train.progress import Progress, WorkProgress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_logs_get_plain_lines_with_percentage_and_eta():
    out = io.StringIO()
    p = Progress(stream=out, every_s=0.0)
    p.start(0, 200, 0.0, 0.0, "chars")
    p.update(50, 1.5, 1234.0, 10.0)
    p.message("step 50: validation 2.1 bits/char")
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("step     50 (25%)") and "1.2K chars/s" in lines[0] and "ETA 0:30" in lines[0]
    assert "\r" not in out.getvalue() and lines[1] == "step 50: validation 2.1 bits/char"


def test_logs_are_not_flooded():
    out = io.StringIO()
    p = Progress(stream=out, every_s=3600.0)
    p.start(0, 0, 0.0, 600.0, "chars")
    for step in range(1, 500):
        p.update(step, 1.0, 100.0, step / 10)
    assert out.getvalue().count("\n") <= 1


def test_a_terminal_gets_a_redrawn_bar_and_validation_progress():
    out = FakeTTY()
    p = Progress(stream=out)
    p.start(0, 100, 0.0, 0.0, "chars")
    p.update(10, 1.0, 100.0, 1.0)
    p.eval_update(5, 10)
    p.eval_done()
    p.close()
    text = out.getvalue()
    assert "\r" in text and ("validation" in text or "train" in text)


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    p = Progress(stream=out, enabled=False)
    p.start(0, 10, 0.0, 0.0, "chars")
    p.update(5, 1.0, 1.0, 1.0)
    p.message("x")
    p.close()
    assert out.getvalue() == ""


def test_work_progress_lines_bar_and_silence():
    out = io.StringIO()
    p = WorkProgress(10, "score", unit="files", stream=out, every_s=3600.0)
    for _ in range(10):
        p.advance(1)
    p.close()
    assert not p.on_terminal and out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert out.getvalue().startswith("score: 100% of 10 files, ") and "ETA 0:00" in out.getvalue()
    quiet = io.StringIO()
    q = WorkProgress(10, "score", stream=quiet, every_s=None)  # the caller logs each item itself
    q.advance(10)
    assert quiet.getvalue() == "" and q.done == 10
    tty = FakeTTY()
    t = WorkProgress(4, "score", unit="files", stream=tty)
    assert t.on_terminal == (importlib.util.find_spec("tqdm") is not None)  # tqdm is an optional extra
    t.advance(4)
    t.close()
    if importlib.util.find_spec("tqdm") is not None:
        assert "\rscore:   0%|" in tty.getvalue() and "0/4" in tty.getvalue() and t.done == 4  # the bar, cleared
    else:  # without tqdm a terminal gets the plain line
        assert tty.getvalue().startswith("score: 100% of 4 files, ")
    assert not t.on_terminal
    off = io.StringIO()
    WorkProgress(4, stream=FakeTTY(), enabled=False).advance(4)
    w = WorkProgress(4, stream=off, enabled=False, every_s=0)
    w.advance(4)
    assert off.getvalue() == "" and not w.on_terminal


def test_the_settings_dump_shows_only_what_changed_and_where_the_rest_is(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc bca cab " * 300)
    lines = []
    train(TrainConfig(corpus=str(corpus), hidden_size=8, num_layers=1, embedding_size=4, batch_size=4, seq_len=8,
                      max_steps=2, eval_every=2), out=str(tmp_path / "run"), log=lines.append,
          progress=Progress(enabled=False))
    head = lines[0]
    assert "hidden_size = 8" in head and "config.json" in head
    assert "optimizer" not in head and "dropout" not in head and head.count("\n") < 15
    assert describe_changes(TrainConfig().validate(), TrainConfig().validate()) == "  (all defaults)"


def test_validation_scores_a_bounded_sample_unless_asked_for_all():
    assert TrainConfig().eval_chars == 1_000_000
    model = CharRNN(ModelConfig(5, "gru", 4, 1, 2))
    ids = np.random.default_rng(0).integers(0, 5, size=5000)
    seen = []
    evaluate(model, ids, 4, 10, max_chars=400, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (400, 400)
    seen.clear()
    evaluate(model, ids, 4, 10, max_chars=0, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == 4 * ((5000 - 1) // 4)


def test_help_says_how_resume_and_the_schedule_behave():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    flat = " ".join(text.split())
    assert "planned over the new total" in flat and "--force" in text and "evaluation" in flat
