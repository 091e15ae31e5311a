"""Command-line manners: a closed pipe ends a command quietly; bad settings are one line naming the flag."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.train.config import TrainConfig, check_types

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
RNNLAB = f"{sys.executable} -m rnnlab"


def _shell(command: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, capture_output=True, text=True, env=ENV, timeout=300,
                          executable="/bin/bash", **kw)


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr, stderr


# -- closed pipes -----------------------------------------------------------------------------------------
def test_gradcheck_into_head_is_quiet():
    result = _shell(f"{RNNLAB} gradcheck --module Linear | head -1")
    _no_traceback(result.stderr)
    assert result.stdout.startswith("module") and result.stdout.count("\n") == 1


def test_gradcheck_into_a_pipe_already_closed_exits_141_silently():
    """Deterministic: the reading end is closed before the command writes anything."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "rnnlab", "gradcheck", "--module", "Linear"], stdout=write,
                                stderr=subprocess.PIPE, text=True, env=ENV, timeout=300)
    finally:
        os.close(write)
    _no_traceback(result.stderr)
    assert result.stderr == "" and result.returncode == 141


def test_gradcheck_list_into_a_closed_pipe():
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "rnnlab", "gradcheck", "--list"], stdout=write,
                                stderr=subprocess.PIPE, text=True, env=ENV, timeout=120)
    finally:
        os.close(write)
    assert result.stderr == "" and result.returncode == 141


def test_sample_into_head_c_is_quiet(tiny_run):
    result = _shell(f"{RNNLAB} sample {tiny_run} --length 200000 --seed 1 | head -c 10; "
                    "echo \" ${PIPESTATUS[0]}\" >&2")
    assert len(result.stdout) == 10
    _no_traceback(result.stderr)
    assert result.stderr.strip() == "141"  # quiet, with the status of a process ended by SIGPIPE


def test_eval_into_a_closed_pipe(tiny_run):
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "rnnlab", "eval", str(tiny_run), "--split", "val"],
                                stdout=write, stderr=subprocess.PIPE, text=True, env=ENV, timeout=300)
    finally:
        os.close(write)
    _no_traceback(result.stderr)
    assert result.returncode == 141


def test_error_message_into_a_closed_stderr_pipe(tmp_path):
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "rnnlab", "sample", str(tmp_path / "nope")],
                                stdout=subprocess.PIPE, stderr=write, text=True, env=ENV, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 141 and result.stdout == ""


# -- settings of the wrong type ----------------------------------------------------------------------------
@pytest.mark.parametrize("toml, pattern", [
    ('hidden_size = "256"', r"config key hidden_size \(--hidden-size\) must be a whole number, got string '256'"),
    ('lr = "fast"', r"config key lr \(--lr\) must be a number, got string 'fast'"),
    ("num_layers = true", r"config key num_layers \(--num-layers\) must be a whole number, got boolean True"),
    ("num_layers = 2.5", r"config key num_layers \(--num-layers\) must be a whole number, got number 2.5"),
    ("diagnostics = 1", r"config key diagnostics \(--diagnostics\) must be true or false, got whole number 1"),
    ("cell = 3", r"config key cell \(--cell\) must be a string, got whole number 3"),
    ("split = [0.9, 0.1]", r"config key split \(--split\) must be a list of three numbers, got list"),
    ('split = ["a", "b", "c"]', r"config key split \(--split\) must be a list of three numbers"),
    ("cell_options = 5", r"config key cell_options \(--cell-options\) must be a table"),
    ('[train]\nseq_len = "64"', r"config key seq_len \(--seq-len\) must be a whole number, got string '64'"),
])
def test_toml_values_of_the_wrong_type_are_one_line(tmp_path, capsys, toml, pattern):
    path = tmp_path / "settings.toml"
    path.write_text(toml + "\n")
    code = main(["train", "--config", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(pattern, err), err


def test_check_types_accepts_what_the_defaults_and_a_saved_config_hold():
    check_types(TrainConfig().to_dict())
    check_types({"lr": 1, "max_minutes": 2, "split": [0.8, 0.1, 0.1], "corpus": None, "data_dir": "x",
                 "cell_options": {"identity_scale": 0.5}, "unknown_key_left_to_from_dict": object()})
    with pytest.raises(ConfigError, match="unknown config keys: hiden_size"):
        TrainConfig.from_dict({"hiden_size": 3})
    with pytest.raises(ConfigError, match=r"batch_size \(--batch-size\)"):
        TrainConfig.from_dict({"batch_size": "64"})


def test_toml_example_in_a_table_with_good_types_still_works():
    data = tomllib.loads("[train]\nhidden_size = 32\nlr = 1e-3\nsplit = [0.8, 0.1, 0.1]\n")["train"]
    assert TrainConfig.from_dict(data).hidden_size == 32


# -- messages name the flag ----------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, words", [
    (["--hidden-size", "0"], "--hidden-size must be at least 1, got 0"),
    (["--seq-len", "0"], "--seq-len must be at least 1, got 0"),
    (["--embedding-size", "-1"], "--embedding-size must be >= 0, got -1"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
    (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
    (["--clip", "-1"], "--clip, --clip-value and --max-minutes must be >= 0"),
    (["--cell", "transformer"], "unknown --cell 'transformer'"),
])
def test_validation_messages_name_the_flag(tmp_path, capsys, flags, words):
    code = main(["train", *flags, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_eval_bad_batch_size_names_the_flag(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--split", "val", "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1, got 0" in capsys.readouterr().err


# -- extras ------------------------------------------------------------------------------------------------------
def test_the_all_extra_covers_every_optional_extra_but_test_mkl_sweep_and_ray():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def expand(name: str) -> set[str]:
        out = set()
        for req in extras[name]:
            if req.startswith("rnnlab["):
                for sub in req[len("rnnlab["):req.index("]")].split(","):
                    out |= expand(sub.strip())
            else:
                out.add(req)
        return out

    everything = expand("all")
    for name in extras:
        # mkl: 943 MiB, slower than OpenBLAS on AVX2 (pyproject comment); sweep (optuna) and ray: for the
        # scale-out jobs only, never pulled in by "all"
        if name not in ("all", "test", "mkl", "sweep", "ray"):
            assert set(extras[name]) <= everything, name
    for name in ("mkl", "sweep", "ray"):
        assert not set(extras[name]) & everything, name
    assert any(req.startswith("scikit-learn") for req in everything)


def test_missing_matplotlib_names_the_checkout_install(monkeypatch):
    import builtins

    from rnnlab.plotting import require_matplotlib

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[plot\]'"):
        require_matplotlib()


# -- files that cannot be read or written -------------------------------------------------------------------------
def test_plot_deeply_nested_metrics_record(tiny_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text((tiny_run / "metrics.jsonl").read_text()
                       + '{"step": 9, "split": "train", "bpc": 1.0, "x": ' + "[" * 5000 + "]" * 5000 + "}\n")
    assert main(["plot", str(metrics), "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert "a record is nested too deeply" in err and err.count("\n") == 1


def test_plot_to_an_unwritable_place_names_out(tiny_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    (tmp_path / "file").write_text("x")
    assert main(["plot", str(tiny_run), "--out", str(tmp_path / "file" / "m.png")]) == 2
    assert "error: --out " in capsys.readouterr().err


def test_export_to_an_unwritable_place_names_the_flag(tiny_run, tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["export", str(tiny_run), "--torch", str(tmp_path)]) == 2  # a folder: refused before loading
    assert capsys.readouterr().err.startswith(f"error: --torch {tmp_path} is a folder, not a file")
    assert main(["export", str(tiny_run), "--torch", str(tmp_path / "missing" / "m.pt")]) == 0  # made as needed


def test_multi_line_library_messages_become_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    assert main(["import", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and err.count("\n") == 1 and len(err) <= 1010


@pytest.mark.parametrize("flags, words", [
    (["--length", "-1"], "--length must be >= 0, got -1"),
    (["--temperature", "0"], "--temperature must be a positive number, got 0.0"),
    (["--temperature", "nan"], "--temperature must be a positive number, got nan"),
    (["--top-k", "-2"], "--top-k must be >= 0"),
    (["--beam", "-1"], "--beam must be >= 1"),
])
def test_sample_flags_are_named(tiny_run, capsys, flags, words):
    assert main(["sample", str(tiny_run), *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err
