"""The study runner: aggregation, table, skipped cells, written files."""
import json
import math

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiments.runner import Column, Condition, Options, Study, fmt_stat, markdown_table, run_study, select


def test_fmt_stat_mean_and_sample_std():
    assert fmt_stat([1.0, 3.0], "{:.2f}") == "2.00 ± 1.41"     # sample std of (1, 3) is sqrt(2)
    assert fmt_stat([5.0], "{:.1f}") == "5.0"
    assert fmt_stat([None, None], "{:.1f}") == "—"
    assert fmt_stat([2.0, None, math.nan], "{:.0f}") == "2 (1/3)"  # missing values are counted, not hidden


def _toy_study(calls):
    def conditions(opts):
        return [Condition("lstm row", "lstm", "g", {"v": 1.0}),
                Condition("ghost row", "no-such-cell", "g", {"v": 2.0})]

    def run_one(cond, seed, opts):
        calls.append((cond.label, seed))
        return {"metric": cond.settings["v"] + seed, "ok": seed == 0, "size": 7,
                "curve": [(0, 1.0), (1, 0.5 + seed)]}

    cols = [Column("size", "size", "{:d}", "const"), Column("ok", "ok", kind="count"),
            Column("metric", "metric", "{:.1f}")]
    return Study("toy", "Toy study", 2, conditions, run_one, cols, ("step", "loss"), lambda o: "toy notes")


def test_run_study_skips_missing_cells_and_writes_everything(tmp_path):
    calls, lines = [], []
    result = run_study(_toy_study(calls), Options(out=str(tmp_path), budget="time", log=lines.append))
    assert calls == [("lstm row", 0), ("lstm row", 1)]
    assert any("cell 'no-such-cell' not available in this build" in line for line in lines)
    table = result["table"].splitlines()
    assert table[0] == "| condition | size | ok | metric |"
    assert table[2] == "| lstm row | 7 | 1/2 | 1.5 ± 0.7 |"
    assert len(table) == 3  # the ghost row is not in the table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["seed"] for r in saved["rows"][0]["runs"]] == [0, 1]
    assert "toy notes" in (tmp_path / "table.md").read_text()
    for name in result["plots"]:
        assert (tmp_path / name).stat().st_size > 1000


def test_cells_filter_and_empty_selection(tmp_path):
    lines = []
    conds = [Condition("a", "lstm", "g", {}), Condition("b", "gru", "g", {})]
    assert [c.label for c in select(conds, ["gru", "rnn"], lines.append)] == ["b"]
    assert any("no rows for cell 'rnn'" in line for line in lines)
    with pytest.raises(ConfigError, match="no condition left"):
        run_study(_toy_study([]), Options(out=str(tmp_path), cells=["no-such-cell"], log=lines.append))


def test_markdown_table_const_and_missing():
    study = _toy_study([])
    rows = [(Condition("r", "lstm", "g", {}), [{"size": None, "ok": False, "metric": None}])]
    assert markdown_table(study, rows).splitlines()[2] == "| r | — | 0/1 | — |"
