"""The forecasting task on the one training loop: exact resume, the guard, no look-ahead, validation."""
import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.forecast import ForecastConfig, ForecastTask
from rnnlab.tasks.forecast.task import make_spec, training_min_window
from rnnlab.train import Progress, run_task
from rnnlab.train.guard import DivergenceError
from rnnlab.train.progress import MetricsLog
from rnnlab.train.runs import prepare_run_dir
from rnnlab.train.verify import check_exact_resume, check_guard_refused_all, metric_rows

from .conftest import hourly_series

QUIET = dict(log=lambda *a: None, progress=Progress(enabled=False))


def _setup(model="direct", cell="gru", **kw):
    series = hourly_series(4, length=150)
    cfg = ForecastConfig(model=model, cell=cell, window=36, horizon=12, season=24, hidden_size=6, batch_size=8,
                         lr=5e-3, max_steps=17, max_minutes=0, eval_every=5, log_every=1, schedule="cosine",
                         guard="skip", seed=1, **kw).validate()
    return cfg, series, make_spec(cfg, series)


@pytest.mark.parametrize("model,cell", [("direct", "gru"), ("encdec", "lstm")])
def test_forecast_task_resumes_exactly_after_an_interruption(tmp_path, model, cell):
    """Stop at a random step (a KeyboardInterrupt inside the step), resume: identical to one straight run."""
    cfg, series, spec = _setup(model, cell)
    check_exact_resume(lambda: ForecastTask(spec, series, batch=cfg.batch_size, seed=cfg.seed), cfg, tmp_path,
                       stop_at=int(np.random.default_rng(len(model)).integers(1, 16)))
    assert any("owa" in r for r in metric_rows(tmp_path / "full"))


def test_the_guard_refuses_non_finite_steps(tmp_path, monkeypatch):
    cfg, series, spec = _setup()
    task = ForecastTask(spec, series, batch=8, seed=1)
    before = task.build_model().state_dict()
    original = ForecastTask.next_batch

    def poisoned(self):
        e, y = original(self)
        e.x[:, 0, 0] = np.nan  # every batch non-finite: the guard must refuse every step
        return e, y

    monkeypatch.setattr(ForecastTask, "next_batch", poisoned)
    with pytest.raises(DivergenceError):
        run_task(task, cfg.replace(max_steps=30), prepare_run_dir(str(tmp_path / "run")), **QUIET)
    check_guard_refused_all(tmp_path / "run", before)


def test_training_never_sees_the_validation_slice_or_the_holdout():
    """Windows end before len - holdout - H; changing those values changes no training batch."""
    cfg, series, spec = _setup()
    hold = 24
    task = ForecastTask(spec, series, batch=8, seed=3, holdout=hold)
    batches = [task.next_batch() for _ in range(30)]
    changed = [s.__class__(s.id, s.values.copy()) for s in series]
    for s in changed:
        s.values[-(hold + spec.horizon):] = 1e6
    other = ForecastTask(spec, changed, batch=8, seed=3, holdout=hold)
    for (e, y), (e2, y2) in zip(batches, [other.next_batch() for _ in range(30)]):
        np.testing.assert_array_equal(e.x, e2.x)
        np.testing.assert_array_equal(y, y2)
    # validation: the H values before the holdout, forecast from the L before them
    k = 0
    n = len(series[k])
    np.testing.assert_array_equal(task.val_y[k], series[k].values[n - hold - 12:n - hold])
    np.testing.assert_array_equal(task.val_x[k], series[k].values[n - hold - 12 - 36:n - hold - 12])


def test_validation_reports_owa_and_an_untrained_model_scores_as_seasonal_naive():
    cfg, series, spec = _setup()
    task = ForecastTask(spec, series, batch=8, seed=0)
    metrics = task.evaluate(task.build_model())
    assert {"owa", "smape", "mase", "loss"} <= metrics.keys() and task.selection.key == "owa"
    from rnnlab.tasks.forecast.baselines import seasonal_naive
    from rnnlab.tasks.forecast.task import score
    sn = np.stack([seasonal_naive(x, 12, 24) for x in task.val_insample])
    # float32 model (the task's default dtype) outputs 0, so its forecasts are the seasonal naive rounded to
    # float32 (2^-24 ~ 6e-8 relative) before the float64 score; sMAPE of those: ~1e-7 relative; rel 1e-5 ~100x.
    assert metrics["smape"] == pytest.approx(score(task.val_insample, task.val_y, sn, 24)[0], rel=1e-5)


def test_training_improves_on_the_start(tmp_path):
    # phase "start": the generated series' weekly wave starts at their first value (a shared calendar start)
    cfg, series, spec = _setup(base="none", phase="start")
    task = ForecastTask(spec, series, batch=16, seed=0)
    start = task.evaluate(task.build_model())["loss"]
    summary = run_task(task, cfg.replace(max_steps=90, eval_every=45, lr=1e-2), prepare_run_dir(str(tmp_path / "r")),
                       **QUIET)
    assert summary["best"] is not None
    rows = [r for r in MetricsLog(tmp_path / "r" / "metrics.jsonl").read() if r.get("split") == "val"]
    assert rows[-1]["loss"] < 0.5 * start


def test_series_too_short_for_any_training_window_is_one_clear_error():
    series = hourly_series(1, length=20)
    spec = make_spec(ForecastConfig(window=36, horizon=12, season=24).validate(), series)
    with pytest.raises(DataError, match="shorter --horizon"):
        ForecastTask(spec, series)


def test_short_series_train_with_shorter_windows_and_are_validated():
    """Series shorter than the window are neither refused nor skipped: batches take the window length of a
    series drawn uniformly, and every series with one value before its validation slice is validated."""
    long = hourly_series(2, length=150)
    short = [s.__class__(f"short{k}", s.values[:n]) for k, (s, n) in enumerate(zip(hourly_series(3), (40, 30, 20)))]
    series = long + short
    spec = make_spec(ForecastConfig(window=36, horizon=12, season=24, hidden_size=4).validate(), series)
    task = ForecastTask(spec, series, batch=4, seed=0)
    assert task.mixed and list(task.val_rows) == [0, 1, 2, 3, 4]
    assert sorted(len(x) for x in task.val_x) == [8, 18, 28, 36, 36]
    note = task.length_note()
    assert "2 series shorter than a full window of 36" in note and "1 series have under 25 values" in note
    assert {task.next_batch()[0].x.shape[1] for _ in range(60)} == {36, 16, 6}   # min(36, cutoff - 12)
    metrics = task.evaluate(task.build_model())
    assert np.isfinite(metrics["owa"]) and np.isfinite(metrics["loss"])


def test_min_window_draws_batches_of_shorter_inputs_that_still_end_before_the_cutoff():
    cfg, series, spec = _setup(min_window=10)
    task = ForecastTask(spec, series, batch=8, seed=0, min_window=cfg.min_window)
    lengths = set()
    for _ in range(60):
        e, target = task.next_batch()
        lengths.add(e.x.shape[1])
        assert target.shape == (8, 12)
    assert min(lengths) >= 10 and max(lengths) <= 36 and len(lengths) > 10
    plain = ForecastTask(spec, series, batch=8, seed=0)
    assert {plain.next_batch()[0].x.shape[1] for _ in range(5)} == {36}
    with pytest.raises(Exception, match="--min-window must be >= 0"):
        ForecastConfig(min_window=-1).validate()


def _short_count(task, n=400):
    L = task.spec.window
    return sum(task.next_batch()[0].x.shape[1] < L for _ in range(n))


def test_short_share_draws_only_that_share_of_batches_shorter_than_the_window():
    cfg, series, spec = _setup()
    # lengths uniform on 10..36: a drawn batch is shorter than 36 with probability 26/27
    quarter = _short_count(ForecastTask(spec, series, batch=4, seed=0, min_window=10, short_share=0.25))
    assert 0.17 * 400 < quarter < 0.31 * 400            # expected 0.24 x 400 = 96, binomial sd 8.5
    assert _short_count(ForecastTask(spec, series, batch=4, seed=0, min_window=10, short_share=0.0)) == 0
    every = _short_count(ForecastTask(spec, series, batch=4, seed=0, min_window=10, short_share=1.0))
    assert every > 0.9 * 400


def test_short_share_one_draws_the_lengths_of_the_runs_saved_before_it():
    """``short_share=1`` takes no extra random draw: the same batches as a task built without the argument
    (runs saved before --short-share resume bit for bit)."""
    cfg, series, spec = _setup()
    a = ForecastTask(spec, series, batch=4, seed=3, min_window=10)
    b = ForecastTask(spec, series, batch=4, seed=3, min_window=10, short_share=1.0)
    for _ in range(20):
        (ea, ta), (eb, tb) = a.next_batch(), b.next_batch()
        np.testing.assert_array_equal(ea.x, eb.x)
        np.testing.assert_array_equal(ta, tb)


def test_the_default_trains_a_quarter_of_batches_from_one_horizon_up():
    cfg, series, spec = _setup()
    assert cfg.short_share == 0.25 and training_min_window(cfg, spec) == spec.horizon == 12
    assert training_min_window(ForecastConfig(min_window=20, short_share=0.5), spec) == 20
    assert training_min_window(ForecastConfig(min_window=20, short_share=0.0), spec) == 0
    with pytest.raises(Exception, match="--short-share must lie between 0 and 1"):
        ForecastConfig(short_share=1.5).validate()


def test_configs_saved_before_short_share_keep_their_behaviour():
    assert ForecastConfig.from_dict({"min_window": 48}).short_share == 1.0     # every batch drawn, as then
    assert ForecastConfig.from_dict({"min_window": 0}).short_share == 0.0      # full windows only, as then
    assert ForecastConfig.from_dict({"min_window": 0, "short_share": 0.25}).short_share == 0.25
