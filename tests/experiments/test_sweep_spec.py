"""The sweep's TOML: a valid file parses; every mistake is one line naming the file and the key."""
import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiments.sweep_spec import load_spec

GOOD = """
task = "charlm"
n_trials = 5
[fixed]
text = "corpus.txt"
max-steps = 30
[space]
lr = { type = "float", low = 1e-4, high = 1e-2, log = true }
hidden_size = { type = "int", low = 16, high = 64, step = 16 }
cell = ["lstm", "gru"]
[pruner]
startup_trials = 1
"""


def _write(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_a_valid_file(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.task == "train" and spec.n_trials == 5 and spec.minutes is None
    assert spec.fixed == {"text": "corpus.txt", "max_steps": 30}
    assert spec.space["lr"].log and spec.space["lr"].kind == "float"
    assert spec.space["hidden_size"].step == 16 and spec.space["cell"].choices == ("lstm", "gru")
    assert spec.pruner == "median" and spec.startup_trials == 1


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace('task = "charlm"', 'task = "cooking"'), "task"),
    (lambda t: t.replace('task = "charlm"\n', ""), "task"),
    (lambda t: t.replace("n_trials = 5", "n_trials = 0"), "n_trials"),
    (lambda t: t.replace("n_trials = 5", ""), "n_trials"),
    (lambda t: t.replace("n_trials = 5", "n_trials = 5\nbudget = 3"), "budget"),
    (lambda t: t.replace("log = true", "log = true, lo = 3"), "space.lr.lo"),
    (lambda t: t.replace("low = 1e-4", "low = 1e-1"), "space.lr"),
    (lambda t: t.replace("low = 1e-4", "low = 0.0"), "space.lr.low"),
    (lambda t: t.replace('type = "float"', 'type = "real"'), "space.lr.type"),
    (lambda t: t.replace("step = 16", "step = 2.5"), "space.hidden_size.step"),
    (lambda t: t.replace('["lstm", "gru"]', "[]"), "space.cell.choices"),
    (lambda t: t.replace('cell = ["lstm", "gru"]', "cell = 3"), "space.cell"),
    (lambda t: t.replace("startup_trials = 1", "startup = 1"), "pruner.startup"),
    (lambda t: t.replace("startup_trials = 1", 'kind = "hyperband"'), "pruner.kind"),
    (lambda t: t + '\n[fixed.more]\nx = 1\n', "fixed.more"),
    (lambda t: t.replace('text = "corpus.txt"', 'text = "corpus.txt"\nlr = 0.1'), "space.lr"),
])
def test_each_mistake_is_one_line_naming_its_key(tmp_path, edit, key):
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {key}:"), msg


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_spec(_write(tmp_path, "task = \n"))
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "nope.toml")
