"""The detectors: never looking ahead, scores in [0, 1], the task on the one training loop
(exact resume after an interruption, the divergence guard), the anomaly likelihood."""
import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint
from rnnlab.errors import ConfigError, DataError
from rnnlab.tasks.anomaly import Detector, probationary_rows
from rnnlab.tasks.anomaly.likelihood import (
    anomaly_likelihood,
    gaussian_tail,
    log_tail,
    onsets,
    range_alarms,
    tail_probability,
)
from rnnlab.tasks.anomaly.models import make_model
from rnnlab.tasks.anomaly.task import AnomalyTask
from rnnlab.train import run_task
from rnnlab.train.guard import DivergenceError
from rnnlab.train.loopconfig import LoopConfig
from rnnlab.train.progress import Progress
from rnnlab.train.runs import prepare_run_dir
from rnnlab.train.verify import check_exact_resume, check_guard_refused_all

TINY = dict(window=8, hidden=6, latent=3, epochs=2, batch=16, samples=2, long=200)


def _series(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    values[450:460] += 4.0  # an anomaly after the probationary period
    stamps = np.datetime64("2020-01-01T00:00") + t * np.timedelta64(1, "h")
    return values, stamps


def test_probationary_rows_follow_nab():
    assert probationary_rows(1000) == 150 and probationary_rows(22695) == 750 and probationary_rows(7) == 1


@pytest.mark.parametrize("kind,refit", [("pred", 0), ("encdec", 0), ("vae", 0), ("pred", 100), ("vae", 150),
                                        ("pred+vae", 150)])
def test_scores_are_in_0_1_and_never_look_ahead(kind, refit):
    values, stamps = _series()
    det = Detector(kind, seed=1, refit_every=refit, **TINY)
    scores = det.fit_score(values, stamps)
    assert det.last_fit["refits"] == (len(range(90 + refit, 600, refit)) if refit else 0) * len(kind.split("+"))
    assert scores.shape == values.shape and np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores[:probationary_rows(len(values))] == 0)  # NAB does not score them
    changed = values.copy()
    changed[520:] = 100.0 * np.cos(np.arange(80))  # a different future (past the onsets of row 450's alarm)
    again = Detector(kind, seed=1, refit_every=refit, **TINY).fit_score(changed, stamps)
    np.testing.assert_array_equal(scores[:520], again[:520])
    assert not np.array_equal(scores[520:], again[520:])


def test_the_anomaly_gets_the_highest_score_and_seeds_repeat():
    values, stamps = _series()
    det = Detector("pred", seed=0, window=8, hidden=8, epochs=20, long=200)
    scores = det.fit_score(values, stamps)
    scored = np.arange(600) >= 90 + det.config.warmup  # a range alarm in the warm-up rows scores 1 too
    assert 448 <= int(np.argmax(np.where(scored, scores, 0.0))) <= 462
    np.testing.assert_array_equal(scores, Detector("pred", seed=0, window=8, hidden=8, epochs=20,
                                                   long=200).fit_score(values, stamps))
    assert det.last_fit["rows"] == 600 and det.last_fit["probationary"] == 90


def test_too_short_or_not_finite_or_bad_settings_are_one_line_errors():
    det = Detector("pred", window=32)
    with pytest.raises(DataError, match=r"has 100 rows; the pred detector with --window 32 needs at least 327"):
        det.fit_score(np.zeros(100))
    values = np.zeros(400)
    values[5] = np.nan
    with pytest.raises(DataError, match="row 5 is not a finite number"):
        Detector("vae", window=8).fit_score(values)
    with pytest.raises(DataError, match="empty"):
        det.fit_score([])
    with pytest.raises(ConfigError, match="unknown detector"):
        Detector("lof")
    with pytest.raises(ConfigError, match="--post"):
        Detector("pred", post="max")


def test_likelihood_flags_a_sustained_rise_once_and_uses_only_the_past():
    rng = np.random.default_rng(0)
    raw = rng.random(1000)
    raw[700:760] += 5.0
    s = anomaly_likelihood(raw, start=150, short=5, long=500, suppress=50)
    assert np.all(s[:150] == 0) and np.all((s >= 0) & (s < 1))
    assert 700 <= int(np.argmax(s)) < 710
    assert np.count_nonzero(s[700:760] > 0.3) <= 3  # onsets: not one alarm per row
    future = raw.copy()
    future[800:] = 0
    np.testing.assert_array_equal(s[:800], anomaly_likelihood(future, 150, short=5, long=500)[:800])
    g = gaussian_tail(raw, 150)
    assert np.all(g[:150] == 0) and g.max() > 0.5


def test_warmup_keeps_the_training_rows_out_of_the_likelihood():
    rng = np.random.default_rng(1)
    raw = rng.gamma(1.0, size=1200)
    raw[:300] *= 0.1  # the rows the network trained on: smaller errors
    plain = anomaly_likelihood(raw, start=300, first=10, long=500)
    s = anomaly_likelihood(raw, start=300, first=10, long=500, warmup=40)
    assert np.all(s[:340] == 0) and s[340:].max() > 0
    assert plain[300:340].max() > 0.3  # without: new rows look rare next to the training rows
    other = raw.copy()
    other[:300] = 5.0  # the training rows do not matter with a warm-up
    np.testing.assert_array_equal(s, anomaly_likelihood(other, start=300, first=10, long=500, warmup=40))
    assert not np.array_equal(plain, anomaly_likelihood(other, start=300, first=10, long=500))
    future = raw.copy()
    future[900:] = 0.0
    np.testing.assert_array_equal(s[:900], anomaly_likelihood(future, 300, 10, long=500, warmup=40)[:900])


def test_log_tail_and_onsets():
    z = np.array([-3.0, 0.0, 2.0, 20.0, 24.9999, 25.0001, 40.0])
    q = tail_probability(z[:3])
    # float64 exp(log(q)) for q in (1e-3, 1): a few ulps relative (|log q| < 10, so ~10 eps); rtol 1e-12.
    np.testing.assert_allclose(np.exp(log_tail(z[:3])), q, rtol=1e-12)
    assert q[1] == 0.5
    lt = log_tail(z)
    assert np.all(np.diff(lt) < 0) and abs(lt[4] - lt[5]) < 0.01  # continuous where the series takes over
    np.testing.assert_array_equal(onsets(np.array([0.1, 0.5, 0.4, 0.6, 0.6, 0.2]), 2), [0.1, 0.5, 0, 0.6, 0, 0])


def test_range_alarms_by_hand_and_without_look_ahead():
    v = np.array([0.0, 1.0, 0.5, 1.04, 1.2, -0.03, -0.2, 0.5])
    # row 3: 1.04 is within 5% of the range [0, 1] above it; row 4: 1.2 > 1.04 + 0.05 * 1.04;
    # row 5: -0.03 is within 0.06 of the range [0, 1.2]; row 6: -0.2 < -0.03 - 0.05 * 1.23
    np.testing.assert_array_equal(range_alarms(v), [0, 0, 0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(range_alarms(v, 0.2), [0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(range_alarms(v, 0.0), np.zeros(8, dtype=bool))  # 0: off
    np.testing.assert_array_equal(range_alarms(np.full(5, 3.0)), np.zeros(5, dtype=bool))  # no range yet
    assert range_alarms(v[:1]).tolist() == [False] and range_alarms(v[:0]).tolist() == []
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.standard_normal(500))
    full = range_alarms(walk)
    assert 0 < full.sum() < 100
    for k in (50, 200, 499):
        np.testing.assert_array_equal(range_alarms(walk[:k]), full[:k])  # row t uses rows up to t


def test_range_alarms_score_one_then_onsets():
    rng = np.random.default_rng(2)
    raw = rng.random(600)
    alarms = np.zeros(600, dtype=bool)
    alarms[[100, 160, 400, 401, 402, 500]] = True
    s = anomaly_likelihood(raw, start=150, first=10, long=300, warmup=20, alarms=alarms)
    plain = anomaly_likelihood(raw, start=150, first=10, long=300, warmup=20)
    assert s[100] == 0 and s[160] == 0  # the probationary and warm-up rows still score 0
    assert s[400] == 1.0 and s[401] == 0 and s[402] == 0 and s[500] == 1.0  # onsets: one alarm per run
    keep = np.ones(600, dtype=bool)
    keep[400:451] = keep[500:551] = False
    np.testing.assert_array_equal(s[keep], plain[keep])
    np.testing.assert_array_equal(s[:400], plain[:400])
    g = gaussian_tail(raw, 150, alarms=alarms)
    assert g[400] == 1.0 and g[100] == 0


def test_warmup_alarms_score_range_alarms_in_the_warm_up_rows_only():
    rng = np.random.default_rng(2)
    raw = rng.random(600)
    alarms = np.zeros(600, dtype=bool)
    alarms[[100, 160, 165, 400]] = True  # probationary (start 150), warm-up (20 rows: 150..169), scored
    plain = anomaly_likelihood(raw, start=150, first=10, long=300, warmup=20, alarms=alarms)
    s = anomaly_likelihood(raw, start=150, first=10, long=300, warmup=20, alarms=alarms, warmup_alarms=True)
    assert s[100] == 0 and s[160] == 1.0 and s[165] == 0  # 165: within 50 rows of 160, not an onset
    assert np.all(s[150:170][[i != 10 for i in range(20)]] == 0)  # the other warm-up rows still score 0
    assert plain[160] == 0 and s[400] == plain[400] == 1.0
    np.testing.assert_array_equal(s[:150], plain[:150])
    np.testing.assert_array_equal(s[211:], plain[211:])  # after the onset rule's reach of row 160
    values, stamps = _series()
    det = Detector("pred", seed=0, warmup_alarms=True, **TINY)
    got = det.fit_score(values, stamps)
    warm = det.last_fit["range_alarms"] & (np.arange(len(values)) >= det.last_fit["probationary"])
    warm[det.last_fit["probationary"] + det.config.warmup:] = False
    assert warm.any() and np.all(got[np.flatnonzero(warm)[:1]] == 1.0)


def test_detector_range_tolerance():
    values, stamps = _series()
    values[520] = 9.0  # far outside the range of the rows before it
    on = Detector("pred", seed=0, **TINY)
    s_on = on.fit_score(values, stamps)
    s_off = Detector("pred", seed=0, range_tolerance=0, **TINY).fit_score(values, stamps)
    assert s_on[520] == 1.0 and s_off[520] < 1.0
    alarms = on.last_fit["range_alarms"]
    np.testing.assert_array_equal(alarms, range_alarms(values, 0.05))
    assert alarms[450] and alarms[520] and s_on[450] == 1.0
    warm = np.flatnonzero(alarms[90:190]) + 90  # alarms in the warm-up rows: the first scores 1 (default)
    assert len(warm) and s_on[warm[0]] == 1.0 and s_on[90:190].sum() == np.count_nonzero(s_on[90:190])
    quiet = Detector("pred", seed=0, warmup_alarms=False, **TINY).fit_score(values, stamps)
    assert not quiet[90:190].any() and quiet[450] == quiet[520] == 1.0  # --no-warmup-alarms: they score 0
    np.testing.assert_array_equal(quiet[:450], s_off[:450])
    with pytest.raises(ConfigError, match="--range-tolerance must be >= 0"):
        Detector("pred", range_tolerance=-0.1)
    with pytest.raises(ConfigError, match="--range-tolerance"):
        Detector("pred", range_tolerance=float("nan"))


def _windows(kind, n=40, L=6, poison=False):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, L, 2)).astype(np.float32)
    y = rng.standard_normal((n, 1)).astype(np.float32) if kind == "pred" else None
    if poison:
        x[:, 0, 0] = np.nan  # every batch non-finite: the guard must refuse every step
    spec = {"detector": kind, "input_size": 2, "hidden_size": 5, "window": L, "horizon": 1, "latent_size": 3,
            "seed": 2}
    return spec, x, y


@pytest.mark.parametrize("kind", ["pred", "encdec", "vae"])
def test_anomaly_task_resumes_exactly_after_an_interruption(tmp_path, kind):
    """Stop at a random step (a KeyboardInterrupt inside the step), resume: identical to one straight run."""
    spec, x, y = _windows(kind)
    cfg = LoopConfig(lr=5e-3, max_steps=17, eval_every=5, log_every=1, schedule="cosine", guard="skip")
    check_exact_resume(lambda: AnomalyTask(spec, x, y, batch=8, seed=1), cfg, tmp_path,
                       stop_at=int(np.random.default_rng(len(kind)).integers(1, 16)))
    part = tmp_path / "part"
    meta = load_checkpoint(part / "last.npz")[1]
    if kind == "vae":  # the latent layer's generator is part of the checkpoint
        assert any("latent" in name for name in meta["rng"])


@pytest.mark.parametrize("kind", ["pred", "vae"])
def test_the_guard_refuses_non_finite_steps(tmp_path, kind):
    spec, x, y = _windows(kind, poison=True)
    task = AnomalyTask(spec, x, y, batch=8, seed=1)
    before = make_model(spec).state_dict()
    cfg = LoopConfig(max_steps=30, eval_every=10, guard="skip")
    with pytest.raises(DivergenceError):
        run_task(task, cfg, prepare_run_dir(str(tmp_path / "run")), log=lambda *a: None,
                 progress=Progress(enabled=False))
    check_guard_refused_all(tmp_path / "run", before)


def test_an_ensemble_averages_its_members_raw_measures():
    values, stamps = _series()
    det = Detector("pred", seed=4, ensemble=3, refit_every=200, **TINY)
    scores = det.fit_score(values, stamps)
    seeds = [det.member_seed(k) for k in range(3)]
    assert seeds[0] == 4 and len(set(seeds)) == 3
    members = []
    for s in seeds:  # member k is the single detector with member k's seed
        one = Detector("pred", seed=s, refit_every=200, **TINY)
        one.fit_score(values, stamps)
        members.append(one.last_fit["raw"])
    np.testing.assert_array_equal(det.last_fit["members"], members)
    # float64 mean of 3 members in possibly another order: ~3 eps relative; rtol 1e-12.
    np.testing.assert_allclose(det.last_fit["raw"], np.mean(members, axis=0), rtol=1e-12)
    assert det.last_fit["refits"] == 3 * len(range(290, 600, 200))
    again = Detector("pred", seed=4, ensemble=3, refit_every=200, **TINY).fit_score(values, stamps)
    np.testing.assert_array_equal(scores, again)
    with pytest.raises(ConfigError, match="--ensemble must be at least 1"):
        Detector("pred", ensemble=0)


def test_a_joint_detector_scores_the_mean_z_of_its_parts():
    values, stamps = _series()
    opts = dict(refit_every=200, warmup=20, **TINY)
    joint = Detector("pred+vae", seed=2, **opts)
    scores = joint.fit_score(values, stamps)
    raws = []
    for kind in ("pred", "vae"):
        part = Detector(kind, seed=2, **opts)
        part.fit_score(values, stamps)
        raws.append(part.last_fit["raw"])
    np.testing.assert_array_equal(joint.last_fit["raw"], raws)
    alarms = range_alarms(values, 0.05)
    assert alarms[110:].any()  # the joint score has the range alarms too
    expected = anomaly_likelihood(np.stack(raws), 90, 8, long=200, warmup=20, alarms=alarms, peak=10,
                                  slow=20)  # --peak 10, --slow 20 (the defaults)
    np.testing.assert_array_equal(scores, expected)
    one = anomaly_likelihood(raws[1], 90, 8, long=200, warmup=20)  # one measure twice: the same score
    np.testing.assert_array_equal(anomaly_likelihood(np.stack([raws[1], raws[1]]), 90, 8, long=200, warmup=20), one)
    assert not np.array_equal(scores, one)
    for bad in ("pred+pred", "pred+lof"):
        with pytest.raises(ConfigError, match="unknown detector"):
            Detector(bad)
    with pytest.raises(ConfigError, match="needs --post likelihood"):
        Detector("pred+vae", post="gaussian")


def test_progress_counts_every_scored_row_of_every_network():
    import io

    from rnnlab.train.progress import WorkProgress

    values, stamps = _series()
    det = Detector("pred+vae", seed=0, ensemble=2, refit_every=150, **TINY)
    assert det.work(600) == 2 * (600 - 8) + 2 * (600 - 7)
    stream = io.StringIO()
    bar = WorkProgress(det.work(600), "pred+vae", stream=stream, every_s=0)
    scores = det.fit_score(values, stamps, progress=bar)
    assert bar.done == bar.total
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 * 2 * len(range(90, 600, 150))  # one line per scored block here (every_s=0)
    assert lines[-1].startswith(f"pred+vae: 100% of {bar.total:,} rows") and "ETA 0:00" in lines[-1]
    np.testing.assert_array_equal(scores, Detector("pred+vae", seed=0, ensemble=2, refit_every=150, **TINY)
                                  .fit_score(values, stamps, progress=False))
