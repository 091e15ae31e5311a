"""``rnnlab tag train --lm-text``: the char-LM pair trained first through the one loop, inside the
tagger's run folder, resumed or reused on restart, and read back by eval/predict."""
import json

import pytest

from rnnlab.cli import main
from rnnlab.errors import ConfigError, DataError
from rnnlab.tasks.tagging.config import TagConfig
from rnnlab.tasks.tagging.data import write_conll
from rnnlab.tasks.tagging.lm_pretrain import lm_corpus
from rnnlab.tasks.tagging.synthetic import synthetic_sentences

SIZES = ["--word-dim", "8", "--case-dim", "3", "--char-dim", "5", "--char-hidden", "4", "--hidden-size", "8",
         "--batch-size", "8", "--max-minutes", "0", "--lr", "0.01", "--eval-every", "10",
         "--lm-hidden-size", "8", "--lm-steps", "6", "--lm-minutes", "0"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmtext")
    for name, n, seed in (("train", 60, 1), ("dev", 20, 2)):
        write_conll(root / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    (root / "unlabelled.txt").write_text("Patients with breast cancer were treated.\n" * 40, encoding="utf-8")
    return root


def lm_rows(run, name):
    return (run / name / "metrics.jsonl").read_text().count("\n")


def test_lm_corpus_is_the_training_sentences_then_the_files(files, tmp_path):
    train = synthetic_sentences(3, seed=1)
    text = lm_corpus(train, [str(files / "unlabelled.txt")])
    lines = text.splitlines()
    assert lines[:3] == [" ".join(s.tokens) for s in train] and lines[3] == "Patients with breast cancer were treated."
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "bin.txt").write_bytes(b"ab\x00cd")
    for name, message in (("missing.txt", "cannot read"), ("latin1.txt", "not UTF-8"), ("bin.txt", "holds NUL bytes, so it looks binary")):
        with pytest.raises(DataError, match=f"--lm-text .*{name}: {message}"):
            lm_corpus(train, [str(tmp_path / name)])


def test_lm_and_lm_text_together_and_a_missing_budget_are_one_line():
    with pytest.raises(ConfigError, match="not both"):
        TagConfig(train_file="t", dev_file="d", lm="a,b", lm_text="-").validate()
    with pytest.raises(ConfigError, match="--lm-steps"):
        TagConfig(train_file="t", dev_file="d", lm_text="-", lm_minutes=0, lm_steps=0).validate()


def test_train_resume_and_predict_with_an_lm_pair_trained_here(files, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(files / "dev.tsv"),
            "--lm-text", str(files / "unlabelled.txt"), "--out", str(run), "--max-steps", "10", *SIZES]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[lm-fwd]" in out and "[lm-bwd]" in out
    fwd, bwd = (json.loads((run / name / "config.json").read_text()) for name in ("lm-fwd", "lm-bwd"))
    assert not fwd["reverse"] and bwd["reverse"] and fwd["hidden_size"] == 8 and fwd["max_steps"] == 6
    corpus = (run / "lm-text.txt").read_text(encoding="utf-8")
    assert corpus.count("Patients with breast cancer") == 40   # the unlabelled file, after the training sentences
    rows = lm_rows(run, "lm-fwd"), lm_rows(run, "lm-bwd")
    assert not (run / "latest").exists()
    # resumed: the finished LMs are reused as they are (no new rows), the tagger trains on
    assert main(["tag", "train", "--resume", str(run), "--max-steps", "20"]) == 0
    assert (lm_rows(run, "lm-fwd"), lm_rows(run, "lm-bwd")) == rows
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 20
    capsys.readouterr()
    (tmp_path / "in.txt").write_text("Patients with breast cancer were treated.\n", encoding="utf-8")
    assert main(["tag", "predict", str(run), str(tmp_path / "in.txt"), "--format", "json"]) == 0
    tokens = json.loads(capsys.readouterr().out.splitlines()[0])["tokens"]
    assert [t["text"] for t in tokens][:3] == ["Patients", "with", "breast"]
    # --force starts the pair again
    assert main([*args, "--force"]) == 0
    assert lm_rows(run, "lm-fwd") == rows[0]


def test_an_empty_lm_text_file_is_named_in_a_warning(tmp_path):
    from rnnlab.errors import InputWarning

    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    train = synthetic_sentences(3, seed=0)
    with pytest.warns(InputWarning, match=rf"--lm-text {empty}: the file is empty"):
        text = lm_corpus(train, [str(empty)])
    assert text == lm_corpus(train, [])
