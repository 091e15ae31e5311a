"""Thresholds that carry to new data (--thresholds), per-group scores and leave-one-group-out."""
import json

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.errors import ConfigError, DataError
from rnnlab.tasks.anomaly.benchmark import nab_table
from rnnlab.tasks.anomaly.groups import format_group_table, group_scores, leave_one_group_out, split_groups
from rnnlab.tasks.anomaly.io import read_scores
from rnnlab.tasks.anomaly.nab import PROFILES, NabCorpus, NabFile, evaluate
from rnnlab.tasks.anomaly.thresholds import read_thresholds, thresholds_for, write_thresholds

from .test_benchmark import _fire
from .test_detect_cli import FAST, _nab, _write

STD = PROFILES["standard"]


def _corpus() -> NabCorpus:
    stamps = np.datetime64("2020-01-01T00:00", "us") + np.arange(100) * np.timedelta64(5, "m")
    files = {k: NabFile(k, stamps, np.zeros(100), [(50, 59)]) for k in ("g1/a.csv", "g1/b.csv", "g2/c.csv")}
    files["g3/flat.csv"] = NabFile("g3/flat.csv", stamps, np.zeros(100), [])
    return NabCorpus(files)


def test_group_scores_and_leave_one_group_out_by_hand():
    corpus = _corpus()
    # g1: detections at their windows' starts at 0.9; g2 (c): its window found only at 0.3, with a false
    # positive at 0.6 before it; g3 (no windows): a false positive at 0.5.
    scores = {"g1/a.csv": _fire([(50, 0.9)]), "g1/b.csv": _fire([(50, 0.9)]),
              "g2/c.csv": _fire([(50, 0.3), (20, 0.6)]), "g3/flat.csv": _fire([(30, 0.5)])}
    assert list(split_groups(corpus)) == ["g1", "g2", "g3"]
    r = group_scores(scores, corpus, STD)
    # over all: 0.3 catches 3 windows for 2 FPs (3 - 0.22 = 2.78) against 0.9's 2 (+ c's -1 = 1): 0.3
    assert r["all"]["threshold"] == 0.3 and r["all"]["in_sample"] == pytest.approx(100 * (2.78 + 3) / 6)
    # normalisation with score == perfect: exact or 1 ulp; approx default rel 1e-6.
    assert r["g1"]["in_sample"] == pytest.approx(100.0)
    # float64 normalisation of sums of 2 decimal weights: a few ulps; default rel 1e-6.
    assert r["g2"]["in_sample"] == pytest.approx(100 * (1 - 0.11 + 1) / 2)
    assert r["g3"]["in_sample"] == pytest.approx(-0.11)  # no windows: the FP cost
    # without g1: at 0.3 c scores 1 - 0.11 - 0.11 = 0.78 > -1 (never); g1 at 0.3: 2 -> 100
    assert r["g1"]["logo_threshold"] == 0.3 and r["g1"]["logo"] == pytest.approx(100.0)
    # without g2: the best is 0.9 (2, no FP), at which c misses its window and keeps no FP (0.6 < 0.9): -1
    assert r["g2"]["logo_threshold"] == 0.9 and r["g2"]["logo"] == pytest.approx(0.0)
    # without g3: 0.3 (3 - 0.11 = 2.89 against 0.9's 1); flat at 0.3 fires once
    assert r["g3"]["logo_threshold"] == 0.3 and r["g3"]["logo"] == pytest.approx(-0.11)
    # float64 normalisation of sums of <= 6 scores: a few ulps; default rel 1e-6.
    assert r["all"]["logo"] == pytest.approx(100 * (2 - 1 - 0.11 + 3) / 6)
    # the same sums in another grouping: a few float64 ulps; default rel 1e-6.
    assert leave_one_group_out(scores, corpus, STD) == pytest.approx(r["all"]["logo"])
    table = format_group_table(corpus, {"det": [scores]}).splitlines()
    assert table[0] == "| group | files | windows | det | det LOGO |"
    assert "| g2 | 1 | 1 | 94.5 | 0.0 |" in table and "| all | 4 | 3 | 96.3 | 64.8 |" in table
    with pytest.raises(DataError, match="at least two groups"):
        leave_one_group_out(scores, NabCorpus({k: f for k, f in corpus.files.items() if k.startswith("g1")}), STD)


def test_fixed_thresholds_in_the_table():
    corpus = _corpus()
    scores = {"g1/a.csv": _fire([(50, 0.9)]), "g1/b.csv": _fire([(50, 0.9)]),
              "g2/c.csv": _fire([(50, 0.3), (20, 0.6)]), "g3/flat.csv": _fire([(30, 0.5)])}
    fixed = {p: 0.9 for p in PROFILES}
    row = nab_table(corpus, {"det": [scores]}, fixed={"det": fixed})[0]
    assert row.fixed and row.thresholds["standard"] == [0.9]
    # float64 normalisation of a few summed scores, computed two ways: a few ulps; default rel 1e-6.
    assert row.normalized["standard"] == [pytest.approx(evaluate(scores, corpus, thresholds=fixed)["standard"]
                                                        ["normalized"])] == [pytest.approx(100 * (2 - 1 + 3) / 6)]
    assert row.held_out["standard"] == row.normalized["standard"]


def test_thresholds_file_round_trip_and_one_line_errors(tmp_path):
    path = write_thresholds(tmp_path / "t.json", {"pred": {"standard": 0.5, "reward_low_FP_rate": 0.6,
                                                           "reward_low_FN_rate": 0.4}}, {"files": 3}, {})
    table = read_thresholds(path)
    assert thresholds_for(table, "pred", path) == {"standard": 0.5, "reward_low_FP_rate": 0.6,
                                                   "reward_low_FN_rate": 0.4}
    with pytest.raises(ConfigError, match="not for --detector vae"):
        thresholds_for(table, "vae", path)
    own = tmp_path / "own.json"
    own.write_text('{"standard": 0.7}')
    assert thresholds_for(read_thresholds(own), "vae", own, ["standard"]) == {"standard": 0.7}
    with pytest.raises(ConfigError, match="no reward_low_FP_rate threshold for vae"):
        thresholds_for(read_thresholds(own), "vae", own)
    for text, message in [("{", "not a JSON file"), ("[1]", "expected a JSON object"),
                          ('{"standard": 2}', "a threshold is a number in"), ('{"standard": "x"}', "number in"),
                          ('{"strict": 0.5}', "unknown profile 'strict'"), ('{"detectors": {}}', "must map")]:
        own.write_text(text)
        with pytest.raises(ConfigError, match=message):
            read_thresholds(own)
    with pytest.raises(ConfigError, match="no such file"):
        read_thresholds(tmp_path / "missing.json")


def test_detect_nab_writes_thresholds_that_nab_and_run_read_back(tmp_path, capsys):
    root = _nab(tmp_path / "nab")
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "a"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "Per group, standard profile" in out and "| grp | 2 | 2 |" in out and "| all | 2 | 2 |" in out
    saved = json.loads((tmp_path / "a" / "thresholds.json").read_text())
    results = json.loads((tmp_path / "a" / "results.json").read_text())["results"]
    assert saved["detectors"]["online"]["standard"] == results["online"]["thresholds"]["standard"][0]  # the default
    assert (tmp_path / "a" / "groups.md").is_file()
    # the same corpus at the thresholds chosen on it: the same in-sample scores, marked fixed
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "b"), "--thresholds",
                 str(tmp_path / "a" / "thresholds.json"), *FAST]) == 0
    assert "| online (fixed thresholds) |" in capsys.readouterr().out
    again = json.loads((tmp_path / "b" / "results.json").read_text())["results"]["online"]
    assert again["fixed"] and again["normalized"] == results["online"]["normalized"]
    # detect run takes the same file
    series = _write(tmp_path / "s.csv")
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "r"), "--thresholds",
                 str(tmp_path / "a" / "thresholds.json"), "--profile", "reward_low_FN_rate", *FAST]) == 0
    t = saved["detectors"]["online"]["reward_low_FN_rate"]
    assert f"threshold {t:g} (reward_low_FN_rate, from" in capsys.readouterr().out
    rows = read_scores(tmp_path / "r" / "s.scores.csv")
    np.testing.assert_array_equal([int(r[3]) for r in rows[1:]], [float(r[2]) >= t for r in rows[1:]])
    # errors: one line, before any training
    assert main(["detect", "run", str(series), "--thresholds", str(tmp_path / "nope.json"), "--out",
                 str(tmp_path / "r2"), *FAST]) == 2
    assert "--thresholds" in capsys.readouterr().err and not (tmp_path / "r2").exists()
    assert main(["detect", "nab", str(root), "--detector", "vae", "--thresholds",
                 str(tmp_path / "a" / "thresholds.json"), *FAST]) == 2
    assert "not for --detector vae" in capsys.readouterr().err


def test_thresholds_refused_with_other_settings(tmp_path, capsys):
    """A file's thresholds were chosen on the scores its settings make: other settings are refused in one
    line naming the flags, before any training; a file without settings (a user's own) is taken as is;
    a file from before --slow and --peak existed stands for them off."""
    from rnnlab.tasks.anomaly.thresholds import read_settings

    root = _nab(tmp_path / "nab")
    series = _write(tmp_path / "s.csv")
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "a"), *FAST]) == 0
    capsys.readouterr()
    chosen = tmp_path / "a" / "thresholds.json"
    assert read_settings(chosen)["slow"] == 20
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "r"), "--thresholds", str(chosen),
                 "--slow", "0", *FAST]) == 2
    err = capsys.readouterr().err
    assert "was chosen with --slow 20, this run has --slow 0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    assert main(["detect", "nab", str(root), "--thresholds", str(chosen), "--peak", "0", "--no-warmup-alarms",
                 *FAST]) == 2
    assert ("was chosen with --peak 10 --warmup-alarms, this run has --peak 0 --no-warmup-alarms"
            in capsys.readouterr().err)
    # an older file: no slow, peak, warmup_alarms, online_season recorded -> they were off
    old = json.loads(chosen.read_text())
    for k in ("slow", "peak", "warmup_alarms", "online_season"):
        old["settings"].pop(k)
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "r3"), "--thresholds",
                 str(tmp_path / "old.json"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "was chosen with --slow 0 --peak 0 --no-warmup-alarms --online-season off" in err
    # a user's own file records no settings: taken as it is
    (tmp_path / "own.json").write_text(json.dumps({"standard": 0.5}))
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "r4"), "--thresholds",
                 str(tmp_path / "own.json"), *FAST]) == 0
