"""``forecast train --train --test --frequency`` and ``forecast eval RUN`` on the test file (issue 24)."""
import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.tasks.forecast.frequency import FREQUENCIES, length_buckets


def _wide(path, rows):
    path.write_text('"V1",' + ",".join(f'"V{i + 2}"' for i in range(max(len(v) for _, v in rows))) + "\n" + "".join(
        f'"{sid}",' + ",".join(f"{x:.4f}" for x in v) + "\n" for sid, v in rows))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("testfile")
    rng = np.random.default_rng(0)
    train, test = [], []
    for k, n in enumerate((150, 120, 90, 40, 20, 9)):           # weekly-like, several far shorter than 52
        v = 100 + np.cumsum(rng.normal(0.5, 2, n + 13))
        train.append((f"W{k}", v[:n]))
        test.append((f"W{k}", v[n:]))
    return root, _wide(root / "train.csv", train), _wide(root / "test.csv", test)


def _train(root, train, test, name="run", *extra):
    run = root / name
    assert main(["forecast", "train", "--train", str(train), "--test", str(test), "--frequency", "weekly",
                 "--out", str(run), "--hidden-size", "6", "--batch-size", "8", "--max-steps", "8",
                 "--max-minutes", "0", "--eval-every", "4", *extra]) == 0
    return run


def test_weekly_train_and_eval_with_m4s_weekly_definition(files, capsys):
    root, train, test = files
    run = _train(root, train, test)
    out = capsys.readouterr().out
    assert "horizon 13" in out and "window 52" in out and "MASE period 1" in out
    assert main(["forecast", "eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "6 series x 13 steps; MASE and Naive2 period 1" in out
    for method in ("rnnlab", "naive2", "snaive", "naive", "theta"):
        assert f"| {method} |" in out
    assert "coverage" in out and "| length >= 52 | 3 |" in out and "| length 1-13 | 1 |" in out
    # --history 30: every series forecast (and the baselines fitted) from its last 30 values at most
    assert main(["forecast", "eval", str(run), "--history", "30"]) == 0
    out = capsys.readouterr().out
    assert "| length 14-26 | 1 |" in out and "| length 27-51 | 4 |" in out and "length >= 52" not in out
    assert main(["forecast", "eval", str(run), "--history", "-1"]) == 2
    assert "--history" in capsys.readouterr().err


def test_train_history_keeps_the_last_values(files, capsys):
    root, train, test = files
    run = _train(root, train, test, "run-h60", "--history", "60")
    assert main(["forecast", "eval", str(run)]) == 0      # eval uses the run's --history by default
    out = capsys.readouterr().out
    assert "| length 27-51 | 1 |" in out and "| length >= 52 | 3 |" in out


def test_eval_baselines_arima_ets_on_request(files, capsys):
    pytest.importorskip("statsforecast", reason="statsforecast not installed (pip install -e '.[baselines]')")
    root, train, test = files
    run = _train(root, train, test, "run-stat")
    capsys.readouterr()
    assert main(["forecast", "eval", str(run), "--baselines", "arima,ets"]) == 0
    out = capsys.readouterr().out
    assert "| auto_arima |" in out and "| auto_ets |" in out and "| theta |" in out
    import argparse
    from rnnlab.commands.forecast import _stat_names
    assert _stat_names("ets,auto_arima,arima") == ["auto_ets", "auto_arima"]
    with pytest.raises(argparse.ArgumentTypeError, match="arima and/or ets"):
        _stat_names("prophet")


def test_an_unknown_frequency_and_a_missing_test_file_are_one_line(files, capsys):
    root, train, _ = files
    assert main(["forecast", "train", str(train), "--test", str(root / "nope.csv"), "--out", str(root / "x"),
                 "--max-steps", "1"]) == 2
    assert "--test" in capsys.readouterr().err


def test_length_buckets_and_m4_periods():
    assert {k: (f.horizon, f.period) for k, f in FREQUENCIES.items()} == {
        "yearly": (6, 1), "quarterly": (8, 4), "monthly": (18, 12), "weekly": (13, 1), "daily": (14, 1),
        "hourly": (48, 24)}
    b = dict(length_buckets(np.array([1, 13, 14, 26, 27, 51, 52, 400]), 52))
    assert {k: list(v) for k, v in b.items()} == {"length 1-13": [0, 1], "length 14-26": [2, 3],
                                                  "length 27-51": [4, 5], "length >= 52": [6, 7]}


def test_eval_scores_other_files_zero_shot(files, tmp_path, capsys):
    root, train, test = files
    run = _train(root, train, test, "run-zs")
    rng = np.random.default_rng(9)
    other = [(f"N{k}", 50 + np.cumsum(rng.normal(0.2, 1, n + 13))) for k, n in enumerate((80, 60, 30))]
    otr = _wide(tmp_path / "o-train.csv", [(i, v[:-13]) for i, v in other])
    ote = _wide(tmp_path / "o-test.csv", [(i, v[-13:]) for i, v in other])
    capsys.readouterr()
    assert main(["forecast", "eval", str(run), "--train", str(otr), "--test", str(ote)]) == 0
    out = capsys.readouterr().out
    assert "o-test.csv: 3 series x 13 steps; MASE and Naive2 period 1" in out and "| theta |" in out
    assert main(["forecast", "eval", str(run), "--train", str(otr)]) == 2
    assert "--train needs --test" in capsys.readouterr().err
