"""Dataset registry, lookup order, sha256 checks and (local-only) downloads."""
from __future__ import annotations

import hashlib

import pytest

from rnnlab.data import datasets
from rnnlab.data.datasets import DATASETS, DatasetInfo, download, resolve_dataset
from rnnlab.errors import DataError

CONTENT = b"To be, or not to be, that is the question.\n" * 20
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache dir, no RNNLAB_DATA, a toy dataset, and no network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    info = DatasetInfo("toy", "toy.txt", (tmp_path / "remote" / "toy.txt").as_uri(), SHA, len(CONTENT), "t")
    monkeypatch.setitem(DATASETS, "toy", info)

    def no_network(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(datasets, "download", no_network)


def test_registry_entries():
    nietzsche, shakespeare = DATASETS["nietzsche"], DATASETS["tinyshakespeare"]
    assert nietzsche.filename == "nietzsche.txt" and nietzsche.size == 600_901
    assert nietzsche.sha256 == "23cf69874ab69d3d256099ab530ea4be24d47d9675b673bcc67cbcd6298ec647"
    assert nietzsche.url == "https://s3.amazonaws.com/text-datasets/nietzsche.txt"
    assert shakespeare.filename == "tinyshakespeare.txt" and shakespeare.size == 1_115_394
    assert shakespeare.sha256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert shakespeare.url.endswith("karpathy/char-rnn/master/data/tinyshakespeare/input.txt")


def test_cache_dir_follows_xdg(tmp_path):
    assert datasets.cache_dir() == tmp_path / "cache" / "rnnlab"


def test_found_in_data_dir(tmp_path):
    (tmp_path / "toy.txt").write_bytes(CONTENT)
    assert resolve_dataset("toy", tmp_path) == tmp_path / "toy.txt"


def test_env_var_used_and_data_dir_wins(tmp_path, monkeypatch):
    env_dir, cli_dir = tmp_path / "env", tmp_path / "cli"
    env_dir.mkdir()
    cli_dir.mkdir()
    (env_dir / "toy.txt").write_bytes(CONTENT)
    monkeypatch.setenv(datasets.DATA_ENV, str(env_dir))
    assert resolve_dataset("toy") == env_dir / "toy.txt"
    (cli_dir / "toy.txt").write_bytes(CONTENT)
    assert resolve_dataset("toy", cli_dir) == cli_dir / "toy.txt"


def test_cache_dir_is_searched(tmp_path):
    cached = datasets.cache_dir() / "toy.txt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(CONTENT)
    assert resolve_dataset("toy", tmp_path / "empty-dir") == cached


def test_sha_mismatch_names_expected_and_got(tmp_path):
    bad = CONTENT.replace(b"question", b"answer!!")
    (tmp_path / "toy.txt").write_bytes(bad)
    with pytest.raises(DataError) as info:
        resolve_dataset("toy", tmp_path)
    message = str(info.value)
    assert "sha256 mismatch" in message and "toy.txt" in message
    assert f"expected {SHA}" in message
    assert f"got {hashlib.sha256(bad).hexdigest()}" in message


def test_missing_without_network_explains_how_to_provide(tmp_path):
    with pytest.raises(DataError) as info:
        resolve_dataset("toy", tmp_path)
    message = str(info.value)
    assert "--data-dir DIR" in message and "RNNLAB_DATA=DIR" in message
    assert "toy.txt" in message and "network disabled in tests" in message
    assert "\n" not in message


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        resolve_dataset("nope")


def test_download_success_goes_to_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "download", download)  # the real one, on a file:// URL
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "toy.txt").write_bytes(CONTENT)
    path = resolve_dataset("toy")
    assert path == datasets.cache_dir() / "toy.txt"
    assert path.read_bytes() == CONTENT


def test_download_with_wrong_sha_leaves_nothing(tmp_path):
    source = tmp_path / "remote.txt"
    source.write_bytes(CONTENT)
    dest_dir = tmp_path / "dest"
    with pytest.raises(ValueError, match="sha256"):
        download(source.as_uri(), dest_dir / "toy.txt", "0" * 64, max_bytes=10 * len(CONTENT))
    assert list(dest_dir.iterdir()) == []  # no final file, no temporary left behind


def test_download_size_limit(tmp_path):
    source = tmp_path / "remote.txt"
    source.write_bytes(CONTENT * 10)
    with pytest.raises(ValueError, match="larger than"):
        download(source.as_uri(), tmp_path / "dest" / "toy.txt", SHA, max_bytes=len(CONTENT), timeout=5)
    assert list((tmp_path / "dest").iterdir()) == []


def test_file_sets_resolve_by_relative_path_and_sha256(tmp_path):
    from rnnlab.data import FILE_SETS, resolve_files
    from rnnlab.data.datasets import FileSet, _file
    content = b"token\tO\n\n"
    import hashlib
    sha = hashlib.sha256(content).hexdigest()
    FILE_SETS["toy-set"] = FileSet("toy-set", dict((_file("train", "toy/train.tsv", sha, len(content)),)), "toy")
    try:
        with pytest.raises(DataError, match="toy/train.tsv not found"):
            resolve_files("toy-set", tmp_path)
        (tmp_path / "toy").mkdir()
        (tmp_path / "toy" / "train.tsv").write_bytes(content)
        assert resolve_files("toy-set", tmp_path) == {"train": tmp_path / "toy" / "train.tsv"}
        (tmp_path / "toy" / "train.tsv").write_bytes(content + b"x")
        with pytest.raises(DataError, match="sha256 mismatch"):
            resolve_files("toy-set", tmp_path)
    finally:
        del FILE_SETS["toy-set"]
    with pytest.raises(DataError, match="unknown dataset"):
        resolve_files("no-such-set")
