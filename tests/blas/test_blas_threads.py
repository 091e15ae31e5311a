"""rnnlab.blas.threads: --threads sets the BLAS's thread count, and the busy-machine note."""
import numpy as np
import pytest

from rnnlab.blas import threads
from rnnlab.cli import build_parser, main
from rnnlab.errors import ConfigError

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_limit_sets_and_restores():
    before = threads.count()
    limiter = threads.limit(1)
    try:
        assert threads.count() == 1
        np.ones((64, 64)) @ np.ones((64, 64))      # the library still multiplies
    finally:
        limiter.restore_original_limits()
    assert threads.count() == before
    with pytest.raises(ConfigError, match="at least 1"):
        threads.limit(0)


def test_the_note(monkeypatch):
    monkeypatch.delenv("RNNLAB_BUSY_NOTE", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "count", lambda: 2)
    note = threads.busy_note(load=4.3)
    assert note.startswith("note: this machine is busy (load average 4.3 on 2 cores)") and "--threads 1" in note
    assert threads.busy_note(load=1.2) is None                        # cores to spare
    monkeypatch.setattr(threads, "count", lambda: 1)
    assert threads.busy_note(load=9.0) is None                        # one thread waits for no one
    monkeypatch.setattr(threads, "count", lambda: 2)
    monkeypatch.setenv("RNNLAB_BUSY_NOTE", "0")
    assert threads.busy_note(load=9.0) is None


def test_every_computing_command_takes_threads():
    parser = build_parser()
    for argv in (["train"], ["sample", "RUN"], ["eval", "RUN"], ["tag", "train", "x"], ["forecast", "train", "x"],
                 ["detect", "run", "x.csv"], ["blas"]):
        assert parser.parse_args(argv + ["--threads", "1"]).threads == 1, argv
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--threads", "0"])


def test_cli_applies_it(monkeypatch, capsys):
    seen = []
    real = threads.limit

    def spy(n):
        seen.append(n)
        return real(n)
    monkeypatch.setattr(threads, "limit", spy)
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", "off")
    try:
        assert main(["blas", "--threads", "1"]) == 0
        assert seen == [1] and threads.count() == 1
    finally:
        threadpoolctl.threadpool_limits(None)


def test_the_loop_prints_it(monkeypatch, tmp_path, capsys):
    """A busy machine: the training loop says so once, at the start, on its progress stream (stderr)."""
    import rnnlab.train.trainer as trainer
    from rnnlab import CharLM

    monkeypatch.setattr(trainer, "busy_note", lambda: "note: this machine is busy (a test)")
    CharLM(cell="gru", hidden_size=8, num_layers=1, embedding_size=4, batch_size=2, seq_len=8, max_steps=4,
           eval_every=2, log_every=2).fit(text="abc bca cab\n" * 200, out=tmp_path / "run")
    assert capsys.readouterr().err.count("note: this machine is busy (a test)") == 1
    monkeypatch.setattr(trainer, "busy_note", lambda: None)
    CharLM(cell="gru", hidden_size=8, num_layers=1, embedding_size=4, batch_size=2, seq_len=8, max_steps=4,
           eval_every=2, log_every=2).fit(text="abc bca cab\n" * 200, out=tmp_path / "run2")
    assert "busy" not in capsys.readouterr().err


def test_count_sees_limits_made_after_the_libraries_were_found():
    """count() finds the libraries once and reads their current counts: a threadpoolctl context opened
    afterwards is seen, and so is its end."""
    threads.forget_libraries()
    before = threads.count()
    with threadpoolctl.threadpool_limits(1):
        assert threads.count() == 1
    assert threads.count() == before


def test_openblas_kernel_is_named_where_threadpoolctl_sees_it(monkeypatch):
    from threadpoolctl import threadpool_info

    from rnnlab import blas

    expected = next((i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"), None)
    assert threads.openblas_kernel() == expected
    if expected:   # NumPy's wheels bundle OpenBLAS: the log line names its kernel and a forcing variable
        monkeypatch.setenv("OPENBLAS_CORETYPE", "Sandybridge")
        monkeypatch.setattr(blas, "backend", lambda: "numpy")
        assert f"kernel {expected} (OPENBLAS_CORETYPE=Sandybridge)" in blas.describe()
