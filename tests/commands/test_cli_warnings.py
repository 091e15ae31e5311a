"""Library warnings reach the terminal as one line in rnnlab's voice (issue 22, fault 8)."""
import warnings

import numpy as np

from rnnlab import cli


def test_runtime_and_user_warnings_are_one_line_without_source_paths(monkeypatch, capsys):
    def run(args):
        with np.errstate(over="warn"):
            np.array([1.7e308]) * 10.0
        warnings.warn("Matplotlib created a temporary cache directory because the default path is not a "
                      "writable directory", UserWarning)
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: type("A", (), {"run": staticmethod(run)})())
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["gradcheck"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("rnnlab: warning: overflow encountered in multiply") and "1.7e308" in err[0]
    assert err[1].startswith("rnnlab: warning: Matplotlib created") and "MPLCONFIGDIR" in err[1]
    assert not any(".py:" in line or "site-packages" in line for line in err)
    assert warnings.showwarning is not cli._show_warning   # restored after main
