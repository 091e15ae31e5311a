"""The adding-problem study: data, and the quick run the CLI offers."""
import math

import numpy as np

from rnnlab.experiments import Options, run
from rnnlab.experiments.adding import BASELINE, adding_batch


def test_adding_batch_markers_and_targets():
    x, y = adding_batch(np.random.default_rng(0), 500, 40)
    assert x.shape == (500, 40, 2) and y.shape == (500, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :20].sum(axis=1) == 1) and np.all(marks[:, 20:].sum(axis=1) == 1)
    # float32 data: a sum of 2 marked products of values in [0, 1) (other terms exactly 0): 1-2 roundings of
    # 2^-24 ~ 6e-8; rtol 1e-6 ~ 16 ulps.
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1), rtol=1e-6)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))


def test_predicting_one_scores_the_baseline():
    _, y = adding_batch(np.random.default_rng(1), 100_000, 10)
    assert abs(float(np.mean((y - 1.0) ** 2)) - BASELINE) < 0.005
    assert abs(BASELINE - 0.1667) < 1e-3


def test_quick_adding_lstm_beats_the_baseline(tmp_path):
    lines = []
    # minutes=1: the run ends by its step count, not by a busy machine's clock
    result = run("adding", Options(quick=True, seeds=1, minutes=1.0, cells=["lstm", "rnn"], out=str(tmp_path),
                                   log=lines.append))
    assert "| lstm T=" in result["table"] and "| rnn T=" in result["table"]
    runs = {row["cell"]: row["runs"][0] for row in result["rows"]}
    for rec in runs.values():
        assert math.isfinite(rec["final_mse"]) and math.isfinite(rec["best_mse"]) and rec["steps"] > 0
    # the LSTM must learn something: well below always predicting 1
    assert runs["lstm"]["final_mse"] < 0.6 * BASELINE
    assert (tmp_path / "results.json").exists() and (tmp_path / "table.md").exists()
