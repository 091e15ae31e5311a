"""Bad input across the subcommands: one line naming the problem and the flag, a non-zero exit, no
traceback, and nothing written where it does not belong. Each case here once ended in a traceback,
in a folder written into a run, or in a line that did not say what was wrong (found by running
every subcommand on empty, binary, non-UTF-8, folder, missing, malformed and foreign inputs)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


@pytest.fixture
def bad(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 na\xefve\n".encode("latin-1") * 20)
    (tmp_path / "adir").mkdir()
    (tmp_path / "notjson.json").write_text("{not json")
    (tmp_path / "det.csv").write_text("timestamp,value\n" + "".join(
        f"2024-01-01 {h // 12:02d}:{5 * (h % 12):02d}:00,{h % 7}\n" for h in range(240)))
    return tmp_path


def _one_line(capsys, code, *needles):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- an output file that is a folder (a run folder, say): refused before any work -------------------------
@pytest.mark.parametrize("argv, flag", [
    (["tag", "eval", "NORUN", "--output", "RUN"], "--output"),
    (["forecast", "predict", "NORUN", "NOSERIES", "--out", "RUN"], "--out"),
    (["forecast", "eval", "NORUN", "--plot", "RUN"], "--plot"),
    (["forecast", "eval", "NORUN", "--json", "DIR"], "--json"),
    (["export", "NORUN", "--torch", "RUN"], "--torch"),
    (["plot", "RUN", "--out", "RUN"], "--out"),
    (["plot", "RUN", "--out", "FILE/x.png"], "--out"),
])
def test_an_output_file_that_is_a_folder_is_refused_first(tiny_run, bad, capsys, argv, flag):
    subst = {"RUN": str(tiny_run), "DIR": str(bad / "adir"), "NORUN": str(bad / "no-run"),
             "NOSERIES": str(bad / "no.csv"), "FILE/x.png": str(bad / "empty.txt" / "x.png")}
    before = sorted(p.name for p in tiny_run.iterdir())
    line = _one_line(capsys, main([subst.get(a, a) for a in argv]), flag)
    assert "not a file" in line or "is a file, not a folder" in line
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_plot_names_the_image_it_writes_and_refuses_formats_matplotlib_lacks(tiny_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(tiny_run), "--out", str(tmp_path / "curves")]) == 0
    assert (tmp_path / "curves.png").is_file() and f"wrote {tmp_path / 'curves.png'}" in capsys.readouterr().out
    _one_line(capsys, main(["plot", str(tiny_run), "--out", str(tmp_path / "c.xyz")]), "--out", "'.xyz'")
    assert not list(tmp_path.glob("c.*"))


def test_plot_of_a_file_that_is_not_a_metrics_log_names_it(bad, capsys):
    pytest.importorskip("matplotlib")
    _one_line(capsys, main(["plot", str(bad / "binary.bin")]), str(bad / "binary.bin"), "metrics.jsonl")


# -- an output folder that holds a training run: never written into --------------------------------------
@pytest.mark.parametrize("argv", [
    ["detect", "run", "SERIES", "--out", "RUN", "--window", "8", "--hidden", "4", "--epochs", "1"],
    ["detect", "nab", "NAB", "--out", "RUN"],
    ["experiment", "adding", "--quick", "--out", "RUN"],
])
def test_an_output_folder_holding_a_run_is_refused(tiny_run, bad, capsys, argv):
    before = sorted(p.name for p in tiny_run.iterdir())
    subst = {"RUN": str(tiny_run), "SERIES": str(bad / "det.csv"), "NAB": str(bad / "adir")}
    _one_line(capsys, main([subst.get(a, a) for a in argv]), f"--out {tiny_run}", "training run")
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_sweep_refuses_a_run_folder_as_its_out(tiny_run, tmp_path, capsys):
    pytest.importorskip("optuna")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat\n" * 50)
    space = tmp_path / "space.toml"
    space.write_text(f'task = "train"\nn_trials = 1\n[fixed]\ntext = "{corpus}"\nmax_steps = 2\n'
                     '[space]\nlr = { type = "float", low = 1e-4, high = 1e-2, log = true }\n')
    before = sorted(p.name for p in tiny_run.iterdir())
    _one_line(capsys, main(["sweep", str(space), "--out", str(tiny_run)]), f"--out {tiny_run}", "training run")
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_experiment_refuses_an_earlier_studys_results_without_force(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")
    _one_line(capsys, main(["experiment", "adding", "--quick", "--out", str(tmp_path)]), "--out", "--force")
    assert (tmp_path / "results.json").read_text() == "{}"


# -- the charlm study's corpus is read once, before any job ----------------------------------------------
@pytest.mark.parametrize("name, problem", [("nope.txt", "no such file"), ("empty.txt", "empty"),
                                           ("binary.bin", "binary"), ("latin1.txt", "UTF-8"),
                                           ("adir", "no (non-hidden) files")])
def test_experiment_corpus_problems_are_one_line_before_any_job(bad, tmp_path, capsys, name, problem):
    out = tmp_path / "study"
    code = main(["experiment", "charlm", "--quick", "--corpus", str(bad / name), "--out", str(out)])
    _one_line(capsys, code, f"--corpus {bad / name}", problem)
    assert not out.exists()  # refused before the output folder is made, no table of failed rows


# -- files read by flags ----------------------------------------------------------------------------------
def test_train_config_that_is_a_folder(bad, tmp_path, capsys):
    _one_line(capsys, main(["train", "--config", str(bad / "adir"), "--out", str(tmp_path / "r")]),
              f"--config {bad / 'adir'}", "TOML")


@pytest.mark.parametrize("name, problem", [("nope.txt", "No such file"), ("adir", "Is a directory"),
                                           ("binary.bin", "not UTF-8"), ("notjson.json", "not JSON")])
def test_detect_labels_problems_name_the_file_without_pythons_repr(bad, tmp_path, capsys, name, problem):
    code = main(["detect", "run", str(bad / "det.csv"), "--labels", str(bad / name), "--out", str(tmp_path / "o"),
                 "--window", "8", "--hidden", "4", "--epochs", "1"])
    line = _one_line(capsys, code, str(bad / name), "label file", problem)
    assert "Error:" not in line and "[Errno" not in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name, problem", [("binary.bin", "not a PyTorch file"), ("adir", "is a folder")])
def test_import_of_a_file_torch_cannot_read(bad, tmp_path, capsys, name, problem):
    pytest.importorskip("torch")
    line = _one_line(capsys, main(["import", str(bad / name), "--out", str(tmp_path / "r")]), problem,
                     "rnnlab export --torch")
    assert "weights_only" not in line  # not torch's page of advice on unpickling


def test_through_a_real_process_no_traceback(bad, tmp_path):
    """The same as the user sees it: status 2, one line on stderr, no traceback."""
    for argv in (["train", "--config", str(bad / "adir"), "--out", str(tmp_path / "r")],
                 ["tag", "eval", str(bad / "no-run"), "--output", str(bad / "adir")]):
        result = subprocess.run([sys.executable, "-m", "rnnlab", *argv], capture_output=True, text=True, env=ENV,
                                timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
