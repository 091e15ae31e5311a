"""``rnnlab tag train|eval|predict`` on generated CoNLL files (no real data needed)."""
import json

import pytest

from rnnlab.cli import main
from rnnlab.tasks.tagging.data import write_conll
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.train.trainer import Trainer

SIZES = ["--word-dim", "8", "--case-dim", "3", "--char-dim", "5", "--char-hidden", "4", "--hidden-size", "8",
         "--batch-size", "8", "--max-minutes", "0", "--lr", "0.01", "--dropout", "0.1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagdata")
    for name, n, seed in (("train", 160, 1), ("dev", 30, 2), ("test", 30, 3)):
        write_conll(root / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    return root


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("tagrun") / "run"
    code = main(["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(files / "dev.tsv"),
                 "--test", str(files / "test.tsv"), "--out", str(out), "--max-steps", "60", "--eval-every", "20",
                 *SIZES])
    assert code == 0
    return out


def test_train_writes_a_run_folder(run):
    assert {"config.json", "metrics.jsonl", "best.npz", "last.npz"} <= {p.name for p in run.iterdir()}
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "tagging" and config["crf"] and config["scheme"] == "BIOES"


def test_eval_defaults_to_the_runs_test_split_and_takes_a_file(run, files, capsys, tmp_path):
    assert main(["tag", "eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test split" in out and "overall" in out and "token accuracy" in out and "Disease" in out
    other = tmp_path / "other.tsv"
    other.write_text("Unseenword\tB-Other\nwith\tO\ncancer\tB-Disease\n\n", encoding="utf-8")
    assert main(["tag", "eval", str(run), "--data", str(other), "--output", str(tmp_path / "pred.tsv")]) == 0
    out = capsys.readouterr().out
    assert "Other" in out and "B-Other x1" in out  # an unseen tag: reported, scored, never a crash
    assert (tmp_path / "pred.tsv").read_text().splitlines()[0].split("\t")[0] == "Unseenword"


def test_eval_split_dev_scores_the_runs_validation_split(run, capsys):
    assert main(["tag", "eval", str(run), "--split", "dev"]) == 0
    out = capsys.readouterr().out
    assert "the run's dev split" in out
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(r["f1"] for r in rows if r["split"] == "val")
    overall = [line for line in out.splitlines() if line.startswith("overall")][0]
    assert float(overall.split()[3]) == pytest.approx(best, abs=0.006)   # best.npz's validation F1


def test_predict_conll_and_json_with_offsets(run, tmp_path, capsys):
    text = "The patients with Breast cancer were treated. A study of ataxia - telangiectasia risk!\n"
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8")
    assert main(["tag", "predict", str(run), str(path)]) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert len(blocks) == 2 and blocks[0].splitlines()[0].split("\t")[0] == "The"
    assert main(["tag", "predict", str(run), str(path), "--format", "json"]) == 0
    sentences = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(sentences) == 2
    for s in sentences:
        for t in s["tokens"]:
            assert text[t["start"]:t["end"]] == t["text"]
        for e in s["entities"]:
            assert text[e["start"]:e["end"]] == e["text"] and e["type"] == "Disease"


def test_resume_continues_and_plot_reads_the_run(run, tmp_path, capsys):
    assert main(["tag", "train", "--resume", str(run), "--max-steps", "70"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 70
    pytest.importorskip("matplotlib")
    assert main(["plot", str(run), "--out", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").stat().st_size > 0


def test_ctrl_c_exits_130_and_bad_input_is_one_line(files, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tO\nb\tO\textra\n", encoding="utf-8")
    code = main(["tag", "train", "--train", str(bad), "--dev", str(files / "dev.tsv"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "bad.tsv:2:" in err
    assert main(["tag", "train", "ncbi-disease", "--train", str(bad)]) == 2
    assert "not both" in capsys.readouterr().err

    def interrupt(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_step", interrupt)
    code = main(["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(files / "dev.tsv"),
                 "--out", str(tmp_path / "stopped"), "--max-steps", "5", *SIZES])
    assert code == 130 and (tmp_path / "stopped" / "last.npz").is_file()
    assert main(["tag", "eval", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize("action", ["train", "eval", "predict"])
def test_every_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tag", action, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage" in out and (action != "train" or ("--no-crf" in out and "--no-char" in out))


def test_predict_bad_input_is_one_line(run, tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 with cancer".encode("latin-1"))
    assert main(["tag", "predict", str(run), str(latin)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "latin1.txt" in err and "iconv" in err
    assert main(["tag", "predict", str(run), str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert main(["tag", "predict", str(run), str(empty), "--format", "json"]) == 0
    assert capsys.readouterr().out == ""


def test_tags_unseen_in_training_are_reported(files, tmp_path, capsys):
    dev = tmp_path / "dev.tsv"
    dev.write_text("with\tO\nBRCA1\tB-Gene\n\n", encoding="utf-8")
    code = main(["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(dev), "--out",
                 str(tmp_path / "r"), "--max-steps", "2", *SIZES])
    assert code == 0 and "note (dev split): 1 tags not seen in training" in capsys.readouterr().out


# -- faults found from outside (issue 22, items 3, 4 and 6) ---------------------------------------
def test_eval_compares_and_writes_in_the_files_own_scheme(run, files, capsys, tmp_path):
    """A BIOES model scored on a BIO file: token accuracy and --output in BIO (no E-/S- tags)."""
    from rnnlab.tasks.tagging.data import read_conll

    pred = tmp_path / "pred.tsv"
    assert main(["tag", "eval", str(run), "--data", str(files / "test.tsv"), "--output", str(pred)]) == 0
    out = capsys.readouterr().out
    assert "tags in BIO" in out
    rows = [line.split("\t") for line in pred.read_text().splitlines() if line]
    assert rows and not any(r[-1][:2] in ("E-", "S-") for r in rows)
    accuracy = 100 * sum(r[-2] == r[-1] for r in rows) / len(rows)
    assert f"{accuracy:.2f}" in out  # the printed token accuracy is the one of the written columns
    # the same file in BIOES is scored and written in BIOES
    from rnnlab.tasks.tagging.data import convert_sentences, write_conll as write
    bioes = tmp_path / "test_bioes.tsv"
    write(bioes, convert_sentences(read_conll(files / "test.tsv"), "BIOES"))
    assert main(["tag", "eval", str(run), "--data", str(bioes), "--output", str(pred)]) == 0
    assert "tags in BIOES" in capsys.readouterr().out


def test_a_tag_outside_every_scheme_is_one_line_naming_file_line_and_tag(files, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("A\tO\nwidget\tQ-Thing\n\n", encoding="utf-8")
    code = main(["tag", "train", "--train", str(bad), "--dev", str(files / "dev.tsv"), "--out",
                 str(tmp_path / "r"), "--max-steps", "1", *SIZES])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert f"{bad}:2" in err[0] and "'Q-Thing'" in err[0]


def test_i_after_o_is_repaired_with_a_count_shown(files, tmp_path, capsys):
    text = (files / "train.tsv").read_text(encoding="utf-8")
    odd = tmp_path / "odd.tsv"  # two chunks that start on I- after O in an otherwise BIO file
    odd.write_text("A\tO\ntumour\tI-Disease\n.\tO\n\nB\tO\ncancer\tI-Disease\n\n" + text, encoding="utf-8")
    code = main(["tag", "train", "--train", str(odd), "--dev", str(files / "dev.tsv"), "--out",
                 str(tmp_path / "r"), "--max-steps", "2", "--eval-every", "2", *SIZES])
    out = capsys.readouterr().out
    assert code == 0
    line = [x for x in out.splitlines() if "start on an I-/E- tag" in x]
    assert len(line) == 1 and "2 chunks" in line[0] and f"{odd}:2" in line[0] and "'I-Disease'" in line[0]


def test_predict_streams_bounded_batches(run, tmp_path, capsys, monkeypatch):
    """Memory must not grow with the input: the tagger sees bounded batches, and output starts
    before the input is read to its end."""
    from rnnlab.tasks.tagging import api

    sizes = []
    real = api.Tagger.predict

    def spy(self, sentences):
        sizes.append(len(sentences))
        return real(self, sentences)

    monkeypatch.setattr(api.Tagger, "predict", spy)
    monkeypatch.setattr(api, "BLOCK_CHARS", 2000)
    path = tmp_path / "big.txt"
    sentence = "Patients with breast cancer were treated. "
    path.write_text((sentence * 10 + "\n") * 300, encoding="utf-8")  # 3,000 sentences, 126 KB
    assert main(["tag", "predict", str(run), str(path), "--format", "json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3000 and max(sizes) <= 256 and len(sizes) >= 3000 // 256
    text = path.read_text(encoding="utf-8")
    for line in (lines[0], lines[1234], lines[-1]):  # offsets still index the whole input
        toks = json.loads(line)["tokens"]
        assert all(text[t["start"]:t["end"]] == t["text"] for t in toks)
    # the Python API streams too: the first sentence comes before the input is exhausted
    read = []

    def pieces():
        for i in range(10 ** 6):
            read.append(i)
            yield sentence * 10 + "\n"

    tagger = api.Tagger.load(run)
    first = next(tagger.predict_stream(pieces()))
    assert first["tokens"][0]["text"] == "Patients" and len(read) < 1000


def test_average_scores_both_weight_sets_and_the_test_line_says_which_won(files, tmp_path, capsys):
    out = tmp_path / "avg"
    code = main(["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(files / "dev.tsv"),
                 "--test", str(files / "test.tsv"), "--out", str(out), "--max-steps", "40", "--eval-every", "20",
                 "--average", "0.99", *SIZES])
    assert code == 0
    text = capsys.readouterr()
    text = text.out + text.err
    assert "averaged weights: validation entity F1" in text
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert val and all("avg_f1" in r for r in val)
    best = max(val, key=lambda r: max(r["f1"], r["avg_f1"]))
    assert ("averaged weights)" in text) == (best["avg_f1"] > best["f1"])
    assert main(["tag", "eval", str(out)]) == 0
