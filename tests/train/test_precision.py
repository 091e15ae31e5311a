"""``--precision`` is the loop's (LoopConfig.precision, run_task): every task's train command takes
it, bf16 is refused in one line where it cannot run, a model with a layer that has no bf16 time
loop is refused, and where it runs (oneMKL's emulation on CPUs without AVX512_BF16) the tagger's
and the forecaster's losses follow fp32's and config.json records the precision.

The bf16 runs need oneMKL's bf16 GEMM (skip cleanly without it); the refusals do not."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab.blas import mkl, precision
from rnnlab.cells import GRUCell, RNNCell
from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.layers import Recurrent
from rnnlab.module import Module
from rnnlab.tasks.tagging.data import write_conll
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.train import LoopConfig, check_bf16_layers, validate_loop

needs_bf16 = pytest.mark.skipif(not (mkl.available() and mkl.has_bf16()),
                                reason="oneMKL with cblas_gemm_bf16bf16f32 not loadable (pip install 'rnnlab[mkl]')")
TAG = ["--word-dim", "8", "--case-dim", "3", "--char-dim", "5", "--char-hidden", "4", "--hidden-size", "8",
       "--batch-size", "8", "--max-minutes", "0", "--lr", "0.01", "--dropout", "0.0", "--max-steps", "12",
       "--eval-every", "6"]
FORECAST = ["--window", "48", "--horizon", "24", "--hidden-size", "6", "--batch-size", "8", "--max-steps", "12",
            "--max-minutes", "0", "--eval-every", "6", "--holdout", "72"]


@pytest.fixture
def data(tmp_path):
    for name, n, seed in (("train", 60, 1), ("dev", 20, 2)):
        write_conll(tmp_path / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    rng, t = np.random.default_rng(0), np.arange(300)      # three noisy daily cycles, 300 hours each
    rows = [f"s{k},{i},{10 + k + 3 * np.sin(2 * np.pi * i / 24 + k) + 0.3 * rng.standard_normal():.5f}"
            for k in range(3) for i in t]
    (tmp_path / "sensors.csv").write_text("series_id,time,value\n" + "\n".join(rows) + "\n")
    return tmp_path


def _argv(task, data, out, *extra):
    if task == "tag":
        return ["tag", "train", "--train", str(data / "train.tsv"), "--dev", str(data / "dev.tsv"),
                "--out", str(out), *TAG, *extra]
    return ["forecast", "train", str(data / "sensors.csv"), "--out", str(out), *FORECAST, *extra]


def test_the_loop_validates_the_precision():
    assert LoopConfig().precision == "fp32"
    with pytest.raises(ConfigError, match="--precision must be one of fp32, bf16, got 'fp16'"):
        validate_loop(LoopConfig(precision="fp16"))


def test_layers_without_a_bf16_loop_are_named():
    class Two(Module):
        def __init__(self):
            super().__init__()
            self.a = self.add_child("a", Recurrent(GRUCell(3, 4)))
            self.b = self.add_child("b", Recurrent(RNNCell(4, 4)))

    with pytest.raises(ConfigError) as err:
        check_bf16_layers(Two())
    assert "RNNCell" in str(err.value) and "GRUCell" not in str(err.value) and "\n" not in str(err.value)
    check_bf16_layers(Recurrent(GRUCell(3, 4)))     # LSTM and GRU pass


@pytest.mark.parametrize("task", ["tag", "forecast"])
def test_task_train_refuses_bf16_in_one_line(task, data, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RNNLAB_BF16_EMULATED", raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    code = main(_argv(task, data, tmp_path / "run", "--precision", "bf16"))
    err = capsys.readouterr().err
    assert code != 0 and "avx512_bf16" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "run" / "last.npz").exists()


@needs_bf16
@pytest.mark.parametrize("task", ["tag", "forecast"])
def test_task_train_in_bf16_follows_fp32(task, data, tmp_path, monkeypatch, capsys):
    """Same seed, same steps: bf16's training losses stay within 2 % of fp32's (bf16's rounding is
    2^-9 relative per operand) and are not all equal to them (bf16 ran)."""
    monkeypatch.setenv("RNNLAB_BF16_EMULATED", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    losses = {}
    for name in ("fp32", "bf16"):
        out = tmp_path / name
        assert main(_argv(task, data, out, "--precision", name)) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["precision"] == config["blas"]["precision"] == name
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[name] = np.array([r["loss"] for r in rows if r.get("kind", "train") == "train" and "loss" in r])
    capsys.readouterr()
    assert losses["fp32"].size >= 2 and losses["fp32"].shape == losses["bf16"].shape
    np.testing.assert_allclose(losses["bf16"], losses["fp32"], rtol=0.02)
    assert not np.array_equal(losses["bf16"], losses["fp32"])
    assert precision.current() == "fp32"          # restored after the run
