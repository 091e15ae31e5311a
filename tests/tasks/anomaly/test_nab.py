"""The NAB scorer: NAB's rules on hand-built series, and NAB's own published numbers.

The synthetic tests always run. Those marked ``needs_nab`` read ``../shared/data/nab`` (or
``$RNNLAB_DATA/nab``): the published outputs of NAB's "numenta" (HTM) detector on the seven
realKnownCause files and NAB's per-file score rows, and skip when that folder is absent.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.anomaly.likelihood import range_alarms
from rnnlab.tasks.anomaly.nab import (PROFILES, NabCorpus, NabFile, evaluate, load_corpus, load_profiles,
                                      load_results, normalized_score, null_detector, null_score,
                                      optimize_threshold, perfect_detector, probationary_length,
                                      random_detector, scaled_sigmoid, score_corpus, score_file, sweep,
                                      sweep_scores)

STD = PROFILES["standard"]


# -- hand-built series ----------------------------------------------------------------------------
def series(n: int, windows, key: str = "g/a.csv") -> NabFile:
    stamps = np.datetime64("2020-01-01T00:00", "us") + np.arange(n) * np.timedelta64(5, "m")
    return NabFile(key, stamps.astype("datetime64[us]"), np.zeros(n), list(windows))


def fire_at(n: int, rows, value: float = 1.0) -> np.ndarray:
    s = np.zeros(n)
    s[list(rows)] = value
    return s


def score_of(f: NabFile, rows, profile=STD, threshold=0.5):
    return score_file(f.key, f, fire_at(len(f), rows), profile, threshold)


def sig(x: float) -> float:  # NAB's scaledSigmoid, written out
    return -1.0 if x > 3 else 2 / (1 + math.exp(5 * x)) - 1


def test_scaled_sigmoid_and_probation():
    # NAB's reference values are printed to 5 decimals, so they are off by <= 5e-6; abs 1e-5 covers that.
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    # same: a 5-decimal reference value, rounding <= 5e-6; abs 1e-5.
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0 and scaled_sigmoid(3.5) == -1.0
    # the same float64 formula written out: a few ulps; approx default rel 1e-6.
    assert scaled_sigmoid(3.0) == pytest.approx(sig(3.0)) and scaled_sigmoid(3.0) > -1.0
    assert probationary_length(1000) == 150 and probationary_length(10_000) == 750
    assert probationary_length(7) == 1 and probationary_length(5001) == 750


def test_window_edges():
    f = series(100, [(50, 59)])  # width 10; rows 0..14 probationary
    assert score_of(f, [50]).score == STD.tp  # first row of the window earns exactly A_TP
    last = score_of(f, [59])
    # float64 ratio of two sigmoids (exp of |x| <= 5): a few ulps; default rel 1e-6.
    assert last.score == pytest.approx(sig(-1 / 10) / sig(-1.0))
    assert (last.tp, last.fn, last.fp) == (1, 9, 0)
    before = score_of(f, [49])  # just before the window: FP (no window precedes it), window missed
    # float64 sum of two profile weights: 1 rounding; default rel 1e-6.
    assert before.score == pytest.approx(-STD.fp - STD.fn) and (before.fp, before.fn) == (1, 10)
    after = score_of(f, [60])  # just after: FP weighted by its distance, 1/(width-1)
    # float64 weight * sigmoid - weight: a few ulps; default rel 1e-6.
    assert after.score == pytest.approx(STD.fp * sig(1 / 9) - STD.fn)
    assert -STD.fp < STD.fp * sig(1 / 9) < 0


def test_only_the_first_detection_in_a_window_counts():
    f = series(100, [(50, 59)])
    r = score_of(f, [52, 55, 58])
    # float64 ratio of two sigmoids: a few ulps; default rel 1e-6.
    assert r.score == pytest.approx(sig(-8 / 10) / sig(-1.0))
    assert r.score == score_of(f, [52]).score
    assert (r.tp, r.fn, r.fp, r.tn) == (3, 7, 0, 75)
    assert r.contributions[50] == r.score and np.count_nonzero(r.contributions) == 1


def test_probationary_period():
    f = series(100, [(10, 20), (50, 59)])  # first window straddles the probationary period (15)
    r = score_of(f, [5, 12])  # both detections are in the probationary period: not scored
    # float64 multiple of a profile weight: exact or 1 ulp; default rel 1e-6.
    assert r.score == pytest.approx(-2 * STD.fn) and (r.tp, r.fp) == (0, 0)
    assert r.tp + r.tn + r.fp + r.fn == 85 and r.total_count == 100
    r = score_of(f, [16])  # scored, positioned in the whole window (width 11)
    # float64 sigmoid ratio minus a weight: a few ulps; default rel 1e-6.
    assert r.score == pytest.approx(sig(-5 / 11) / sig(-1.0) - STD.fn)
    g = series(100, [(2, 8), (50, 59)])  # a window wholly in the probationary period is left out
    assert score_of(g, []).score == -STD.fn
    corpus = NabCorpus({g.key: g})
    assert null_score(corpus, STD) == -STD.fn


def test_false_positive_weighting():
    f = series(200, [(50, 59), (100, 104)])
    assert score_of(f, [35]).score == pytest.approx(-STD.fp - 2 * STD.fn)  # before any window
    r = score_of(f, [68])  # 9 rows after a width-10 window: position 1
    # float64 weight * sigmoid - 2 weights: a few ulps; default rel 1e-6.
    assert r.score == pytest.approx(STD.fp * sig(1.0) - 2 * STD.fn)
    assert score_of(f, [90]).score == pytest.approx(-STD.fp - 2 * STD.fn)  # > 3 widths: full cost
    r = score_of(f, [106])  # after the second window, width 5: position 2/4
    # same formula at another point: a few float64 ulps; default rel 1e-6.
    assert r.score == pytest.approx(STD.fp * sig(0.5) - 2 * STD.fn)
    w = sweep_scores(f, PROFILES["reward_low_FP_rate"])
    # float64 0.22 * sigmoid: 2 roundings; default rel 1e-6.
    assert w[35] == -0.22 and w[68] == pytest.approx(0.22 * sig(1.0))


def test_threshold_is_inclusive_and_counts():
    f = series(100, [(50, 59)])
    s = fire_at(100, [30, 55], 0.7)
    hit = score_file(f.key, f, s, STD, 0.7)
    miss = score_file(f.key, f, s, STD, np.nextafter(0.7, 1))
    assert (hit.tp, hit.fp) == (1, 1) and (miss.tp, miss.fp) == (0, 0)
    # float64 sum of <= 300 contributions of size <= 1: ~300 eps ~ 1e-13; default rel 1e-6 (abs 1e-12).
    assert miss.score == -STD.fn and hit.contributions.sum() == pytest.approx(hit.score)


def nab_sweep_oracle(files, profile):
    """NAB's calcSweepScore + calcScoreByThreshold, transcribed row by row (the test's oracle)."""
    points = []
    for f, s in files:
        start = probationary_length(len(f))
        limits = list(f.windows)
        cur = prev = None
        for i in range(len(f)):
            if limits and i == limits[0][0]:
                cur = limits.pop(0)
            if cur is not None:
                width = cur[1] - cur[0] + 1
                w = sig(-(cur[1] - i + 1) / width) * profile.tp / sig(-1.0)
            else:
                w = profile.fp * (-1.0 if prev is None else sig(abs(prev[1] - i) / (prev[1] - prev[0])))
            if i >= start:
                points.append((s[i], w, None if cur is None else (f.key, cur[0])))
            if cur is not None and i == cur[1]:
                prev, cur = cur, None
    points.sort(key=lambda p: p[0], reverse=True)
    parts = {"fp": 0}
    for p in points:
        if p[2] is not None:
            parts[p[2]] = -profile.fn
    out, threshold = [], 1.1
    for value, w, name in points:
        if value != threshold:
            out.append((threshold, sum(parts.values())))
            threshold = value
        if name is None:
            parts["fp"] += w
        else:
            parts[name] = max(parts[name], w)
    out.append((threshold, sum(parts.values())))
    return out


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_sweep_equals_nab_loop_and_score_corpus(profile):
    rng = np.random.default_rng(3)
    files = {"g/a.csv": series(300, [(80, 99), (200, 229)], "g/a.csv"),
             "g/b.csv": series(120, [(40, 41)], "g/b.csv"),
             "h/c.csv": series(90, [], "h/c.csv")}
    corpus = NabCorpus(files)
    det = {k: np.round(rng.random(len(f)), 1) for k, f in files.items()}  # many ties
    sw = sweep(det, corpus, profile)
    want = nab_sweep_oracle([(f, det[k]) for k, f in files.items()], profile)
    assert np.array_equal(sw.thresholds, [t for t, _ in want])
    # float64 sums of <= 500 per-row contributions (|each| <= 1) in sweep order vs the loop's order:
    # ~500 eps ~ 1e-13 absolute; atol 1e-12 leaves ~10x and catches any single misplaced row (>= 1e-3).
    np.testing.assert_allclose(sw.scores, [s for _, s in want], rtol=0, atol=1e-12)
    for j, t in enumerate(sw.thresholds):
        cs = score_corpus(det, corpus, profile, t)
        # same sums in a third order: ~1e-13 absolute; abs 1e-12.
        assert cs.total.score == pytest.approx(sw.scores[j], abs=1e-12)
        assert (cs.total.tp, cs.total.fp, cs.total.fn, cs.total.tn) == (
            sw.tp[j], sw.fp[j], sw.fn[j], sw.tn[j])
    t, best = optimize_threshold(det, corpus, profile)
    j = sw.thresholds.tolist().index(t)
    assert best == sw.scores.max() and (sw.scores[:j] < best).all()  # ties: the highest threshold


def test_null_random_perfect_on_synthetic_corpus():
    corpus = NabCorpus({"g/a.csv": series(300, [(80, 99), (200, 229)], "g/a.csv"),
                        "g/b.csv": series(500, [(300, 340)], "g/b.csv")})
    for p in PROFILES.values():
        null = score_corpus(null_detector(corpus), corpus, p, 0.5).total.score
        assert null == null_score(corpus, p) == -3 * p.fn
        assert normalized_score(null, corpus, p) == 0.0
        perfect = score_corpus(perfect_detector(corpus), corpus, p, 0.5).total.score
        # normalisation with score == perfect: exact or 1 ulp; default rel 1e-6.
        assert normalized_score(perfect, corpus, p) == pytest.approx(100.0)
        assert optimize_threshold(null_detector(corpus), corpus, p) == (1.1, -3 * p.fn)
    table = evaluate(perfect_detector(corpus), corpus)
    # same normalisation per profile: a few float64 ulps; default rel 1e-6.
    assert all(row["normalized"] == pytest.approx(100.0) and row["threshold"] == 1.0 for row in table.values())
    assert evaluate(null_detector(corpus), corpus, thresholds={p: 0.5 for p in PROFILES})["standard"] == {
        "threshold": 0.5, "score": -3.0, "normalized": 0.0}
    a, b = random_detector(corpus, seed=5), random_detector(corpus, seed=5)
    assert all(np.array_equal(a[k], b[k]) and (0 <= a[k]).all() and (a[k] < 1).all() for k in a)


# -- reading a NAB folder -----------------------------------------------------------------------
def make_nab(root: Path, files: dict[str, str], windows: dict) -> Path:
    for key, text in files.items():
        (root / "data" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "data" / key).write_text(text)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


CSV = "timestamp,value\n" + "".join(f"2020-01-01 00:{m:02d}:00,{m}\n" for m in range(10))


def test_load_corpus(tmp_path):
    root = make_nab(tmp_path, {"g/a.csv": CSV, "h/b.csv": CSV},
                    {"g/a.csv": [["2020-01-01 00:03:00.000000", "2020-01-01 00:05:00.000000"]],
                     "h/b.csv": [], "absent/x.csv": [["2020-01-01 00:00:00", "2020-01-01 00:01:00"]]})
    corpus = load_corpus(root)
    assert list(corpus.files) == ["g/a.csv", "h/b.csv"] and corpus.n_windows == 1
    assert corpus["g/a.csv"].windows == [(3, 5)] and corpus["g/a.csv"].values[9] == 9.0
    assert list(load_corpus(root, groups="h").files) == ["h/b.csv"]
    with pytest.raises(DataError, match="no group nope"):
        load_corpus(root, groups=["nope"])


@pytest.mark.parametrize("files, windows, message", [
    ({"g/a.csv": CSV}, {"g/a.csv": [], "g/zz.csv": []}, r"names g/zz\.csv, which is not in"),
    ({"g/a.csv": CSV}, {}, r"no entry for g/a\.csv"),
    ({"g/a.csv": CSV}, {"g/a.csv": [], "a.csv": []}, r"key 'a\.csv' is not '<group>/<file>\.csv'"),
    ({"g/a.csv": CSV.replace("00:04:00", "00:4:x0")}, {"g/a.csv": []}, r"a\.csv, line 6: cannot read timestamp"),
    ({"g/a.csv": CSV.replace(",4\n", ",four\n")}, {"g/a.csv": []}, r"a\.csv, line 6: cannot read value"),
    ({"g/a.csv": "time,v\n"}, {"g/a.csv": []}, r"line 1: expected the header"),
    ({"g/a.csv": CSV}, {"g/a.csv": [["2020-01-01 00:03:30", "2020-01-01 00:05:00"]]}, "is not a timestamp"),
    ({"g/a.csv": CSV}, {"g/a.csv": [["2020-01-01 00:05:00", "2020-01-01 00:03:00"]]}, "ends before it starts"),
    ({"g/a.csv": CSV}, {"g/a.csv": [["2020-01-01 00:01:00", "2020-01-01 00:05:00"],
                                    ["2020-01-01 00:05:00", "2020-01-01 00:06:00"]]}, "overlap"),
    ({"g/a.csv": CSV}, {"g/a.csv": [["2020-01-01 00:01:00"]]}, r"is not \[start, end\]"),
])
def test_bad_corpus_is_one_line_data_error(tmp_path, files, windows, message):
    root = make_nab(tmp_path, files, windows)
    with pytest.raises(DataError, match=message) as err:
        load_corpus(root)
    assert "\n" not in str(err.value)


def test_bad_detector_scores():
    f = series(10, [])
    corpus = NabCorpus({f.key: f})
    with pytest.raises(DataError, match="gave 9 scores for 10 rows"):
        score_corpus({f.key: np.zeros(9)}, corpus, STD, 0.5)
    with pytest.raises(DataError, match="row 3 is not finite"):
        sweep({f.key: fire_at(10, [3], np.nan)}, corpus, STD)
    with pytest.raises(DataError, match="no detector scores for g/a.csv"):
        optimize_threshold({}, corpus, STD)


# -- NAB's published numbers --------------------------------------------------------------------
def _nab_dir() -> Path | None:
    found = [Path(os.environ["RNNLAB_DATA"]) / "nab"] if os.environ.get("RNNLAB_DATA") else []
    parents = Path(__file__).resolve().parents  # tests/tasks/anomaly -> the repository -> ..
    if len(parents) > 4:
        found.append(parents[4] / "shared" / "data" / "nab")
    for d in found:
        if (d / "results" / "numenta" / "numenta_standard_scores.csv").is_file():
            return d
    return None


NAB = _nab_dir()
needs_nab = pytest.mark.skipif(NAB is None, reason="NAB reference data not found (../shared/data/nab "
                               "or $RNNLAB_DATA/nab with results/numenta): published-number checks skipped")


@pytest.fixture(scope="module")
def htm():
    corpus = load_corpus(NAB, groups=["realKnownCause"])
    thresholds = json.loads((NAB / "config" / "thresholds.json").read_text())["numenta"]
    return corpus, load_results(NAB / "results", "numenta", corpus), thresholds


@needs_nab
@pytest.mark.parametrize("name", list(PROFILES))
def test_reproduces_nab_per_file_rows_and_s_t(htm, name):
    corpus, det, thresholds = htm
    profile = load_profiles(NAB / "config" / "profiles.json")[name]
    assert profile == PROFILES[name]
    result = score_corpus(det, corpus, profile, thresholds[name]["threshold"])
    with open(NAB / "results" / "numenta" / f"numenta_{name}_scores.csv", newline="") as fh:
        published = {r["File"]: r for r in csv.DictReader(fh)}
    assert sorted(published) == sorted(corpus.files)
    for row in result.rows:
        want = published[row.file]
        # NAB's published scores are floats written by Python (repr, 17 digits) but computed by another code in
        # another order over up to ~2e4 rows: ~2e4*eps*|score| ~ 1e-10; abs 1e-9 leaves 10x.
        assert row.score == pytest.approx(float(want["Score"]), abs=1e-9), row.file
        assert (row.tp, row.tn, row.fp, row.fn, row.total_count) == tuple(
            int(want[c]) for c in ("TP", "TN", "FP", "FN", "Total_Count")), row.file
        s_t = load_results(NAB / "results", "numenta",
                           NabCorpus({row.file: corpus[row.file]}), column=f"S(t)_{name}")[row.file]
        # per-row S(t) from NAB's CSV vs ours: a few float64 operations each, printed with full precision;
        # atol 1e-9 covers the text round trip and order, far below any wrong weight (>= 1e-3).
        np.testing.assert_allclose(row.contributions, s_t, rtol=0, atol=1e-9, err_msg=row.file)


# HTM ("numenta") on these 7 files: normalised score at NAB's published threshold and at the
# threshold the sweep finds on these 7 files (NAB optimised its thresholds on all 58 files).
HTM_FIGURES = {"standard": (55.4683, 0.602095149663, 57.7841),
               "reward_low_FP_rate": (49.2711, 0.602095149663, 50.4289),
               "reward_low_FN_rate": (61.5403, 0.484751543379, 65.8734)}


@needs_nab
@pytest.mark.parametrize("name", list(PROFILES))
def test_htm_normalised_scores_and_sweep(htm, name):
    corpus, det, thresholds = htm
    profile = PROFILES[name]
    at_published, best_t, at_best = HTM_FIGURES[name]
    total = score_corpus(det, corpus, profile, thresholds[name]["threshold"]).total
    # the published figures are written to 4 decimals (55.4683), so they are off by <= 5e-5; abs 1e-4.
    assert normalized_score(total.score, corpus, profile) == pytest.approx(at_published, abs=1e-4)
    sw = sweep(det, corpus, profile)
    # float64 corpus sums (~2e4 rows) in sweep order vs per-file order: ~1e-11; abs 1e-9 leaves 100x.
    assert sw.scores[sw.at(thresholds[name]["threshold"])] == pytest.approx(total.score, abs=1e-9)
    t, best = optimize_threshold(det, corpus, profile)
    # the threshold is one of the detector's own values (no arithmetic), written with 12 decimals: abs 1e-12.
    assert t == pytest.approx(best_t, abs=1e-12) and best >= total.score
    # a 4-decimal published figure: off by <= 5e-5; abs 1e-4.
    assert normalized_score(best, corpus, profile) == pytest.approx(at_best, abs=1e-4)
    # float64 corpus sums in two orders (~2e4 rows): ~1e-11; abs 1e-9.
    assert best == pytest.approx(score_corpus(det, corpus, profile, t).total.score, abs=1e-9)


@needs_nab
def test_null_and_perfect_detectors_on_nab(htm):
    corpus = htm[0]
    assert corpus.n_windows == 19
    for p in PROFILES.values():
        assert normalized_score(score_corpus(null_detector(corpus), corpus, p, 0.5).total.score, corpus, p) == 0
        perfect = score_corpus(perfect_detector(corpus), corpus, p, 0.5).total
        # normalisation with score == perfect: exact or 1 ulp; default rel 1e-6.
        assert normalized_score(perfect.score, corpus, p) == pytest.approx(100.0)
        assert perfect.fp == 0 and perfect.tp == 19


@needs_nab
def test_range_alarms_are_htm_spatial_anomalies(htm):
    """Every row the range rule flags scores exactly 1 in HTM's published outputs (NAB's numenta
    detector sets its spatial anomalies to 1), in every file, probationary rows included."""
    corpus, det, _ = htm
    flagged = 0
    for key, f in corpus.files.items():
        alarms = range_alarms(f.values, 0.05)
        assert np.all(det[key][alarms] == 1.0), key
        flagged += int(alarms.sum())
    assert flagged == 84
