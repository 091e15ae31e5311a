"""rnnlab.blas.choice_cache: RNNLAB_BLAS=auto's choices recorded per machine, so fresh runs repeat."""
import json
import multiprocessing

import numpy as np
import pytest

from rnnlab.blas import choice, choice_cache


@pytest.fixture
def record(tmp_path, monkeypatch):
    """auto in effect (no MKL needed: the timing is faked), a fresh process, a record file of its own."""
    file = tmp_path / "cache" / "blas-choices.json"
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", str(file))
    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setattr(choice_cache, "_warned", set())
    lines = []
    choice.set_log(lines.append)
    yield file, lines
    choice.set_log(None)


def _timing(winner, calls):
    def time_both(B, K, N):
        calls.append((B, K, N))
        return {"openblas": 1e-6, "mkl": 2e-6} if winner == "openblas" else {"openblas": 2e-6, "mkl": 1e-6}
    return time_both


def test_a_fresh_process_reuses_the_recorded_choice_instead_of_timing(record, monkeypatch):
    file, lines = record
    calls = []
    monkeypatch.setattr(choice, "_time_both", _timing("mkl", calls))
    assert choice.choose(8, 16, 64) == "mkl" and calls == [(8, 16, 64)]
    entry = json.loads(file.read_text())["machines"][choice_cache.machine()]
    (key, value), = entry.items()
    assert key.startswith("8x16x64@") and value["lib"] == "mkl" and value["mkl_us"] == 1.0
    assert value["openblas_us"] == 2.0

    monkeypatch.setattr(choice, "_cache", {})          # a new process, where timing now favours OpenBLAS
    monkeypatch.setattr(choice, "_time_both", _timing("openblas", calls))
    logged = len(lines)
    assert choice.choose(8, 16, 64) == "mkl" and len(calls) == 1
    assert len(lines) == logged          # read from the record: not logged again (rnnlab blas lists it)
    assert choice.choices()["chosen"] == {key: "mkl"}   # what a run records is the same either way
    assert choice.choose(8, 16, 32) == "openblas" and calls[-1] == (8, 16, 32)   # a new shape is timed


def test_entries_are_per_machine(record, monkeypatch):
    file, _ = record
    calls = []
    monkeypatch.setattr(choice, "_time_both", _timing("mkl", calls))
    choice.choose(4, 8, 32)
    here = choice_cache.machine()
    monkeypatch.setattr(choice_cache, "_machine", "another CPU [avx512f]; NumPy 9; oneMKL 9")
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setattr(choice, "_time_both", _timing("openblas", calls))
    assert choice.choose(4, 8, 32) == "openblas" and len(calls) == 2   # the other machine times for itself
    machines = json.loads(file.read_text())["machines"]
    assert len(machines) == 2 and {m[k]["lib"] for m in machines.values() for k in m} == {"mkl", "openblas"}
    assert choice_cache.clear() == 1 and choice_cache.entries() == {}   # forgets this machine's only
    assert list(json.loads(file.read_text())["machines"]) == [here]


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"[1, 2]", b'{"format": 99, "machines": {}}',
                                     b'{"format": 1, "machines": []}', b"[" * 100_000])
def test_a_damaged_record_is_ignored_with_one_note_and_rewritten(record, monkeypatch, capsys, content):
    file, _ = record
    file.parent.mkdir(parents=True)
    file.write_bytes(content)
    calls = []
    monkeypatch.setattr(choice, "_time_both", _timing("openblas", calls))
    assert choice.choose(2, 3, 12) == "openblas" and calls
    err = capsys.readouterr().err
    assert err.count("ignoring the BLAS choice record") == 1 and "Traceback" not in err
    data = json.loads(file.read_text())
    assert data["format"] == 1 and data["machines"][choice_cache.machine()]["2x3x12@" + str(choice._threads())]


def test_hostile_entries_are_not_taken(record, monkeypatch):
    file, _ = record
    key = f"2x3x12@{choice._threads()}"
    file.parent.mkdir(parents=True)
    for hostile in ({"lib": "cublas"}, "mkl", None, {"lib": ["mkl"]}):
        file.write_text(json.dumps({"format": 1, "machines": {choice_cache.machine(): {key: hostile}}}))
        monkeypatch.setattr(choice, "_cache", {})
        calls = []
        monkeypatch.setattr(choice, "_time_both", _timing("openblas", calls))
        assert choice.choose(2, 3, 12) == "openblas" and calls == [(2, 3, 12)], hostile


def test_off_keeps_nothing(record, monkeypatch):
    file, _ = record
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", "off")
    calls = []
    monkeypatch.setattr(choice, "_time_both", _timing("mkl", calls))
    choice.choose(8, 16, 64)
    monkeypatch.setattr(choice, "_cache", {})
    choice.choose(8, 16, 64)
    assert len(calls) == 2 and not file.parent.exists() and choice_cache.path() is None


def test_default_place_is_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNLAB_BLAS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert choice_cache.path() == tmp_path / "rnnlab" / "blas-choices.json"


def test_an_unwritable_place_costs_only_the_timing(record, monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", str(blocker / "blas-choices.json"))
    calls = []
    monkeypatch.setattr(choice, "_time_both", _timing("openblas", calls))
    assert choice.choose(8, 16, 64) == "openblas"
    assert choice.choose(8, 16, 32) == "openblas"
    err = capsys.readouterr().err
    assert err.count("cannot write the BLAS choice record") == 1 and "RNNLAB_BLAS_CACHE" in err


def _store_many(file, first):
    import os
    os.environ["RNNLAB_BLAS_CACHE"] = str(file)
    for B in range(first, first + 15):
        choice_cache.store((B, 8, 32, 1), "openblas", {"openblas": 1e-6, "mkl": 2e-6})


def test_processes_recording_at_once_keep_every_entry(tmp_path):
    file = tmp_path / "blas-choices.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_store_many, args=(file, first)) for first in (1, 101, 201)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    (entries,) = json.loads(file.read_text())["machines"].values()
    assert len(entries) == 45


def test_machine_names_the_cpu_and_the_libraries():
    line = choice_cache.machine()
    assert np.__version__ in line and "[" in line and ("oneMKL" in line)


def test_openblas_settings_are_part_of_the_machine(monkeypatch):
    # OPENBLAS_CORETYPE picks OpenBLAS's kernel when it loads (Haswell's AVX2 kernel on an AVX-512 CPU is
    # 1.4-1.9x slower on these products): a choice timed under one setting must not serve the other
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    monkeypatch.setattr(choice_cache, "_machine", None)
    plain = choice_cache.machine()
    assert "OPENBLAS_CORETYPE" not in plain
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    monkeypatch.setattr(choice_cache, "_machine", None)
    forced = choice_cache.machine()
    assert forced != plain and "OPENBLAS_CORETYPE=Haswell" in forced and "OPENBLAS_L2_SIZE=512" in forced
    monkeypatch.setattr(choice_cache, "_machine", None)   # the next test's machine() as the process has it
