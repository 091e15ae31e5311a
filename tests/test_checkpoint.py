"""Checkpoint save/load: round trip, NaN refusal, crash safety, bad files."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnlab import checkpoint as ckpt
from rnnlab.checkpoint import META_KEY, load_checkpoint, read_checkpoint_meta, save_checkpoint
from rnnlab.errors import CheckpointError, RnnlabError

SRC = Path(__file__).resolve().parents[1] / "src"


def sample_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embed.W": rng.standard_normal((5, 3)).astype(np.float32),
        "layers.0.cell.W_h": rng.standard_normal((3, 3)),  # float64
        "opt/step": np.array(7, dtype=np.int64),             # 0-d, slash in name
        "vocab_ids": np.arange(10, dtype=np.uint8),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((2, 3)).astype(np.float32)),
    }


META = {"step": 12, "config": {"hidden": [64, 64], "cell": "lstm"}, "best": float("inf"),
        "batcher": {"epoch": 1, "index": 3}, "note": "caf\u00e9 \U0001f600"}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name])


def test_round_trip(tmp_path):
    arrays = sample_arrays()
    path = save_checkpoint(tmp_path / "model.npz", arrays, META)
    loaded, meta = load_checkpoint(path)
    assert_same(arrays, loaded)
    assert meta == META
    assert read_checkpoint_meta(path) == META
    # Still a standard .npz, readable without pickle.
    with np.load(path, allow_pickle=False) as plain:
        np.testing.assert_array_equal(plain["embed.W"], arrays["embed.W"])


def test_compressed_round_trip_and_numpy_scalars_in_meta(tmp_path):
    arrays = sample_arrays(1)
    meta = {"loss": np.float32(1.5), "step": np.int64(3), "shape": (2, 3)}
    save_checkpoint(tmp_path / "c.npz", arrays, meta, compress=True)
    loaded, got = load_checkpoint(tmp_path / "c.npz")
    assert_same(arrays, loaded)
    assert got == {"loss": 1.5, "step": 3, "shape": [2, 3]}


def test_overwrite_replaces(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(path, {"w": np.zeros(3)}, {"step": 1})
    save_checkpoint(path, {"w": np.ones(3)}, {"step": 2})
    arrays, meta = load_checkpoint(path)
    assert meta["step"] == 2 and arrays["w"].tolist() == [1, 1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_refused_and_previous_kept(tmp_path, bad):
    path = tmp_path / "m.npz"
    save_checkpoint(path, sample_arrays(), META)
    before = path.read_bytes()
    arrays = sample_arrays(2)
    arrays["layers.0.cell.W_h"][1, 2] = bad
    with pytest.raises(CheckpointError, match=r"m.npz: refusing to save: array 'layers.0.cell.W_h' contains 1 NaN/inf"):
        save_checkpoint(path, arrays, META)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.parametrize("arrays, meta, pattern", [
    ({"x": np.array([object()])}, {}, "dtype object"),
    ({META_KEY: np.zeros(1)}, {}, "invalid array name"),
    ({"": np.zeros(1)}, {}, "invalid array name"),
    ({"x": np.zeros(1)}, {"f": lambda: 0}, "not JSON-serialisable"),
    ({"x": np.zeros(1)}, [1, 2], "must be a dict"),
])
def test_invalid_inputs_refused(tmp_path, arrays, meta, pattern):
    with pytest.raises(CheckpointError, match=pattern):
        save_checkpoint(tmp_path / "m.npz", arrays, meta)
    assert list(tmp_path.iterdir()) == []


def test_crash_in_replace_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_checkpoint(path, sample_arrays(), META)

    def crash(src, dst):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(path, sample_arrays(5), {"step": 99})
    monkeypatch.undo()
    arrays, meta = load_checkpoint(path)
    assert_same(arrays, sample_arrays())
    assert meta == META
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # temporary cleaned up


def test_crash_midway_through_writing_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_checkpoint(path, sample_arrays(), META)
    real_write = np.lib.format.write_array
    calls = []

    def write_then_fail(fp, array, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            fp.write(b"\x93NUMPY partial")
            raise RuntimeError("simulated failure mid-write")
        real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(RuntimeError, match="mid-write"):
        save_checkpoint(path, sample_arrays(5), {"step": 99})
    monkeypatch.undo()
    assert len(calls) == 3
    assert load_checkpoint(path)[1] == META
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_killed_process_leaves_previous_loadable(tmp_path):
    """A real hard kill (os._exit) in the middle of writing a large array."""
    path = tmp_path / "m.npz"
    save_checkpoint(path, sample_arrays(), META)
    script = f"""
import os, sys
import numpy as np
sys.path.insert(0, {str(SRC)!r})
from rnnlab.checkpoint import save_checkpoint
real = np.lib.format.write_array
def dying(fp, array, **kw):
    if array.size > 1000:
        fp.write(array.tobytes()[: array.nbytes // 2])
        fp.flush()
        os._exit(9)
    real(fp, array, **kw)
np.lib.format.write_array = dying
save_checkpoint({str(path)!r}, {{"a": np.ones(3), "big": np.ones(200_000)}}, {{"step": 2}})
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 9, result.stderr
    arrays, meta = load_checkpoint(path)
    assert meta == META
    assert_same(arrays, sample_arrays())
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "m.npz"]
    assert leftovers and all(name.startswith(".m.npz.") for name in leftovers)  # hidden temp only


def test_missing_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="nope.npz: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_truncated_file(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", sample_arrays(), META)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"m.npz: checkpoint is truncated or corrupt"):
            load_checkpoint(path)


def test_flipped_bytes_in_array_data(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", {"w": np.zeros(10_000)}, META)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_random_bytes_empty_and_text_files(tmp_path):
    cases = {
        "random.npz": np.random.default_rng(0).bytes(5000),
        "empty.npz": b"",
        "notes.txt": b"this is not a checkpoint\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)


def test_plain_npz_is_foreign(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(3))
    with pytest.raises(CheckpointError, match="plain.npz: not an rnnlab checkpoint"):
        load_checkpoint(path)


def _npz_with_meta(path: Path, meta_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.frombuffer(meta_bytes, dtype=np.uint8))
        archive.writestr(META_KEY + ".npy", buffer.getvalue())
    return path


@pytest.mark.parametrize("meta_bytes, pattern", [
    (b"{broken json", "metadata is corrupt"),
    (json.dumps({"format": "something-else", "version": 1, "meta": {}}).encode(), "not an rnnlab checkpoint"),
    (json.dumps({"format": "rnnlab-checkpoint", "version": 2, "meta": {}}).encode(), "format version 2"),
    (json.dumps({"format": "rnnlab-checkpoint", "version": 1}).encode(), "no 'meta' object"),
])
def test_bad_metadata(tmp_path, meta_bytes, pattern):
    path = _npz_with_meta(tmp_path / "odd.npz", meta_bytes)
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)


def test_checkpoint_error_is_user_facing():
    assert issubclass(CheckpointError, RnnlabError)
    assert ckpt.CHECKPOINT_FORMAT == "rnnlab-checkpoint"
