"""Hostile or damaged checkpoints: refused with one line naming the problem, before anything big is allocated."""
from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnlab import checkpoint as ckpt
from rnnlab.api import load_run, save_model
from rnnlab.checkpoint import META_KEY, load_checkpoint, read_checkpoint_meta, save_checkpoint
from rnnlab.cli import main
from rnnlab.data import Vocab
from rnnlab.errors import CheckpointError
from rnnlab.models import CharRNN, ModelConfig
from rnnlab.train.snapshot import unpack_model

TEXT = "the cat sat on the mat\n"


def _model_checkpoint(path: Path, cell: str = "lstm", **model) -> Path:
    vocab = Vocab.from_text(TEXT)
    config = ModelConfig(vocab_size=len(vocab), cell=cell, hidden_size=6, num_layers=1, embedding_size=3, **model)
    train_config = {"batch_size": 4, "seq_len": 8, "hidden_size": 6, "cell": cell}
    return save_model(path, CharRNN(config), vocab, train_config)


def _rewrite_meta(path: Path, change) -> Path:
    arrays, meta = load_checkpoint(path)
    change(meta)
    save_checkpoint(path, arrays, meta)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _meta_bytes(meta: dict) -> bytes:
    text = json.dumps({"format": "rnnlab-checkpoint", "version": 1, "meta": meta})
    return _npy(np.frombuffer(text.encode(), dtype=np.uint8))


def _raw_archive(path: Path, members: dict[str, bytes], meta: bytes | None = None,
                 compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr(META_KEY + ".npy", meta if meta is not None else _meta_bytes({"step": 1}))
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- array sizes --------------------------------------------------------------------------------------
def test_npy_header_claiming_a_trillion_elements_is_refused_before_allocating(tmp_path):
    header = _npy(np.zeros(4, dtype=np.float32))
    # the same header text with a shape of 10^12 elements, padded to the same length
    fake = header.replace(b"(4,)", b"(1000000000000,)", 1)
    fake = fake[:10] + fake[10:].replace(b" " * 12 + b"\n", b"\n", 1)
    fake = np.lib.format.MAGIC_PREFIX + fake[6:]
    path = _raw_archive(tmp_path / "best.npz", {"w.npy": fake})
    with pytest.raises(CheckpointError, match=r"array 'w' declares shape \(1000000000000,\) of float32 "
                                              r"\(3\.6 TB\) but its entry holds 16 bytes") as info:
        load_checkpoint(path)
    assert "last.npz (--checkpoint last) or an earlier run" in str(info.value)


def test_total_declared_size_over_the_limit(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.npz", {"w": np.zeros(1000)}, {"step": 1})
    monkeypatch.setattr(ckpt, "MAX_TOTAL_BYTES", 4000)
    with pytest.raises(CheckpointError, match=r"declares 8\.\d kB of arrays, more than the limit"):
        load_checkpoint(path)
    assert read_checkpoint_meta(path) == {"step": 1}  # the metadata alone is still readable


def test_zip_bomb_member_is_refused_by_its_declared_expansion(tmp_path):
    path = tmp_path / "last.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(META_KEY + ".npy", _meta_bytes({"step": 1}))
        n = 96 << 20  # 96 MiB of zeros deflate to ~100 kB
        with archive.open("bomb.npy", "w", force_zip64=True) as member:
            member.write(np.lib.format.MAGIC_PREFIX + _npy(np.zeros(n // 8))[6:128])
            zeros = bytes(1 << 20)
            for _ in range(n // len(zeros)):
                member.write(zeros)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(CheckpointError, match=r"entry 'bomb.npy' expands from .* kB to 96\.0 MB "
                                              r"\(more than 50-fold\).*zip bomb.*use the run's best.npz"):
        load_checkpoint(path)


def test_zip_bomb_spread_over_many_members(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(META_KEY + ".npy", _meta_bytes({"step": 1}))
        for i in range(40):  # 40 x 2 MiB of zeros: each entry small, together 80 MiB from ~100 kB
            archive.writestr(f"z{i}.npy", _npy(np.zeros(1 << 18)))
    with pytest.raises(CheckpointError, match=r"entries expand from .* to 80\.0 MB \(more than 50-fold\)"):
        load_checkpoint(path)


def test_small_compressed_checkpoints_still_load(tmp_path):
    arrays = {"zeros": np.zeros((300, 300), dtype=np.float32), "w": np.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "c.npz", arrays, {"step": 1}, compress=True)
    loaded, _ = load_checkpoint(tmp_path / "c.npz")
    np.testing.assert_array_equal(loaded["w"], arrays["w"])
    assert loaded["zeros"].shape == (300, 300) and loaded["w"].flags.writeable


def test_member_declaring_more_than_the_file_holds(tmp_path):
    path = _raw_archive(tmp_path / "m.npz", {"w.npy": _npy(np.zeros(100))})
    data = bytearray(path.read_bytes())
    entry = data.rfind(b"PK\x01\x02", 0, data.rfind(b"w.npy"))  # its central-directory record
    data[entry + 24:entry + 28] = (50 << 20).to_bytes(4, "little")  # the uncompressed size
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"m.npz: entry 'w.npy' declares 50.0 MB, more than the whole file"):
        load_checkpoint(path)


def test_object_arrays_are_refused(tmp_path):
    path = _raw_archive(tmp_path / "m.npz", {"w.npy": _npy(np.array([{"a": 1}], dtype=object))})
    with pytest.raises(CheckpointError, match=r"array 'w' has dtype object \(Python objects\)"):
        load_checkpoint(path)


# -- metadata -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [200, 100_000])
def test_deeply_nested_metadata(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    text = '{"format": "rnnlab-checkpoint", "version": 1, "meta": {"x": ' + nested + "}}"
    path = _raw_archive(tmp_path / "best.npz", {}, meta=_npy(np.frombuffer(text.encode(), dtype=np.uint8)))
    with pytest.raises(CheckpointError, match=r"metadata is corrupt \(JSON nested .*deep(ly)?\); use the run's last"):
        load_checkpoint(path)


def test_oversized_metadata(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.npz", {}, {"vocab": "x" * 5000})
    monkeypatch.setattr(ckpt, "MAX_META_BYTES", 1000)
    with pytest.raises(CheckpointError, match="checkpoint metadata declares .* more than the limit"):
        read_checkpoint_meta(path)


def test_metadata_that_is_not_a_byte_string(tmp_path):
    path = _raw_archive(tmp_path / "m.npz", {}, meta=_npy(np.zeros(3)))
    with pytest.raises(CheckpointError, match=r"metadata is corrupt \(an array of float64"):
        load_checkpoint(path)


# -- non-finite weights -------------------------------------------------------------------------------------
def test_non_finite_weights_are_refused_on_load_naming_the_tensor(tmp_path):
    good = _model_checkpoint(tmp_path / "good.npz")
    arrays, meta = load_checkpoint(good)
    arrays["param/out.W"][0, :3] = [np.nan, np.inf, np.nan]
    with zipfile.ZipFile(good) as archive:
        meta_bytes = archive.read(META_KEY + ".npy")
    path = _raw_archive(tmp_path / "best.npz", {f"{k}.npy": _npy(v) for k, v in arrays.items()}, meta=meta_bytes)
    with pytest.raises(CheckpointError, match=r"array 'param/out.W' contains 3 NaN/inf value\(s\).*"
                                              r"use the run's last.npz \(--checkpoint last\)"):
        load_checkpoint(path)


def test_non_finite_weights_stop_sample_and_eval(tmp_path, capsys):
    good = _model_checkpoint(tmp_path / "good.npz")
    arrays, _ = load_checkpoint(good)
    arrays["param/embed.W"][1, 1] = np.nan
    with zipfile.ZipFile(good) as archive:
        meta_bytes = archive.read(META_KEY + ".npy")
    path = _raw_archive(tmp_path / "m.npz", {f"{k}.npy": _npy(v) for k, v in arrays.items()}, meta=meta_bytes)
    text = tmp_path / "t.txt"
    text.write_text(TEXT * 5)
    for argv in (["sample", str(path), "--length", "5"], ["eval", str(path), "--text", str(text)]):
        err = _one_line_error(capsys, argv)
        assert "'param/embed.W' contains 1 NaN/inf" in err


# -- the model's settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("change, pattern", [
    (lambda m: m["model"].update(hidden_size=1_000_000),
     r"hidden_size 1000000, num_layers 1.* need at least 1,000,\d{3},\d{3},\d{3} weights, but the checkpoint holds"),
    (lambda m: m["model"].update(vocab_size=10**9), r"vocab_size 1000000000 but the vocabulary has 11 characters"),
    (lambda m: m["model"].update(num_layers=10**7), r"num_layers 10000000 is more than 1000"),
    (lambda m: m["model"].update(hidden_size="6"), r"hidden_size must be a whole number, got str '6'"),
    (lambda m: m["model"].update(num_layers=True), r"num_layers must be a whole number, got bool True"),
    (lambda m: m["model"].update(dropout="0.1"), r"dropout must be a number in \[0, 1\), got '0.1'"),
    (lambda m: m["model"].update(cell="transformer"), r"unknown cell 'transformer'"),
    (lambda m: m["model"].update(cell_options=[1]), r"cell_options must be an object"),
    (lambda m: m["model"].update(cell_options={"forget_bias": {"a": 1}}), r"cell option forget_bias must be"),
    (lambda m: m["model"].update(cell_options={"forget_bias": "x"}), r"does not describe a valid model"),
    (lambda m: m["model"].update(embedding_size=-1), r"embedding_size must be at least 0, got -1"),
    (lambda m: m["model"].update(colour="red"), r"unknown model setting\(s\): colour"),
    (lambda m: m["model"].pop("vocab_size"), r"no vocab_size"),
    (lambda m: m["model"].pop("hidden_size"), r"hidden_size 256, num_layers 1.* need at least"),  # the default
    (lambda m: m.pop("model"), r"no 'model' settings"),
    (lambda m: m["vocab"].update(chars=["a", "a"]), r"vocabulary is corrupt \(vocabulary contains duplicate"),
    (lambda m: m["config"].update(batch_size="8"),
     r"training config is invalid \(config key batch_size \(--batch-size\) must be a whole number, got string '8'\)"),
    (lambda m: m.update(config=[1, 2]), r"training config is not an object"),
])
def test_bad_model_settings(tmp_path, change, pattern):
    path = _rewrite_meta(_model_checkpoint(tmp_path / "best.npz"), change)
    with pytest.raises(CheckpointError, match=pattern):
        load_run(path)


def test_bn_lstm_max_steps_out_of_proportion(tmp_path):
    path = _model_checkpoint(tmp_path / "m.npz", cell="bnlstm", cell_options={"max_steps": 16})
    assert load_run(path).model.config.cell_options == {"max_steps": 16}
    _rewrite_meta(path, lambda m: m["model"]["cell_options"].update(max_steps=10**9))
    with pytest.raises(CheckpointError, match=r"cell option max_steps=1000000000 is out of proportion"):
        load_run(path)


def test_weights_of_the_wrong_shape(tmp_path):
    path = _model_checkpoint(tmp_path / "m.npz")
    arrays, meta = load_checkpoint(path)
    arrays["param/out.W"] = arrays["param/out.W"][:, :2]
    save_checkpoint(path, arrays, meta)
    with pytest.raises(CheckpointError, match=r"shape mismatch for out.W"):
        unpack_model(*load_checkpoint(path), str(path))


def test_hostile_model_settings_through_the_command_line(tmp_path, capsys):
    path = _rewrite_meta(_model_checkpoint(tmp_path / "best.npz"), lambda m: m["model"].update(hidden_size=10**6))
    err = _one_line_error(capsys, ["sample", str(path), "--length", "3"])
    assert "hidden_size 1000000" in err and "last.npz" in err
    err = _one_line_error(capsys, ["export", str(path), "--torch", str(tmp_path / "x.pt")])
    assert "hidden_size 1000000" in err


def test_truncated_best_checkpoint_says_what_to_use(tmp_path, capsys):
    path = _model_checkpoint(tmp_path / "best.npz")
    path.write_bytes(path.read_bytes()[:-40])
    err = _one_line_error(capsys, ["sample", str(path)])
    assert "truncated or corrupt" in err and "use the run's last.npz (--checkpoint last) or an earlier run" in err


def test_a_good_model_checkpoint_still_loads(tmp_path):
    loaded = load_run(_model_checkpoint(tmp_path / "m.npz", proj_size=2))
    assert loaded.model.config.proj_size == 2 and len(loaded.vocab) == 11


# -- non-real and non-numeric arrays (issue 22, fault 5) ---------------------------------------------------
def _with_array(tmp_path: Path, name: str, value: np.ndarray, file: str = "best.npz") -> Path:
    good = _model_checkpoint(tmp_path / "good.npz")
    arrays, _ = load_checkpoint(good)
    arrays[name] = value
    with zipfile.ZipFile(good) as archive:
        meta_bytes = archive.read(META_KEY + ".npy")
    return _raw_archive(tmp_path / file, {f"{k}.npy": _npy(v) for k, v in arrays.items()}, meta=meta_bytes)


@pytest.mark.parametrize("make, dtype", [
    (lambda w: w.astype(np.complex128) + 1j, "complex128"),
    (lambda w: w.astype(np.complex64), "complex64"),
    (lambda w: w.astype("U8"), "<U8"),
    (lambda w: np.zeros(w.shape, dtype=[("re", "f8"), ("im", "f8")]), r"\[\('re', '<f8'\), \('im', '<f8'\)\]"),
    (lambda w: np.zeros(w.shape, dtype="datetime64[s]"), r"datetime64\[s\]"),
])
def test_non_real_arrays_are_refused_on_load_naming_the_tensor(tmp_path, make, dtype):
    arrays, _ = load_checkpoint(_model_checkpoint(tmp_path / "m.npz"))
    path = _with_array(tmp_path, "param/out.W", make(arrays["param/out.W"]))
    with pytest.raises(CheckpointError, match=rf"array 'param/out.W' has dtype {dtype}, not real numbers .*"
                                              r"use the run's last.npz \(--checkpoint last\)"):
        load_checkpoint(path)


def test_complex_weights_stop_sample_with_one_line_and_no_warning(tmp_path, capsys):
    arrays, _ = load_checkpoint(_model_checkpoint(tmp_path / "m.npz"))
    path = _with_array(tmp_path, "param/embed.W", arrays["param/embed.W"].astype(np.complex128), "x.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a ComplexWarning would be an exception here
        err = _one_line_error(capsys, ["sample", str(path), "--length", "5"])
    assert "array 'param/embed.W' has dtype complex128" in err


def test_non_real_arrays_are_refused_on_save(tmp_path):
    with pytest.raises(CheckpointError, match=r"array 'w' has dtype complex128, not real numbers"):
        save_checkpoint(tmp_path / "m.npz", {"w": np.ones(3, dtype=complex)}, {})
    assert not (tmp_path / "m.npz").exists()
    # integers and booleans (counters, vocab ids, masks) are real and still saved
    save_checkpoint(tmp_path / "ok.npz", {"n": np.arange(3), "u": np.arange(3, dtype=np.uint8),
                                          "m": np.ones(2, dtype=bool)}, {})
    assert set(load_checkpoint(tmp_path / "ok.npz")[0]) == {"n", "u", "m"}
