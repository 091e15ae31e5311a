"""Fair studies: step-matched and time-matched budgets, parallel jobs, failures, the papers' protocols."""
import json
import math
import os

import numpy as np
import pytest

from rnnlab.experiments import Options, run
from rnnlab.experiments.runner import BUDGET_TITLES, Column, Condition, Study, plan_jobs, run_study

TIME_KEYS = {"wall_s", "seconds", "ms_per_step", "seconds_to_solve", "curve_seconds"}


# -- a toy study whose functions live at module level, so spawned workers can import them ----------------
def _toy_conditions(opts):
    return [Condition("lstm row", "lstm", "g", {"v": 1.0}), Condition("gru row", "gru", "g", {"v": 2.0})]


def _toy_run_one(cond, seed, opts):
    if cond.label == "gru row" and seed == 1:
        raise ValueError("boom")
    if cond.label == "gru row" and seed == 2:
        os._exit(3)  # a worker process that dies
    return {"metric": cond.settings["v"] + seed, "steps": 10 if opts.budget == "steps" else 7 + seed,
            "threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid(),
            "curve": [(0, 1.0), (1, 0.5)]}


TOY = Study("toy", "Toy study", 2, _toy_conditions, _toy_run_one,
            [Column("metric", "metric", "{:.1f}"), Column("steps", "steps", "{:.0f}")], ("step", "loss"))


def test_plan_covers_every_budget_condition_and_seed():
    conds = _toy_conditions(None)
    jobs = plan_jobs(conds, 2, ("steps", "time"))
    assert [(j.budget, j.cond.label, j.seed) for j in jobs][:3] == [
        ("steps", "lstm row", 0), ("steps", "lstm row", 1), ("steps", "gru row", 0)]
    assert len(jobs) == 8 and len({j.key for j in jobs}) == 8


def test_both_budgets_step_matched_table_first_and_a_failure_is_reported(tmp_path):
    lines = []
    result = run_study(TOY, Options(out=str(tmp_path), seeds=2, log=lines.append))
    table = result["table"]
    assert table.index(BUDGET_TITLES["steps"]) < table.index(BUDGET_TITLES["time"])
    assert result["tables"]["steps"].splitlines()[2] == "| lstm row | 1.5 ± 0.7 | 10 ± 0 |"
    assert result["tables"]["time"].splitlines()[2] == "| lstm row | 1.5 ± 0.7 | 8 ± 1 |"
    # seed 1 of the gru row raised: recorded as failed, left out of the means, the rest carried on
    assert result["tables"]["steps"].splitlines()[3] == "| gru row | 2.0 (1/2) | 10 (1/2) |"
    assert result["failed"] == 2
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["budget"] for r in saved["rows"]] == ["steps", "steps", "time", "time"]
    bad = [rec for row in saved["rows"] for rec in row["runs"] if rec.get("failed")]
    assert len(bad) == 2 and all("ValueError: boom" in rec["error"] for rec in bad)
    assert "Failed jobs" in (tmp_path / "table.md").read_text()
    assert any("FAILED: ValueError: boom" in line for line in lines)
    assert set(result["plots"]) <= {"toy-g-steps.png", "toy-g-time.png"}


def test_parallel_workers_have_one_thread_and_survive_a_dead_worker(tmp_path):
    result = run_study(TOY, Options(out=str(tmp_path), seeds=3, budget="steps", jobs=2, log=lambda s: None))
    runs = {row["label"]: row["runs"] for row in result["rows"]}
    assert [r["seed"] for r in runs["lstm row"]] == [0, 1, 2]          # gathered in the serial order
    assert all(r["threads"] == "1" and r["pid"] != os.getpid() for r in runs["lstm row"])
    gru = runs["gru row"]
    assert not gru[0].get("failed") and gru[0]["metric"] == 2.0
    assert "ValueError: boom" in gru[1]["error"]
    assert gru[2]["failed"] and "died" in gru[2]["error"]               # only the job that killed its process
    assert result["failed"] == 2
    assert os.environ.get("OMP_NUM_THREADS") != "1" or "OMP_NUM_THREADS" in os.environ  # parent env restored


def _comparable(result):
    out = []
    for row in result["rows"]:
        for rec in row["runs"]:
            out.append((row["label"], row["budget"], {k: v for k, v in rec.items() if k not in TIME_KEYS}))
    return out


def test_parallel_results_equal_serial_results(tmp_path, blas_choice_record):
    """Step-matched runs are deterministic: --jobs 1 and --jobs 2 give identical metrics and curves (with the
    BLAS choice record on: the workers take the serial run's choices, as a user's do)."""
    common = dict(quick=True, seeds=2, budget="steps", steps=60, cells=["irnn", "gru"], log=lambda s: None)
    serial = run("adding", Options(out=str(tmp_path / "j1"), jobs=1, **common))
    parallel = run("adding", Options(out=str(tmp_path / "j2"), jobs=2, **common))
    a, b = _comparable(serial), _comparable(parallel)
    assert [x[:2] for x in a] == [x[:2] for x in b] and len(a) == 2 * 6
    for (label, _, ra), (_, _, rb) in zip(a, b):
        assert ra == rb, label
    drop_ms = [[c for k, c in enumerate(line.split("|")) if k != len(line.split("|")) - 2]
               for line in serial["table"].splitlines()]
    assert drop_ms == [[c for k, c in enumerate(line.split("|")) if k != len(line.split("|")) - 2]
                       for line in parallel["table"].splitlines()]


def test_step_matched_adding_rows_all_get_the_same_steps(tmp_path):
    result = run("adding", Options(quick=True, seeds=1, budget="steps", steps=80, cells=["rnn", "irnn", "lstm"],
                                   out=str(tmp_path), log=lambda s: None))
    labels = [row["label"] for row in result["rows"]]
    assert labels == ["rnn T=20", "irnn adam T=20", "lstm T=20", "irnn sgd lr=0.1 clip=1 T=20", "irnn sgd lr=0.01 clip=1 T=20",
                      "irnn sgd lr=0.01 clip=10 T=20", "irnn sgd lr=0.001 clip=10 T=20"]
    for row in result["rows"]:
        rec = row["runs"][0]
        assert rec["step_budget"] == 80
        assert rec["steps"] == 80 or rec["stop"] == "target reached", row["label"]
        assert math.isfinite(rec["best_mse"])
    steps_col = [line.split("|")[-3].strip() for line in result["table"].splitlines()[2:]]
    assert set(steps_col) == {"80"}
    sgd = [row for row in result["rows"] if "sgd" in row["label"]]
    assert all(r["runs"][0]["optimizer"] == "sgd" and r["runs"][0]["batch"] == 16 for r in sgd)


def test_adding_offers_t150_and_the_irnn_protocol_there():
    from rnnlab.experiments.adding import PROTOCOL, conditions
    from rnnlab.models.seqmodel import SeqModel

    conds = conditions(Options())
    groups = list(dict.fromkeys(c.group for c in conds))
    assert groups == ["T=100", "T=150", "T=200", "T=400"]
    protocol = [c for c in conds if "sgd" in c.label]
    assert protocol and all(c.group == "T=150" and c.cell == "irnn" for c in protocol)
    assert {c.settings["lr"] for c in protocol} <= {1e-1, 1e-2, 1e-3} and {c.settings["clip"] for c in protocol} == {1.0, 10.0}
    assert PROTOCOL["batch"] == 16 and PROTOCOL["hidden"] == 100 and PROTOCOL["optimizer"] == "sgd"
    # the protocol's initialisation: W_h = I, biases 0, W_x ~ N(0, 0.001^2)
    model = SeqModel("irnn", 2, 100, 1, seed=0, dtype=np.float64, **PROTOCOL["options"])
    cell = model.rnn.layers[0].cell if hasattr(model.rnn, "layers") else None
    params = dict((n, v) for n, v, _ in model.named_parameters())
    np.testing.assert_array_equal(params["rnn.l0.cell.W_h"], np.eye(100))
    assert not params["rnn.l0.cell.b"].any()
    assert abs(params["rnn.l0.cell.W_x"].std() - 0.001) < 0.0002
    del cell


def test_digits_and_charlm_offer_the_protocol_rows_and_step_budgets(tmp_path):
    from rnnlab.experiments import charlm, digits

    d = {c.label: c for c in digits.conditions(Options())}
    assert {"irnn adam pixel", "irnn sgd lr=0.1 pixel", "irnn sgd lr=0.01 permuted", "bnlstm permuted"} <= set(d)
    assert d["irnn sgd lr=0.1 pixel"].settings["options"] == {"identity_scale": 1.0, "input_std": 0.001}
    assert d["bnlstm permuted"].settings["options"] == {"max_steps": 64}  # one BN statistics slot per pixel
    c = {x.label: x for x in charlm.conditions(Options())}
    assert c["irnn sgd embedding"].settings["optimizer"] == "sgd"
    assert (c["irnn adam lr=1e-3 embedding"].settings["lr"], c["irnn adam embedding"].settings["lr"]) == (1e-3, 1e-4)
    assert charlm.step_budget(Options(quick=True)) == charlm.QUICK["steps"]
    assert charlm.step_budget(Options(steps=7)) == 7


def test_bnlstm_is_the_papers():
    """gamma 0.1, per-step statistics, separate input/recurrent BN, BN(c) before tanh, last slot reused."""
    from rnnlab.cells import BNLSTMCell

    cell = BNLSTMCell(3, 4, max_steps=5)
    for key in ("x", "h", "c"):
        assert np.all(cell.params[f"gamma_{key}"] == np.float32(0.1))
        assert cell.buffers[f"mean_{key}"].shape[0] == 5
    assert not cell.params["beta_c"].any()
    cell.buffers["trained_steps"][0] = 3
    assert [cell.stat_index(t) for t in range(6)] == [0, 1, 2, 2, 2, 2]


def test_groups_filter(tmp_path):
    lines = []
    result = run("adding", Options(quick=True, seeds=1, budget="steps", steps=20, cells=["gru"], groups=["T=20"],
                                   out=str(tmp_path), log=lines.append))
    assert [row["group"] for row in result["rows"]] == ["T=20"]
    with pytest.raises(Exception, match="no condition left"):
        run("adding", Options(quick=True, groups=["T=999"], out=str(tmp_path / "b"), log=lines.append))
    assert any("no group 'T=999'" in line for line in lines)


def test_rows_filter_by_label():
    from rnnlab.experiments.runner import select

    lines = []
    conds = [Condition("irnn adam T=150", "irnn", "T=150", {}), Condition("irnn sgd lr=0.01 T=150", "irnn", "T=150", {}),
             Condition("lstm T=150", "lstm", "T=150", {})]
    kept = select(conds, None, lines.append, rows=["irnn adam", "lstm"])
    assert [c.label for c in kept] == ["irnn adam T=150", "lstm T=150"]
    assert select(conds, None, lines.append, rows=["nothing"]) == []
    assert any("no row of this study has 'nothing'" in line for line in lines)


def test_reestimated_bn_statistics_are_the_training_set_average():
    from rnnlab.models.seqmodel import SeqModel
    from rnnlab.experiments.seqtask import reestimate_population

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3)).astype(np.float64)
    model = SeqModel("bnlstm", 3, 4, 2, seed=0, dtype=np.float64, max_steps=5)
    cell = [m for _, m in model.modules() if hasattr(m, "stat_index")][0]
    assert reestimate_population(model, x, batch=32, seed=1) == 1 and cell.momentum == 0.1
    # step 0's input statistics: the mean of the two batches' means of x_0 W_x
    order = np.random.default_rng(1).permutation(64)
    xw = x[:, 0] @ cell.params["W_x"]
    want = np.mean([xw[order[i:i + 32]].mean(axis=0) for i in (0, 32)], axis=0)
    # float64 means of 32 rows of products of length <= 8, in another order: ~1e-15; rtol 1e-10, atol 1e-12.
    np.testing.assert_allclose(cell.buffers["mean_x"][0], want, rtol=1e-10, atol=1e-12)
    assert model.training
    assert reestimate_population(SeqModel("lstm", 3, 4, 2), x) == 0
