"""The pixel-by-pixel digits study."""
import builtins
import math

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiments import Options, run
from rnnlab.experiments.digits import load_digits_sequences

pytest.importorskip("sklearn")


def test_split_is_fixed_and_permutation_is_shared():
    a = load_digits_sequences()
    b = load_digits_sequences()
    p = load_digits_sequences(permuted=True)
    assert a[0].shape == (1438, 64, 1) and a[2].shape == (359, 64, 1)
    assert a[0].min() >= 0 and a[0].max() <= 1
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a[1], p[1])  # same images, same order: only the pixels move
    perm_cols = [np.flatnonzero((p[0][:, :, 0] == a[0][:, [j], 0]).all(axis=0)) for j in range(64)]
    assert sum(len(c) > 0 for c in perm_cols) >= 60  # every column reappears somewhere
    assert not np.array_equal(a[0], p[0])
    assert set(np.unique(a[1])) == set(range(10))


def test_missing_sklearn_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kw):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ConfigError, match="pip install scikit-learn"):
        load_digits_sequences()


def test_quick_digits_lstm_beats_chance(tmp_path):
    # minutes=1: the run ends by its epoch count, not by a busy machine's clock
    result = run("digits", Options(quick=True, seeds=1, minutes=1.0, cells=["lstm"], out=str(tmp_path),
                                   log=lambda s: None))
    rows = {row["label"]: row["runs"][0] for row in result["rows"]}
    assert set(rows) == {"lstm pixel", "lstm permuted"}
    for rec in rows.values():
        assert math.isfinite(rec["test_acc"]) and math.isfinite(rec["test_loss"])
    assert rows["lstm pixel"]["test_acc"] > 25.0   # chance is 10 %
    assert "| lstm pixel |" in result["table"]


def test_quick_digits_irnn_rows_are_not_stopped_by_a_loss_ceiling(tmp_path):
    """The IRNN's first losses are far above 4 ln 10 (its state sums the inputs); that is not divergence."""
    result = run("digits", Options(quick=True, seeds=1, budget="steps", cells=["irnn"], groups=["pixel"],
                                   rows=["irnn adam"], out=str(tmp_path), log=lambda s: None))
    rec = result["rows"][0]["runs"][0]
    assert result["rows"][0]["label"] == "irnn adam pixel"
    assert not rec["diverged"] and rec["steps"] == rec["step_budget"]
    assert math.isfinite(rec["test_acc"])


def test_quick_digits_bnlstm_reports_accuracy_with_reestimated_statistics(tmp_path):
    result = run("digits", Options(quick=True, seeds=1, budget="steps", cells=["bnlstm"], groups=["permuted"],
                                   out=str(tmp_path), log=lambda s: None))
    rec = result["rows"][0]["runs"][0]
    assert 0.0 <= rec["test_acc_restats"] <= 100.0
    assert "BN stats over train set" in result["table"]


def test_irnn_grid_rows_only_when_asked_for_and_their_settings_reach_the_run(tmp_path):
    from rnnlab.experiments import digits

    assert not any(c.group == digits.GRID for c in digits.conditions(Options()))
    grid = [c for c in digits.conditions(Options(groups=[digits.GRID])) if c.group == digits.GRID]
    assert len(grid) == len(digits.IRNN_GRID) and len({c.label for c in grid}) == len(grid)
    cos = next(c for c in grid if c.label == "irnn grid h128 lr=0.003 id=1 cos pixel")
    assert cos.settings["hidden"] == 128 and cos.settings["schedule"] == "cosine"
    assert cos.settings["options"] == {"input_std": 1.0, "identity_scale": 1.0}
    result = run("digits", Options(quick=True, seeds=1, budget="steps", steps=30, groups=[digits.GRID],
                                   rows=["irnn grid h64 lr=0.001 id=0.9 pixel"], out=str(tmp_path), log=lambda s: None))
    (row,) = result["rows"]
    rec = row["runs"][0]
    assert rec["hidden"] == 64 and rec["steps"] == 30 and rec["lr"] == 1e-3
    assert rec["params"] == 64 * 1 + 64 * 64 + 64 + 64 * 10 + 10     # W_x, W_h, b, read-out
    from rnnlab.checkpoint import load_checkpoint

    _, meta = load_checkpoint(tmp_path / "digits-runs" / "steps" / "irnn-grid-h64-lr0.001-id0.9-pixel-seed0" / "last.npz")
    assert meta["model"]["identity_scale"] == 0.9 and meta["model"]["input_std"] == 1.0
    assert meta["config"]["schedule"] == "constant"


def test_validation_runs_never_see_the_test_split(tmp_path, monkeypatch):
    from rnnlab.experiments import digits

    x_tr, y_tr, x_te, y_te = load_digits_sequences()
    a, b, c, d = digits.validation_split(x_tr, y_tr)
    assert len(a) == 1150 and len(c) == 288
    np.testing.assert_array_equal(np.concatenate([a, c]), x_tr)
    np.testing.assert_array_equal(np.concatenate([b, d]), y_tr)
    seen = []
    real = digits.SequenceTask

    def spy(spec, batches, eval_data, *args, **kw):
        seen.append(eval_data[0])
        return real(spec, batches, eval_data, *args, **kw)

    monkeypatch.setattr(digits, "SequenceTask", spy)
    result = run("digits", Options(quick=True, seeds=1, budget="steps", steps=5, rows=["lstm pixel"],
                                   validation=True, out=str(tmp_path), log=lambda s: None))
    assert seen
    for data in seen:
        np.testing.assert_array_equal(data, c)  # scored on the held-out training images only
    assert not any(np.array_equal(seen[0][:1], x_te[i:i + 1]) for i in range(len(x_te)))
    assert "VALIDATION RUN (--validation)" in (tmp_path / "table.md").read_text()
    assert result["rows"][0]["label"] == "lstm pixel"
    with pytest.raises(ConfigError, match="--validation: the adding study has no validation split"):
        run("adding", Options(quick=True, validation=True, out=str(tmp_path / "a"), log=lambda s: None))
