"""``rnnlab sweep``: a tiny char-LM sweep completes, prunes, resumes; interrupted trials are never results."""
import json
import signal

import pytest

from rnnlab.cli import main
from rnnlab.train.hooks import on_evaluation

optuna = pytest.importorskip("optuna")

SPACE = """
task = "train"
n_trials = {n}
seed = {seed}
[fixed]
text = "{corpus}"
hidden_size = 12
embedding_size = 6
batch_size = 4
seq_len = 12
max_steps = 12
eval_every = 3
log_every = 3
[space]
lr = {lr}
dropout = {{ type = "float", low = 0.0, high = 0.3 }}
[pruner]
kind = "{pruner}"
startup_trials = 1
"""


@pytest.fixture()
def space(tmp_path, make_text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(1500))

    def write(n):
        path = tmp_path / "space.toml"
        path.write_text(SPACE.format(n=n, corpus=corpus, seed=3, lr="[0.03, 1e-7]", pruner="median"))
        return path
    return write


def _study(out, name="space"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'sweep.db'}")


def test_a_tiny_sweep_completes_prunes_and_resumes(tmp_path, space, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(space(5)), "--out", str(out), "--plot"]) == 0
    text = capsys.readouterr().out
    study = _study(out)
    states = [t.state.name for t in study.trials]
    assert len(states) == 5 and set(states) <= {"COMPLETE", "PRUNED"} and "PRUNED" in states, states
    for t in study.trials:
        steps = [json.loads(line)["step"] for line in (out / f"trial-{t.number:04d}" / "metrics.jsonl")
                 .read_text().splitlines() if json.loads(line).get("split") == "val"]
        if t.state.name == "PRUNED":
            # stopped where the pruner said so: its last report is worse than the median of the others there
            step = t.user_attrs["pruned_at"]
            assert steps[-1] == step < 12 and t.params["lr"] == 1e-7
            others = sorted(o.intermediate_values[step] for o in study.trials
                            if o.number < t.number and o.state.name == "COMPLETE")
            assert t.intermediate_values[step] > others[(len(others) - 1) // 2]
        else:
            assert steps == [3, 6, 9, 12] and t.value == min(t.intermediate_values.values())
    best = study.best_trial
    assert f"best validation loss {best.value:.6g} (trial {best.number})" in text
    assert f"--lr {best.params['lr']!r}" in text and "--max-steps 12" in text
    assert (out / "sweep.png").stat().st_size > 0
    record = json.loads((out / "sweep.json").read_text())
    assert record["counts"]["PRUNED"] == states.count("PRUNED") and record["best"]["number"] == best.number

    # rerunning continues the study up to the new n_trials; nothing is redone
    assert main(["sweep", str(space(7)), "--out", str(out)]) == 0
    assert "5 finished trials so far" in capsys.readouterr().err
    assert [t.number for t in _study(out).trials] == list(range(7))
    assert main(["sweep", str(space(7)), "--out", str(out)]) == 0
    assert "already has 7 finished trials" in capsys.readouterr().err


def test_an_interrupted_trial_is_marked_fail_never_complete(tmp_path, space, capsys):
    out = tmp_path / "out"
    evaluations = []

    def ctrl_c_in_the_second_trial(ev):
        evaluations.append(ev.run_dir)
        if ev.run_dir.endswith("trial-0001"):
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: the loop stops at the step's end

    with on_evaluation(ctrl_c_in_the_second_trial):
        code = main(["sweep", str(space(4)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err
    states = [t.state.name for t in _study(out).trials]
    assert states == ["COMPLETE", "FAIL"]
    assert _study(out).trials[1].value is None

    # an interrupt outside the loop (say, while reading the data) fails the trial too
    from rnnlab.commands import sweep as cmd

    real = cmd.TaskCommand.run

    def interrupted(self, params, folder):
        raise KeyboardInterrupt

    cmd.TaskCommand.run = interrupted
    try:
        assert main(["sweep", str(space(4)), "--out", str(out)]) == 130
    finally:
        cmd.TaskCommand.run = real
    assert [t.state.name for t in _study(out).trials] == ["COMPLETE", "FAIL", "FAIL"]
    # and the study goes on afterwards, the failed trials not counted as results
    capsys.readouterr()
    assert main(["sweep", str(space(4)), "--out", str(out)]) == 0
    states = [t.state.name for t in _study(out).trials]
    assert states[:3] == ["COMPLETE", "FAIL", "FAIL"] and len(states) == 6
    assert json.loads((out / "sweep.json").read_text())["counts"]["FAIL"] == 2


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.replace("hidden_size = 12", "hiden_size = 12"), "fixed.hiden_size: not a flag of rnnlab train "
                                                                   "(did you mean hidden_size?)"),
    (lambda t: t.replace("log_every = 3", "out = 'x'"), "fixed.out: set by the sweep itself"),
    (lambda t: t.replace("lr = [0.03, 1e-7]", "lr = ['fast']"), "space.lr:"),
    (lambda t: t.replace('task = "train"', 'task = "bake"'), "task:"),
])
def test_bad_files_are_one_line_naming_the_key(tmp_path, space, capsys, edit, words):
    path = space(2)
    path.write_text(edit(path.read_text()))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and words in err, err
    assert not (tmp_path / "out").exists()


def test_a_flag_may_be_named_as_typed_and_the_command_line_uses_the_flags(tmp_path):
    from rnnlab.commands.sweep import TaskCommand

    cmd = TaskCommand("tag", {"train": "a.tsv", "dev_file": "b.tsv", "chars": False, "max_steps": 5}, tmp_path)
    for key in ("train", "train_file", "dev", "chars", "hidden_size"):
        cmd.check_key(key.replace("-", "_"), "fixed")
    argv = cmd.argv({"lr": 0.5, "hidden_size": 32})
    assert argv[:2] == ["tag", "train"]
    assert argv[argv.index("--train") + 1] == "a.tsv" and argv[argv.index("--dev") + 1] == "b.tsv"
    assert {"--no-char", "--no-chars"} & set(argv) and argv[argv.index("--lr") + 1] == "0.5" and "--hidden-size" in argv
    args = cmd.parse({"lr": 0.5, "hidden_size": 32}, tmp_path / "t")
    assert args.train_file == "a.tsv" and args.lr == 0.5 and args.hidden_size == 32 and args.out == str(tmp_path / "t")
    assert args.chars is False


def test_a_detect_sweep_scores_each_trial_by_its_nab_score(tmp_path, capsys):
    import numpy as np

    root = tmp_path / "nab"
    t = np.datetime64("2021-03-01T00:00") + np.arange(400) * np.timedelta64(5, "m")
    stamps = [str(s).replace("T", " ") + ":00" for s in t]
    labels = {}
    for k, (key, spike) in enumerate({"g/a.csv": 300, "g/b.csv": 350}.items()):
        v = np.sin(np.arange(400) / 5.0) + 0.1 * np.random.default_rng(k).standard_normal(400)
        v[spike:spike + 5] += 5
        (root / "data" / "g").mkdir(parents=True, exist_ok=True)
        (root / "data" / key).write_text("timestamp,value\n" + "".join(f"{a},{x:.5f}\n" for a, x in zip(stamps, v)))
        labels[key] = [[stamps[spike - 10], stamps[spike + 10]]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    path = tmp_path / "nab.toml"
    path.write_text(f'task = "detect"\nn_trials = 2\n[fixed]\nroot = "{root}"\ndetector = "pred"\nwindow = 8\n'
                    'epochs = 1\nlong = 200\n[space]\nhidden = [4, 6]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert "rnnlab detect nab" in capsys.readouterr().out
    for t in _study(out, "nab").trials:
        assert t.state.name == "COMPLETE"
        scores = json.loads((out / f"trial-{t.number:04d}" / "results.json").read_text())["results"]["pred"]
        # float64 mean of a few scores, same numbers: a few ulps; approx default rel 1e-6.
        assert t.value == pytest.approx(np.mean(scores["normalized"]["standard"]))
