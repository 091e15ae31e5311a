"""``rnnlab detect run`` and ``rnnlab detect nab``: outputs, and one clear line for each bad input."""
import json
import os
import signal

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.tasks.anomaly import Detector, nab_table, reference_scores, run_nab
from rnnlab.tasks.anomaly.io import read_scores
from rnnlab.tasks.anomaly.nab import load_corpus

FAST = ["--window", "8", "--hidden", "4", "--epochs", "1", "--long", "200"]


def _stamps(n):
    t = np.datetime64("2021-03-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    return [str(s).replace("T", " ") + ":00" for s in t]


def _write(path, n=400, seed=0, spike=300):
    rng = np.random.default_rng(seed)
    v = np.sin(np.arange(n) / 5.0) + 0.1 * rng.standard_normal(n)
    v[spike:spike + 5] += 5
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value\n" + "".join(f"{t},{x:.5f}\n" for t, x in zip(_stamps(n), v)))
    return path


def _nab(root, htm=True):
    files = {"grp/a.csv": 300, "grp/b.csv": 350}
    labels = {}
    for key, spike in files.items():
        _write(root / "data" / key, spike=spike, seed=len(key) + spike)
        stamps = _stamps(400)
        labels[key] = [[stamps[spike - 10], stamps[spike + 10]]]
        if htm:
            out = root / "results" / "numenta" / "grp" / f"numenta_{key.split('/')[1]}"
            out.parent.mkdir(parents=True, exist_ok=True)
            score = np.zeros(400)
            score[spike - 10] = 0.9  # at the start of the window: a perfect detection
            out.write_text("timestamp,value,anomaly_score\n" + "".join(f"{t},0,{s}\n" for t, s in zip(stamps, score)))
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    return root


def test_detect_run_writes_scores_and_a_plot_with_the_labels(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    root = _nab(tmp_path / "nab")
    series = root / "data" / "grp" / "a.csv"
    assert main(["detect", "run", str(series), "--detector", "encdec", "--out", str(tmp_path / "o"), "--plot",
                 *FAST]) == 0
    out = capsys.readouterr().out
    assert "labels" in out and "1 windows" in out and "standard" in out
    rows = read_scores(tmp_path / "o" / "a.scores.csv")
    assert rows[0] == ["timestamp", "value", "anomaly_score"] and len(rows) == 401
    assert rows[1][0] == "2021-03-01 00:00:00"
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert np.all((scores >= 0) & (scores <= 1))
    assert f"--range-tolerance): {np.count_nonzero(scores == 1.0)} rows scored 1" in out
    assert (tmp_path / "o" / "a.png").stat().st_size > 1000


def test_the_default_detector_is_online_and_help_says_its_cost(capsys):
    from rnnlab.cli import build_parser
    from rnnlab.commands.detect_nab import DEFAULT_DETECTOR, _settings

    assert DEFAULT_DETECTOR == "online"
    assert build_parser().parse_args(["detect", "run", "s.csv"]).detector == "online"
    args = build_parser().parse_args(["detect", "nab", "DIR"])
    assert args.detector is None and _settings(args, None)["detectors"] == ["online"]
    with pytest.raises(SystemExit):
        main(["detect", "run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default online:" in text and "per 10,000 rows on one core" in text


def test_detect_run_without_labels(tmp_path, capsys):
    series = _write(tmp_path / "s.csv")
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "o"), "--seed", "3", *FAST]) == 0
    assert "NAB score" not in capsys.readouterr().out
    assert len(read_scores(tmp_path / "o" / "s.scores.csv")) == 401


@pytest.mark.parametrize("content,message", [
    ("", "the file is empty"),
    ("timestamp,value\n2021-01-01 00:00:00,abc\n", "line 2: cannot read value 'abc'"),
    ("timestamp,value\n2021-01-01 00:00:00,1\nyesterday,2\n", "line 3: cannot read timestamp 'yesterday'"),
    ("timestamp,value\n2021-01-02 00:00:00,1\n2021-01-01 00:00:00,2\n",
     "line 3: timestamp 2021-01-01T00:00:00 is earlier than the row before it"),
    ("timestamp,value\n" + "".join(f"2021-01-01 00:{m:02d}:00,1\n" for m in range(50)),
     "has 50 rows; the online detector with --window 32 needs at least"),
    ("a,b\n1,2\n", "expected the header 'timestamp,value', found 'a,b'"),
    ("timestamp;value\n2021-01-01 00:00:00;1\n", "found 'timestamp;value'"),
    ("timestamp,value\n2021-01-01 00:00:00,1\n2021-01-01 00:05:00,inf\n", "line 3: the value 'inf' is not a finite number"),
    ("timestamp,value\n2021-01-01 00:00:00,1e999\n", "line 2: the value '1e999' is not a finite number"),
    (b"timestamp,value\n2021-01-01 00:00:00,1\xe9\n", "not UTF-8 text (byte 0xe9 at offset 37); save it as a UTF-8 CSV"),
    (bytes(range(256)), "not UTF-8 text (byte 0x80 at offset 128)"),
])
def test_bad_input_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["detect", "run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_byte_order_mark_and_crlf_are_read(tmp_path, capsys):
    plain = _write(tmp_path / "plain.csv")
    text = plain.read_text()
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    for name in ("plain", "excel"):
        assert main(["detect", "run", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / name), *FAST]) == 0
    assert read_scores(tmp_path / "plain" / "plain.scores.csv") == read_scores(tmp_path / "excel" / "excel.scores.csv")


def test_label_file_naming_unknown_files(tmp_path, capsys):
    series = _write(tmp_path / "s.csv")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"grp/other.csv": []}))
    assert main(["detect", "run", str(series), "--labels", str(labels), *FAST]) == 2
    assert "names no file s.csv (it names: grp/other.csv)" in capsys.readouterr().err
    root = _nab(tmp_path / "nab", htm=False)
    raw = json.loads((root / "labels" / "combined_windows.json").read_text())
    raw["grp/missing.csv"] = []
    (root / "labels" / "combined_windows.json").write_text(json.dumps(raw))
    assert main(["detect", "nab", str(root), *FAST]) == 2
    assert "names grp/missing.csv, which is not in" in capsys.readouterr().err


def test_detect_nab_prints_every_profile_with_baselines_and_htm(tmp_path, capsys):
    root = _nab(tmp_path / "nab")
    assert main(["detect", "nab", str(root), "--groups", "grp", "--detector", "pred,vae", "--seed", "1", "--seeds", "2",
                 "--out", str(tmp_path / "res"), *FAST]) == 0
    out = capsys.readouterr().out
    for name in ("| null |", "| random |", "| range alarms alone (no network) |", "| numenta (HTM) |", "| pred |",
                 "| vae |", "standard",
                 "reward_low_FP_rate", "reward_low_FN_rate"):
        assert name in out
    assert "standard, leave-one-file-out" in out
    assert "| numenta (HTM) | 100.0 | 100.0 | 100.0 | 100.0 | 1 | - |" in out  # held out too: perfect on each file
    results = json.loads((tmp_path / "res" / "results.json").read_text())
    assert len(results["results"]["pred"]["held_out"]["standard"]) == 2
    assert len(results["results"]["vae"]["normalized"]["standard"]) == 2 and results["seeds"] == [1, 2]
    assert (tmp_path / "res" / "scores" / "pred-seed2" / "grp" / "b.csv").is_file()


def test_python_api_runs_a_corpus(tmp_path):
    root = _nab(tmp_path / "nab", htm=False)
    corpus = load_corpus(root)
    runs = run_nab(corpus, "pred", seeds=[0], progress=False, window=8, hidden=4, epochs=1, long=200)
    assert runs[0].rows == 800 and runs[0].seconds_per_10k > 0
    table = nab_table(corpus, {**reference_scores(corpus), "pred": runs})
    assert [r.name for r in table] == ["null", "random", "range alarms alone (no network)", "pred"]
    assert table[0].normalized["standard"] == [0.0]
    values = corpus["grp/a.csv"].values
    np.testing.assert_array_equal(runs[0].scores["grp/a.csv"],
                                  Detector("pred", seed=0, window=8, hidden=4, epochs=1, long=200)
                                  .fit_score(values, corpus["grp/a.csv"].timestamps))


def test_ensemble_flag_is_documented_and_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["detect", "nab", "--help"])
    help_text = capsys.readouterr().out
    assert "--ensemble K" in help_text and "--range-tolerance F" in help_text
    root = _nab(tmp_path / "nab", htm=False)
    assert main(["detect", "nab", str(root), "--detector", "pred+vae", "--ensemble", "2", "--warmup", "10", *FAST]) == 0
    assert "| pred+vae |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["detect", "nab", str(root), "--detector", "pred+pred"])
    assert "unknown detector 'pred+pred'; choose from pred, encdec, vae, online, or several different ones joined by + " \
           "(e.g. pred+vae)" in capsys.readouterr().err
    series = _write(tmp_path / "s.csv")
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "o"), "--ensemble", "2", *FAST]) == 0
    with pytest.raises(SystemExit):
        main(["detect", "run", str(series), "--ensemble", "0"])
    assert "--ensemble: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["detect", "run", str(series), "--range-tolerance", "-1"])
    assert "--range-tolerance: must be a finite number >= 0, got -1.0" in capsys.readouterr().err


@pytest.mark.parametrize("sig,code,at", [(signal.SIGINT, 130, 2), (signal.SIGTERM, 143, 2), (signal.SIGINT, 130, 4)])
def test_a_signal_stops_the_whole_detection(tmp_path, capsys, monkeypatch, sig, code, at):
    """Ctrl-C (or SIGTERM) while a network trains, even in its last step (4 of 4), stops the job with
    130 (143): it does not go on with a half-trained network or to the next one, and writes no scores."""
    from rnnlab.train.trainer import Trainer

    original, calls = Trainer.train_step, []

    def signalled(self, *a, **k):
        calls.append(self.step)
        if len(calls) == at:
            os.kill(os.getpid(), sig)  # a real signal, as from the terminal or a scheduler
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "train_step", signalled)
    series = _write(tmp_path / "s.csv")
    slow = [*FAST, "--detector", "pred", "--epochs", "4"]  # 4 steps for the first network
    assert main(["detect", "run", str(series), "--out", str(tmp_path / "o"), *slow]) == code
    assert capsys.readouterr().err.strip().endswith("interrupted")
    assert calls == [0, 1, 2, 3][:max(at, 2)] and not (tmp_path / "o" / "s.scores.csv").exists()
    root = _nab(tmp_path / "nab", htm=False)
    calls.clear()
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "n"), *slow]) == code
    assert len(calls) == max(at, 2) and not (tmp_path / "n" / "results.json").exists()
    assert "continue with the same command and --resume" in capsys.readouterr().err


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_online_detector(tmp_path, capsys, monkeypatch, sig, code):
    """The online detector learns outside the training loop: a signal still stops the whole job
    at the end of the block in hand, with 130 (143), no scores, and for detect nab the resume hint."""
    from rnnlab.train.online import OnlineLearner

    original, calls = OnlineLearner.update, []

    def signalled(self, *a, **k):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), sig)
        return original(self, *a, **k)

    monkeypatch.setattr(OnlineLearner, "update", signalled)
    series = _write(tmp_path / "s.csv")
    assert main(["detect", "run", str(series), "--detector", "online", "--out", str(tmp_path / "o"), *FAST]) == code
    assert capsys.readouterr().err.strip().endswith("interrupted")
    assert not (tmp_path / "o" / "s.scores.csv").exists() and len(calls) < 10
    calls.clear()
    root = _nab(tmp_path / "nab", htm=False)
    assert main(["detect", "nab", str(root), "--detector", "online", "--out", str(tmp_path / "n"), *FAST]) == code
    assert not (tmp_path / "n" / "results.json").exists() and len(calls) < 10
    assert "continue with the same command and --resume" in capsys.readouterr().err


def test_detect_nab_resumes_an_interrupted_run_with_the_same_results(tmp_path, capsys, monkeypatch):
    from rnnlab.train.trainer import Trainer

    root = _nab(tmp_path / "nab", htm=False)
    argv = ["detect", "nab", str(root), "--detector", "pred,vae", "--seeds", "2", *FAST, "--refit-every", "150"]
    assert main([*argv, "--out", str(tmp_path / "straight")]) == 0
    original, calls = Trainer.train_step, []

    def signalled(self, *a, **k):
        calls.append(1)
        if len(calls) == 40:  # well into the run: some files are done, one is cut short
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "train_step", signalled)
    out = tmp_path / "stopped"
    assert main([*argv, "--out", str(out)]) == 130
    saved = sorted(p.name for p in (out / "partial").rglob("*.npz"))
    assert 0 < len(saved) < 8 and not (out / "results.json").exists()
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 2  # neither --resume nor --force: refused, nothing lost
    assert "holds an interrupted run; continue it with --resume" in capsys.readouterr().err
    assert main([*argv[:-2], "--refit-every", "100", "--out", str(out), "--resume"]) == 2
    assert "the interrupted run had --refit-every 150, these flags give 100" in capsys.readouterr().err
    assert main(["detect", "nab", str(root), "--seeds", "3", "--out", str(out), "--resume"]) == 2
    assert "the interrupted run had --seed/--seeds 0,1, these flags give 0,1,2" in capsys.readouterr().err
    monkeypatch.setattr(Trainer, "train_step", original)
    # the run's own settings stand: no flag need be repeated (issue 22, fault 2), those given must agree
    assert main(["detect", "nab", str(root), "--detector", "pred,vae", "--out", str(out), "--resume"]) == 0
    assert not (out / "partial").exists() and not (out / "settings.json").exists()
    for f in sorted((tmp_path / "straight" / "scores").rglob("*.csv")):
        assert f.read_bytes() == (out / f.relative_to(tmp_path / "straight")).read_bytes(), f
    a, b = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "straight", out))
    for name in ("pred", "vae"):
        assert a["results"][name]["normalized"] == b["results"][name]["normalized"]
        assert a["results"][name]["held_out"] == b["results"][name]["held_out"]
    assert main([*argv, "--out", str(out), "--resume"]) == 2
    assert "holds finished results (results.json); nothing to resume" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert "holds no interrupted run" in capsys.readouterr().err
    for extra in ([], ["--out", str(out), "--force"]):
        assert main([*argv, *extra, "--resume"]) == 2
        assert "--resume needs --out, the folder of the interrupted run, and no --force" in capsys.readouterr().err


def test_detect_nab_names_a_damaged_saved_file(tmp_path, capsys, monkeypatch):
    from rnnlab.train.trainer import Trainer

    root = _nab(tmp_path / "nab", htm=False)
    argv = ["detect", "nab", str(root), "--detector", "pred", "--out", str(tmp_path / "o"), *FAST]

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt

    original = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", interrupt)
    assert main(argv) == 130
    capsys.readouterr()
    monkeypatch.setattr(Trainer, "train_step", original)
    folder = tmp_path / "o" / "partial" / "pred-seed0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grp__a.csv.npz").write_bytes(b"not a zip file")
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "grp__a.csv.npz: cannot read the saved scores" in err and "--force" in err and err.count("\n") == 1
    assert main([*argv, "--force"]) == 0 and (tmp_path / "o" / "results.json").is_file()


def test_threshold_writes_alarms_and_outputs_are_never_replaced_by_accident(tmp_path, capsys):
    series = _write(tmp_path / "s.csv")
    out = tmp_path / "o"
    assert main(["detect", "run", str(series), "--out", str(out), "--threshold", "0.3", *FAST]) == 0
    printed = capsys.readouterr().out
    rows = read_scores(out / "s.scores.csv")
    assert rows[0] == ["timestamp", "value", "anomaly_score", "alarm"]
    scores = np.array([float(r[2]) for r in rows[1:]])
    alarms = np.array([int(r[3]) for r in rows[1:]])
    np.testing.assert_array_equal(alarms, scores >= 0.3)
    assert alarms.sum() > 0 and f"{alarms.sum()} alarm(s) at threshold 0.3: " in printed
    first = rows[1 + int(np.flatnonzero(alarms)[0])]
    assert f"{first[0]} (score {float(first[2]):.3f})" in printed
    before = (out / "s.scores.csv").read_bytes()
    assert main(["detect", "run", str(series), "--out", str(out), *FAST]) == 2  # no --force: nothing replaced
    assert "s.scores.csv already exists; choose another --out, or pass --force" in capsys.readouterr().err
    assert (out / "s.scores.csv").read_bytes() == before
    assert main(["detect", "run", str(series), "--out", str(out), "--force", *FAST]) == 0
    assert read_scores(out / "s.scores.csv")[0] == ["timestamp", "value", "anomaly_score"]
    for bad in ("0", "1.5", "x"):
        with pytest.raises(SystemExit):
            main(["detect", "run", str(series), "--threshold", bad])
        assert "--threshold" in capsys.readouterr().err
    root = _nab(tmp_path / "nab", htm=False)
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "n"), *FAST]) == 0
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "n"), *FAST]) == 2
    assert "results.json already exists" in capsys.readouterr().err
    assert main(["detect", "nab", str(root), "--out", str(tmp_path / "n"), "--force", *FAST]) == 0


def test_run_nab_logs_each_file_without_a_terminal(tmp_path):
    root = _nab(tmp_path / "nab", htm=False)
    lines = []
    runs = run_nab(load_corpus(root), "pred", seeds=[3], log=lines.append, window=8, hidden=4, epochs=1, long=200)
    assert [line.split(" (")[0] for line in lines] == ["  pred seed 3: [1/2] grp/a.csv", "  pred seed 3: [2/2] grp/b.csv"]
    # not rounding: each log line prints its seconds with one decimal ({:.1f}), so each is off by <= 0.05
    # and the two lines' sum by <= 0.1.
    assert runs[0].seconds == pytest.approx(sum(float(line.split(", ")[-1][:-2]) for line in lines), abs=0.1)
    lines.clear()
    run_nab(load_corpus(root), "pred", seeds=[3], progress=False, log=lines.append, window=8, hidden=4, epochs=1,
            long=200)
    assert lines == []


def test_detect_nab_in_two_worker_processes_gives_the_same_bytes(tmp_path, capsys, blas_choice_record):
    root = _nab(tmp_path / "nab", htm=False)
    argv = ["detect", "nab", str(root), "--detector", "pred,online", "--seeds", "2", *FAST, "--online-warm", "10"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert main([*argv, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert "fits on 2 worker processes" in capsys.readouterr().out
    files = sorted((tmp_path / "one" / "scores").rglob("*.csv"))
    assert len(files) == 8
    for f in files:
        assert f.read_bytes() == (tmp_path / "two" / f.relative_to(tmp_path / "one")).read_bytes(), f


def test_detect_run_with_the_online_detector(tmp_path, capsys):
    series = _write(tmp_path / "s.csv")
    argv = ["detect", "run", str(series), "--detector", "online", *FAST, "--online-warm", "10", "--online-every", "3"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "online on " in out and (tmp_path / "o" / "s.scores.csv").is_file()
    with pytest.raises(SystemExit):
        main([*argv[:-2], "--online-every", "0"])


def test_the_online_season_flag(tmp_path, capsys):
    series = _write(tmp_path / "s.csv")  # 400 five-minute rows: 60 probationary, far under 3 days
    argv = ["detect", "run", str(series), "--detector", "online", *FAST, "--online-warm", "10"]
    assert main([*argv, "--online-season", "auto", "--out", str(tmp_path / "a")]) == 0
    assert "season input (--online-season auto): none" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b"), "--online-season"]) == 0  # bare: on
    assert "season input (--online-season on): the value a day (288 rows) before" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "c"), "--online-season", "pick", "--online-pick", "50"]) == 0
    out = capsys.readouterr().out
    assert "season input (--online-season pick): the value a day (288 rows) before; " in out
    assert "% of the scored rows took the measure of the network with it" in out
    with pytest.raises(SystemExit):
        main([*argv, "--online-season", "sometimes"])
    assert "invalid choice" in capsys.readouterr().err


def test_a_run_saved_before_pick_and_warmup_alarms_keeps_them_off():
    import argparse

    from rnnlab.commands.detect_nab import _options

    none = argparse.Namespace()  # no flag given
    assert _options(none)["online_season"] == "pick" and _options(none)["warmup_alarms"] is True
    old = _options(argparse.Namespace(), {"window": 16})  # an interrupted run's settings, from before them
    assert old["online_season"] == "off" and old["warmup_alarms"] is False and old["window"] == 16
    assert _options(argparse.Namespace(warmup_alarms=True), {"window": 16})["warmup_alarms"] is True
