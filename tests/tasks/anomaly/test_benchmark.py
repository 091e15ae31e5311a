"""The leave-one-file-out NAB score: each file at the threshold optimised on the other files; the baselines."""
import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.anomaly.benchmark import RANGE_ONLY, format_table, leave_one_out, nab_table, reference_scores
from rnnlab.tasks.anomaly.likelihood import range_scores
from rnnlab.tasks.anomaly.nab import PROFILES, NabCorpus, NabFile, evaluate, perfect_detector

STD = PROFILES["standard"]


def _corpus() -> NabCorpus:
    stamps = np.datetime64("2020-01-01T00:00", "us") + np.arange(100) * np.timedelta64(5, "m")
    return NabCorpus({k: NabFile(k, stamps, np.zeros(100), [(50, 59)]) for k in ("g/a.csv", "g/b.csv", "g/c.csv")})


def _fire(pairs) -> np.ndarray:
    """The scores of a 100-row file: 0 but for the (row, value) pairs."""
    s = np.zeros(100)
    for row, value in pairs:
        s[row] = value
    return s


def test_leave_one_out_by_hand():
    corpus = _corpus()
    # a: a detection at its window's start (0.9); b: one at 0.5 and a false positive at 0.7 before the
    # window; c: one at 0.3 and two false positives at 0.6.
    scores = {"g/a.csv": _fire([(50, 0.9)]), "g/b.csv": _fire([(50, 0.5), (30, 0.7)]),
              "g/c.csv": _fire([(50, 0.3), (20, 0.6), (25, 0.6)])}
    r = leave_one_out(scores, corpus, STD)
    # without a, the best threshold is 0.3 (b, c: 2 - 3 x 0.11), so is it without b (a, c: 2 - 2 x 0.11);
    # without c it is 0.5 (a, b: 2 - 0.11), at which c misses its window and keeps its two FPs.
    assert r["thresholds"] == {"g/a.csv": 0.3, "g/b.csv": 0.3, "g/c.csv": 0.5}
    # float64 sums of a handful of decimal weights (0.11, 0.22): ~1e-16 each; approx default rel 1e-6.
    assert r["scores"] == pytest.approx({"g/a.csv": 1.0, "g/b.csv": 1 - 0.11, "g/c.csv": -1 - 0.22})
    # float64 mean of 3 scores: a few ulps; default rel 1e-6.
    assert r["score"] == pytest.approx(0.67)
    assert r["normalized"] == pytest.approx(100 * (0.67 + 3) / 6)  # S_null = -3, S_perfect = 3
    in_sample = evaluate(scores, corpus, {"standard": STD})["standard"]
    # float64 normalisation of a sum of 3 scores: a few ulps; default rel 1e-6.
    assert in_sample["threshold"] == 0.3 and in_sample["normalized"] == pytest.approx(100 * (3 - 0.33 + 3) / 6)


def test_leave_one_out_in_the_table_and_its_limits():
    corpus = _corpus()
    perfect = perfect_detector(corpus)
    # 100 * (s - null) / (perfect - null) with s == perfect: exact or 1 ulp; default rel 1e-6.
    assert leave_one_out(perfect, corpus, STD)["normalized"] == pytest.approx(100.0)
    rows = nab_table(corpus, {"perfect": [perfect]})
    # same normalisation: a few float64 ulps; default rel 1e-6.
    assert rows[0].held_out["standard"] == [pytest.approx(100.0)]
    table = format_table(rows).splitlines()
    assert "| perfect | 100.0 | 100.0 | 100.0 | 100.0 | 1 | - |" in table
    assert len({line.count("|") for line in table}) == 1  # every line has the same columns
    one = NabCorpus({"g/a.csv": corpus["g/a.csv"]})
    with pytest.raises(DataError, match="at least two files"):
        leave_one_out(perfect, one, STD)
    assert nab_table(one, {"perfect": [perfect]})[0].held_out == {}


def test_range_alarms_alone_baseline():
    stamps = np.datetime64("2020-01-01T00:00", "us") + np.arange(400) * np.timedelta64(5, "m")
    values = np.sin(np.arange(400) / 5.0)
    values[[200, 205, 300]] = [3.0, 4.0, -3.0]  # 205 is a second alarm within 50 rows: not an onset
    values[30] = 2.0  # in the probationary period (60 rows): never scored
    corpus = NabCorpus({"g/a.csv": NabFile("g/a.csv", stamps, values, [(198, 210)])})
    refs = reference_scores(corpus, (0,), warmup=100, warmup_alarms=False)
    s = refs[RANGE_ONLY][0]["g/a.csv"]
    assert np.flatnonzero(s).tolist() == [200, 300] and s[200] == s[300] == 1.0
    np.testing.assert_array_equal(s, range_scores(values, 60, 0.05, 100, 50))
    assert np.flatnonzero(reference_scores(corpus, (0,), warmup=150, warmup_alarms=False)[RANGE_ONLY][0]
                          ["g/a.csv"]).tolist() == [300]
    in_warmup = reference_scores(corpus, (0,), warmup=150, warmup_alarms=True)[RANGE_ONLY][0]["g/a.csv"]
    assert np.flatnonzero(in_warmup).tolist() == [200, 300]  # range alarms count in the warm-up rows too
    np.testing.assert_array_equal(in_warmup, range_scores(values, 60, 0.05, 150, 50, warmup_alarms=True))
    assert RANGE_ONLY not in reference_scores(corpus, (0,), range_tolerance=0.0)
    assert list(reference_scores(corpus, (0, 1))) == ["null", "random", RANGE_ONLY]  # no results/numenta here
