"""``rnnlab blas``: the machine, the backend requested, and this machine's record of choices."""
import json
import re

import pytest

from rnnlab.blas import choice, choice_cache
from rnnlab.cli import main


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    file = tmp_path / "blas-choices.json"
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", str(file))
    monkeypatch.setattr(choice, "_cache", {})
    return file


def test_shows_times_records_and_clears(fresh, monkeypatch, capsys):
    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 3e-6, "mkl": 5e-6})
    assert main(["blas", "--time", "64x128x512", "--time", "8X32x96"]) == 0
    out = capsys.readouterr().out
    assert choice_cache.machine() in out and "RNNLAB_BLAS=auto" in out and str(fresh) in out
    assert "step product (64, 128) x (128, 512)" in out and "openblas 3 us, mkl packed 5 us" in out
    recorded = json.loads(fresh.read_text())["machines"][choice_cache.machine()]
    assert sorted(k.split("@")[0] for k in recorded) == ["64x128x512", "8x32x96"]
    assert len(re.findall(r"x\d+@\d+  openblas +3\.0 +5\.0  20", out)) == 2
    assert main(["blas", "--clear"]) == 0
    out = capsys.readouterr().out
    assert "forgot 2 recorded choice(s)" in out and "no choices recorded for this machine yet" in out


def test_an_explicit_backend_times_nothing(fresh, monkeypatch, capsys):
    monkeypatch.setattr(choice, "_requested", "openblas")
    assert main(["blas", "--time", "4x8x32"]) == 0
    assert "nothing to time: RNNLAB_BLAS=openblas" in capsys.readouterr().out and not fresh.exists()


def test_off_says_so(monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", "off")
    assert main(["blas"]) == 0
    assert "off (RNNLAB_BLAS_CACHE=off)" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["3x", "axbxc", "0x8x8", "8x8x99999999"])
def test_a_bad_shape_is_one_line(fresh, capsys, bad):
    assert main(["blas", "--time", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --time") and len(err.strip().splitlines()) == 1 and not fresh.exists()


def test_lists_whole_sequence_choices(fresh, monkeypatch, capsys):
    """A whole-sequence product's choice (MxKxN:ab@threads) is listed beside the step products'."""
    import numpy as np

    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_threads", lambda: 2)
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 3e-6, "mkl": 5e-6})
    monkeypatch.setattr(choice, "_time_gemm", lambda M, K, N, ab: {"openblas": 2e-3, "mkl": 1e-3})
    a, b = np.zeros((5000, 256), np.float32), np.zeros((5000, 1024), np.float32)
    assert choice.choose_gemm(a.T, b) == "mkl"
    assert main(["blas", "--time", "64x256x1024"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if "@2 " in line]
    assert [r[:2] for r in rows] == [["64x256x1024@2", "openblas"], ["256x8192x1024:tn@2", "mkl"]]
    assert rows[1][2:4] == ["2000.0", "1000.0"]
