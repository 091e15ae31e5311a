"""``rnnlab experiment``: flags, help, and a quick run through the CLI."""
import json

import pytest

from rnnlab import cli

FLAGS = ["--quick", "--seeds", "--out", "--minutes", "--data-dir", "--cells", "--corpus", "--budget", "--steps",
         "--jobs", "--groups", "--rows"]


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["experiment", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text
    for name in ("adding", "digits", "charlm"):
        assert name in text


@pytest.mark.parametrize("argv", [["experiment", "nosuch"], ["experiment", "adding", "--seeds", "0"],
                                  ["experiment", "adding", "--minutes", "-1"],
                                  ["experiment", "adding", "--budget", "epochs"], ["experiment", "adding", "--jobs", "0"]])
def test_bad_arguments_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_quick_run_prints_the_table_and_writes_results(tmp_path, capsys):
    code = cli.main(["experiment", "adding", "--quick", "--seeds", "1", "--cells", "gru", "--budget", "steps",
                     "--steps", "50", "--jobs", "1", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| condition |" in out and "| gru T=" in out
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["study"] == "adding" and saved["options"]["quick"] is True
    assert [row["cell"] for row in saved["rows"]] == ["gru"]
    assert saved["budgets"] == ["steps"] and saved["rows"][0]["runs"][0]["steps"] in (50, 0) or \
        saved["rows"][0]["runs"][0]["stop"] == "target reached"


def test_unknown_cell_is_a_one_line_error(tmp_path, capsys):
    code = cli.main(["experiment", "adding", "--quick", "--cells", "nosuchcell", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: experiment adding: no condition left")
