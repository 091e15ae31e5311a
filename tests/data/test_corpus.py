"""Reading text files/folders, the default corpus and corpus resolution."""
from __future__ import annotations

import hashlib
import platform

import pytest

from rnnlab.data import corpus as corpus_mod
from rnnlab.data import datasets
from rnnlab.data.corpus import (
    decode_utf8,
    default_corpus,
    default_corpus_files,
    default_corpus_fingerprint,
    load_text,
    looks_binary,
    resolve_corpus,
    stdlib_dir,
)
from rnnlab.errors import DataError, RnnlabError


def test_errors_are_user_facing():
    assert issubclass(DataError, RnnlabError)


def test_reads_file_exactly(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("h\u00e9llo\r\nw\u00f6rld \U0001f600\n".encode("utf-8"))
    # Byte for byte: no newline translation.
    assert load_text(path) == "h\u00e9llo\r\nw\u00f6rld \U0001f600\n"


def test_leading_bom_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfabc")
    assert load_text(path) == "abc"


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="nope.txt: no such file"):
        load_text(tmp_path / "nope.txt")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        load_text(path)


def test_binary_file_with_nul(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"abc\x00def")
    with pytest.raises(DataError, match=r"blob.bin: looks like a binary file \(contains NUL"):
        load_text(path)


def test_binary_file_mostly_control_bytes(tmp_path):
    path = tmp_path / "ctrl.dat"
    path.write_bytes(bytes([1, 2, 3, 4, 5, 6, 0x7F]) * 50 + b"some text")
    with pytest.raises(DataError, match="ctrl.dat: looks like a binary file .*control characters"):
        load_text(path)


def test_looks_binary_accepts_ordinary_text():
    assert looks_binary("tab\tnewline\nformfeed\f \u00e9\u4e2d".encode("utf-8")) is None


def test_invalid_utf8_reports_offset_line_and_column(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"first line\nsec\xe9ond\n")
    with pytest.raises(DataError) as info:
        load_text(path)
    message = str(info.value)
    assert "latin1.txt" in message and "not valid UTF-8" in message
    assert "byte 0xe9 at byte offset 14" in message
    assert "(line 2, column 4)" in message
    assert "\n" not in message


def test_decode_utf8_first_byte_of_file():
    with pytest.raises(DataError, match=r"byte offset 0 \(line 1, column 1\)"):
        decode_utf8(b"\xff", "x")


def test_folder_order_hidden_and_binary(tmp_path):
    (tmp_path / "b.txt").write_text("B")
    (tmp_path / "a.txt").write_text("A\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.md").write_text("C")
    (tmp_path / ".hidden.txt").write_text("HIDDEN")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("GIT")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    source = resolve_corpus(tmp_path)
    text = source.read()
    # Sorted by relative path; one "\n" between files; hidden/binary skipped.
    assert text.files == ("a.txt", "b.txt", "sub/c.md")
    assert text.text == "A\n\nB\nC"
    assert load_text(tmp_path) == text.text
    assert any(s.startswith("image.png") for s in text.skipped)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="folder contains no"):
        load_text(tmp_path)


def test_folder_without_text_files(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / ".notes").write_text("hidden text does not count")
    with pytest.raises(DataError, match="folder contains no text files"):
        load_text(tmp_path)


def test_folder_with_invalid_utf8_file_names_it(tmp_path):
    (tmp_path / "good.txt").write_text("fine")
    (tmp_path / "bad.txt").write_bytes(b"ok\xc3(")
    with pytest.raises(DataError, match=r"bad.txt: not valid UTF-8.*byte offset 2"):
        load_text(tmp_path)


def test_default_corpus_deterministic_and_large():
    first = default_corpus()
    assert first == default_corpus()
    assert len(first.encode("utf-8")) > 1_000_000
    assert "def " in first and "import " in first
    fingerprint = default_corpus_fingerprint()
    assert fingerprint == default_corpus_fingerprint()
    assert platform.python_version() in fingerprint
    assert hashlib.sha256(first.encode("utf-8")).hexdigest() in fingerprint


def test_default_corpus_files_are_top_level_sorted():
    files = default_corpus_files()
    assert files, "the interpreter has no stdlib .py files?"
    assert [p.name for p in files] == sorted(p.name for p in files)
    assert all(p.parent == stdlib_dir() and p.suffix == ".py" for p in files)


def test_default_corpus_skips_invalid_utf8(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_bytes(b"y = '\xff'\n")
    (tmp_path / "c.py").write_text("z = 3\n")
    (tmp_path / "d.txt").write_text("not python")
    text = corpus_mod._read_default(tmp_path)
    assert text.text == "x = 1\n\nz = 3\n"
    assert text.files == ("a.py", "c.py")
    assert len(text.skipped) == 1 and "b.py" in text.skipped[0]


def test_resolve_corpus_kinds(tmp_path, monkeypatch):
    assert resolve_corpus(None).kind == "default"
    content = b"toy dataset text\n"
    (tmp_path / "toy.txt").write_bytes(content)
    info = datasets.DatasetInfo("toy", "toy.txt", "http://invalid/toy.txt",
                                hashlib.sha256(content).hexdigest(), len(content), "test")
    monkeypatch.setitem(datasets.DATASETS, "toy", info)
    source = resolve_corpus("toy", data_dir=tmp_path)
    assert source.kind == "dataset" and source.path == tmp_path / "toy.txt"
    assert source.read().text == content.decode()
    path_source = resolve_corpus(str(tmp_path / "toy.txt"))
    assert path_source.kind == "path"


def test_resolve_corpus_unknown_path(tmp_path):
    with pytest.raises(DataError, match="no such file or folder.*nietzsche, tinyshakespeare"):
        resolve_corpus(str(tmp_path / "missing"))
