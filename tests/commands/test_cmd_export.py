"""``rnnlab export --torch`` / ``rnnlab import``: torch gives the same logits; the round trip is exact."""
import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnlab.api import load_run  # noqa: E402
from rnnlab.cells import CELLS  # noqa: E402
from rnnlab.data import Vocab  # noqa: E402
from rnnlab.cli import main  # noqa: E402
from rnnlab.errors import ConfigError  # noqa: E402
from rnnlab.gradcheck import randomize  # noqa: E402
from rnnlab.models import CharRNN, ModelConfig  # noqa: E402
from rnnlab.torch_bridge import TORCH_CELLS  # noqa: E402
from rnnlab.torch_model import TorchCharLM, export_torch, state_to_torch, torch_config  # noqa: E402


def _torch_logits(module, ids, state=None):
    with torch.no_grad():
        logits, state = module.eval()(torch.from_numpy(ids), state)
    return logits.numpy(), state


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "irnn"])
@pytest.mark.parametrize("embedding_size,proj_size,dropout", [(5, 0, 0.0), (0, 4, 0.3), (5, 3, 0.2)])
def test_torch_twin_gives_the_same_logits_in_float64(cell, embedding_size, proj_size, dropout):
    cfg = ModelConfig(9, cell, hidden_size=6, num_layers=2, embedding_size=embedding_size, dropout=dropout,
                      proj_size=proj_size, seed=2)
    model = randomize(CharRNN(cfg), np.random.default_rng(3)).eval()
    twin = TorchCharLM(torch_config(model))
    assert twin.rnn.dropout == (dropout if dropout else 0.0) and twin.drop.p == dropout
    twin.load_state_dict(torch.utils._pytree.tree_map(torch.from_numpy, state_to_torch(model)))
    ids = np.random.default_rng(4).integers(9, size=(2, 7))
    (expected, _), _ = model.forward(ids)
    got, _ = _torch_logits(twin, ids)
    # float64 model and float64 torch twin: the same products in another order, T = 7, small widths:
    # ~1e-14; rtol/atol 1e-12.
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_exported_run_loads_into_torch_and_matches(tiny_run, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["export", str(tiny_run), "--torch", str(out)]) == 0
    ckpt = torch.load(out, weights_only=True)  # plain values only: no pickled classes needed
    loaded = load_run(tiny_run)
    assert ckpt["vocab"]["chars"] == list(loaded.vocab.chars)
    assert ckpt["config"]["train"]["corpus"] == json.loads((tiny_run / "config.json").read_text())["corpus"]
    twin = TorchCharLM(ckpt["config"])
    twin.load_state_dict(ckpt["state_dict"])  # strict: every name matches
    ids = loaded.vocab.encode("the cat sat on a mat. Over here,").astype(np.int64)[None]
    (expected, _), _ = loaded.model.forward(ids)
    got, _ = _torch_logits(twin, ids)
    # the loaded checkpoint is float32: float32 products of length H plus a softmax-free logit layer over 30
    # steps, ~H*2^-24 per step, ~1e-6 on logits of size O(1); rtol/atol 1e-5 leave 10x.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_import_round_trip_is_exact(tiny_run, tmp_path, capsys):
    pt, run2 = tmp_path / "m.pt", tmp_path / "imported"
    assert main(["export", str(tiny_run), "--torch", str(pt)]) == 0
    assert main(["import", str(pt), "--out", str(run2)]) == 0
    a, b = load_run(tiny_run), load_run(run2)
    assert a.vocab == b.vocab and a.model.config == b.model.config
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    ids = a.vocab.encode("a dog ran\nthe mat").astype(np.int64)[None]
    np.testing.assert_array_equal(a.model.forward(ids)[0][0], b.model.forward(ids)[0][0])
    # the configuration round-trips exactly; "blas" (which library ran the products) is a record of the
    # training run itself, which an imported model never had
    trained = json.loads((tiny_run / "config.json").read_text())
    assert trained.pop("blas")["precision"] == trained["precision"] == "fp32"
    assert json.loads((run2 / "config.json").read_text()) == trained
    capsys.readouterr()
    assert main(["eval", str(run2), "--split", "val"]) == 0  # the training config came along


def test_a_model_trained_in_torch_imports_with_folded_biases(tmp_path, capsys):
    cfg = ModelConfig(7, "gru", hidden_size=5, num_layers=2, embedding_size=3, seed=0)
    twin = TorchCharLM(cfg).double()  # torch's own init: both bias vectors non-zero
    payload = {"format": "rnnlab-torch", "version": 1, "state_dict": twin.state_dict(),
               "vocab": {"format": "rnnlab-vocab", "version": 1, "chars": list("abcdefg")},
               "config": {"model": cfg.to_dict(), "train": None}}
    torch.save(payload, tmp_path / "t.pt")
    assert main(["import", str(tmp_path / "t.pt"), "--out", str(tmp_path / "run")]) == 0
    model = load_run(tmp_path / "run").model
    ids = np.array([[0, 3, 6, 2, 2, 1]])
    got, _ = _torch_logits(twin, ids)
    np.testing.assert_allclose(model.forward(ids)[0][0], got, rtol=1e-5, atol=1e-6)  # float32 checkpoint
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--split", "val"]) == 2  # no corpus is known
    assert "no training config" in capsys.readouterr().err


def test_foreign_files_and_unmappable_models_are_clear_errors(tmp_path, capsys):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    assert main(["import", str(tmp_path / "other.pt"), "--out", str(tmp_path / "r")]) == 2
    assert "not an rnnlab export" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a zip or pickle")
    assert main(["import", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "r")]) == 2
    assert "cannot read" in capsys.readouterr().err
    for cell in sorted(set(CELLS) - set(TORCH_CELLS)):  # e.g. the normalised LSTMs
        model = CharRNN(ModelConfig(5, cell, hidden_size=4, num_layers=1, embedding_size=2))
        with pytest.raises(ConfigError, match="no PyTorch equivalent"):
            state_to_torch(model)
        with pytest.raises(ConfigError, match="no PyTorch equivalent"):
            export_torch(tmp_path / "x.pt", model, Vocab("abcde"))
    model = CharRNN(ModelConfig(5, "lstm", hidden_size=4, num_layers=1, embedding_size=2))
    model.rnn.cell_name = "fancy"  # as any future cell without a torch counterpart
    with pytest.raises(ConfigError, match="no PyTorch equivalent"):
        state_to_torch(model)
    assert not (tmp_path / "x.pt").exists()


def test_missing_torch_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    model = CharRNN(ModelConfig(3, "rnn", hidden_size=2, num_layers=1, embedding_size=0))
    with pytest.raises(ConfigError, match="PyTorch is not installed"):
        export_torch(tmp_path / "x.pt", model, Vocab("abc"))
