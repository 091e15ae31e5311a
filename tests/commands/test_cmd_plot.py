"""``rnnlab plot``: writes a PNG; guard events and diagnostics get their place."""
import json
import sys

import pytest

pytest.importorskip("matplotlib")

from rnnlab.cli import main  # noqa: E402
from rnnlab.errors import ConfigError  # noqa: E402
from rnnlab.plotting import extra_panels, family, flatten, plot_metrics, require_matplotlib  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_a_png_next_to_the_metrics(tiny_run, capsys):
    assert main(["plot", str(tiny_run)]) == 0
    png = tiny_run / "metrics.png"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    assert str(png) in capsys.readouterr().out


def test_plot_with_guard_events_and_diagnostics(tmp_path, capsys):
    rows = []
    for step in range(1, 41):
        rows.append({"step": step, "split": "train", "loss": 3 - step / 20, "bpc": 4 - step / 15,
                     "grad_norm": 1 / step, "lr": 0.01 if step < 20 else 0.005,
                     "hidden_norm": [1.0 + step / 40, 2.0 + step / 30], "grad_norm_l0": 0.1, "grad_norm_l1": 0.2})
        if step % 10 == 0:
            rows.append({"step": step, "split": "val", "loss": 2.5, "bpc": 3.5 - step / 40})
    rows.append({"step": 17, "split": "guard", "event": "backoff", "reason": "non-finite loss"})
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"cut off mid-wri', encoding="utf-8")
    out = tmp_path / "plots" / "curves.png"
    assert main(["plot", str(metrics), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    panels = extra_panels(rows)
    assert list(panels) == ["grad_norm", "lr", "hidden_norm"]
    assert set(panels["grad_norm"]) == {"grad_norm", "grad_norm_l0", "grad_norm_l1"}
    assert set(panels["hidden_norm"]) == {"hidden_norm[0]", "hidden_norm[1]"}


def test_key_families():
    assert flatten({"a": {"b": [1, 2]}, "c": True, "d": "x", "e": 3}) == {"a/b[0]": 1.0, "a/b[1]": 2.0, "e": 3.0}
    assert family("hidden_norm/l1") == family("hidden_norm_l0") == family("hidden_norm[3]") == "hidden_norm"
    assert family("grad_norm") == "grad_norm"


def test_errors_without_metrics_or_matplotlib(tmp_path, capsys, monkeypatch):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    from rnnlab.errors import DataError

    with pytest.raises(DataError, match="no training or validation"):
        plot_metrics([{"step": 1, "split": "guard"}], tmp_path / "x.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match="matplotlib is not installed"):
        require_matplotlib()
