"""UTF-16 text is named as such, with the iconv command that converts it, not called binary."""
from __future__ import annotations

import pytest

from rnnlab.data.corpus import detect_utf16, load_text
from rnnlab.errors import DataError

TEXT = "def f(x):\n    return x * 2  # caf\u00e9\n" * 20


@pytest.mark.parametrize("encoding, named, source", [
    ("utf-16", "UTF-16LE with BOM", "UTF-16"),          # Python writes a BOM, little-endian here
    ("utf-16-le", "UTF-16LE", "UTF-16LE"),
    ("utf-16-be", "UTF-16BE", "UTF-16BE"),
])
def test_utf16_file_is_named_with_the_fix(tmp_path, encoding, named, source):
    path = tmp_path / "notes.txt"
    path.write_bytes(TEXT.encode(encoding))
    with pytest.raises(DataError) as info:
        load_text(path)
    message = str(info.value)
    assert f"notes.txt: looks like UTF-16 text ({named}), expected UTF-8" in message
    assert f"iconv -f {source} -t UTF-8 '{path}' > '{tmp_path / 'notes.utf8.txt'}'" in message
    assert "binary" not in message


def test_big_endian_bom(tmp_path):
    path = tmp_path / "be.txt"
    path.write_bytes(b"\xfe\xff" + TEXT.encode("utf-16-be"))
    with pytest.raises(DataError, match=r"UTF-16BE with BOM.*iconv -f UTF-16 -t UTF-8"):
        load_text(path)


def test_bom_without_nul_bytes_is_still_utf16(tmp_path):
    path = tmp_path / "cjk.txt"
    path.write_bytes("\u4e2d\u6587\u6587\u672c".encode("utf-16"))  # no zero bytes at all
    with pytest.raises(DataError, match="looks like UTF-16 text"):
        load_text(path)


def test_folder_skips_utf16_files_with_the_advice(tmp_path):
    (tmp_path / "a.txt").write_text("plain text\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(TEXT.encode("utf-16"))
    from rnnlab.data.corpus import CorpusSource

    corpus = CorpusSource("path", str(tmp_path), tmp_path).read()
    assert corpus.files == ("a.txt",)
    assert corpus.skipped == ("b.txt: looks like UTF-16 text (UTF-16LE with BOM; convert it to UTF-8: "
                              "iconv -f UTF-16 -t UTF-8)",)


def test_detect_utf16_leaves_other_data_alone():
    assert detect_utf16(TEXT.encode("utf-8")) is None
    assert detect_utf16(bytes(range(256)) * 4) is None
    assert detect_utf16(b"\x00" * 100) is None
    assert detect_utf16("ab".encode("utf-32")) is None       # UTF-32LE's BOM starts like UTF-16LE's
    assert detect_utf16(b"\xff\xfe") == "UTF-16LE with BOM"


def test_binary_files_are_still_binary(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes([0, 1, 2, 200, 0, 0, 7, 9]) * 100)
    with pytest.raises(DataError, match="looks like a binary file"):
        load_text(path)
