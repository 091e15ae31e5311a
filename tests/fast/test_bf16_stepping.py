"""Generation under --precision bf16 (rnnlab.fast.stepping, rnnlab.generate, `rnnlab sample`):
the stepper's logits equal the full forward's under bf16 (whose products test_bf16.py checks
against a NumPy reference that rounds to bf16 and accumulates in float32), and differ from fp32's
by bf16's rounding; the sample command and the API take the flag and refuse it in one line where
it cannot run.

oneMKL's bf16 GEMM is needed for all but the refusals (skips cleanly without it); the CPU feature
is not: RNNLAB_BF16_EMULATED=1 runs oneMKL's emulation, the same products, only slower."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab import generate, no_grad
from rnnlab.blas import mkl, precision
from rnnlab.data import Vocab
from rnnlab.errors import ConfigError
from rnnlab.fast import bf16
from rnnlab.gradcheck import randomize
from rnnlab.models import CharRNN, ModelConfig

needs_bf16 = pytest.mark.skipif(not (mkl.available() and mkl.has_bf16()),
                                reason="oneMKL with cblas_gemm_bf16bf16f32 not loadable (pip install 'rnnlab[mkl]')")
VOCAB = Vocab("\n abcdefghij")


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setenv("RNNLAB_BF16_EMULATED", "1")


def _model(cell, embedding_size, proj_size, seed=0):
    cfg = ModelConfig(len(VOCAB), cell, hidden_size=24, num_layers=2, embedding_size=embedding_size,
                      proj_size=proj_size, seed=seed)
    model = randomize(CharRNN(cfg), np.random.default_rng(seed), scale=0.5)   # every weight random (float64)
    return model.astype(np.float32).eval()    # bf16 applies to float32 models only


def _forward(model, ids, name):
    with no_grad(), precision.use(name):
        (logits, _), _ = model.forward(ids)
    return np.asarray(logits, np.float64)


@needs_bf16
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("embedding_size,proj_size", [(8, 0), (0, 6)], ids=["embedding", "onehot-proj"])
@pytest.mark.parametrize("batch", [1, 3])
def test_bf16_stepping_equals_the_bf16_forward(emulated, cell, embedding_size, proj_size, batch):
    model = _model(cell, embedding_size, proj_size)
    # 16 positions > 12 characters: the forward looks the first layer's input rows up in a float32
    # table (CharRNN.fuse_input), as evaluation of any real text does and as the stepper always does
    ids = np.random.default_rng(1).integers(len(VOCAB), size=(batch, 16))
    assert model.fuse_input(ids)
    want_bf16, want_fp32 = _forward(model, ids, "bf16"), _forward(model, ids, "fp32")
    stepper = generate.Stepper(model, "bf16").reset(batch)
    got = np.stack([stepper.feed(ids[:, t]).copy() for t in range(ids.shape[1])], axis=1)
    # Same bf16-rounded operands, float32 accumulation in another grouping (the stepper's LSTM layers
    # above the first make one product over [x, h]; the loop makes two) and float32 element-wise math
    # in another order: ~1e-7 per step, 16 steps. bf16's own rounding moves the logits by ~1e-3 (below).
    # measured: at most 2.4e-7 (8 cases, AMD EPYC Zen 3); bf16 against fp32: 2.0e-3 to 7.4e-3
    np.testing.assert_allclose(got, want_bf16, atol=2e-6)
    assert np.abs(got - want_fp32).max() > 1e-3          # the fp32 products are out of reach: bf16 ran
    fp32 = generate.Stepper(model, "fp32").reset(batch)
    got32 = np.stack([fp32.feed(ids[:, t]).copy() for t in range(ids.shape[1])], axis=1)
    np.testing.assert_allclose(got32, want_fp32, atol=2e-5)   # and fp32 stepping is untouched


@needs_bf16
def test_bf16_product_packs_once_and_matches_rounding(emulated):
    rng = np.random.default_rng(2)
    W = rng.standard_normal((16, 40)).astype(np.float32)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    with precision.use("bf16"):
        prod = bf16.fixed(W, 3)
    out = np.empty((3, 40), np.float32)
    prod(x, out)
    from rnnlab.blas.bf16 import round_bf16
    want = round_bf16(x).astype(np.float64) @ round_bf16(W).astype(np.float64)
    # products of two bf16 values are exact in float32; only the 16 float32 additions' rounding differs
    assert np.all(np.abs(out - want) <= 2 * 18 * 2.0 ** -24 * (np.abs(x) @ np.abs(W)) * 1.01)
    assert np.abs(out - x @ W).max() > 1e-3
    assert prod.arrays[2].packs == 1
    W[...] = 0       # packed once: the stepper's weights are read at construction (as fp32's copies are)
    prod(x, out)
    np.testing.assert_allclose(out, want, rtol=0, atol=np.abs(want).max() * 1e-5)
    fp = bf16.fixed(W, 3)                                # outside bf16: NumPy's product on the live array
    fp(x, out)
    assert not out.any()


@needs_bf16
def test_sample_and_beam_take_the_precision(emulated):
    from rnnlab import CharLM

    lm = CharLM.__new__(CharLM)
    lm._model, lm._vocab = _model("lstm", 8, 0), VOCAB
    lm.config = type("Cfg", (), {"cell": "lstm"})()
    texts = {p: lm.sample("ab", 40, seed=3, precision=p) for p in ("fp32", "bf16")}
    assert all(len(t) == 40 for t in texts.values())
    assert lm.sample("ab", 40, seed=3, precision="bf16") == texts["bf16"]     # a seed fixes the text
    beam = lm.sample("ab", 10, beam=3, precision="bf16")
    assert len(beam) == 10 and set(beam) <= set(VOCAB.chars)


def test_refused_in_one_line_where_it_cannot_run(monkeypatch):
    monkeypatch.delenv("RNNLAB_BF16_EMULATED", raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    model = _model("lstm", 8, 0)
    for call in (lambda: generate.Stepper(model, "bf16"),
                 lambda: next(generate.stream(model, VOCAB, "a", 5, precision="bf16")),
                 lambda: generate.beam_search(model, VOCAB, "a", 5, 2, precision="bf16")):
        with pytest.raises(ConfigError) as err:
            call()
        assert "\n" not in str(err.value) and "avx512_bf16" in str(err.value)
    with pytest.raises(ConfigError, match="--precision must be one of"):
        generate.Stepper(model, "fp16")


def test_sample_command_refuses_bf16_in_one_line(tmp_path, monkeypatch, capsys):
    """On a CPU without AVX512_BF16/AMX (simulated), `rnnlab sample --precision bf16` is one line
    naming the missing feature, before any text; fp32 is untouched."""
    from rnnlab.cli import main

    monkeypatch.delenv("RNNLAB_BF16_EMULATED", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("abc bca cab\naaa " * 100)
    run = tmp_path / "run"
    assert main(["train", str(text), "--out", str(run), "--hidden-size", "8", "--num-layers", "1",
                 "--batch-size", "2", "--seq-len", "8", "--max-steps", "2"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    code = main(["sample", str(run), "--length", "20", "--precision", "bf16", "--seed", "1"])
    out, err = capsys.readouterr()
    assert code != 0 and out == "" and "avx512_bf16" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert main(["sample", str(run), "--length", "20", "--seed", "1", "--prime", "a"]) == 0
    assert len(capsys.readouterr().out) == 21


@needs_bf16
def test_sample_command_runs_bf16_where_allowed(tmp_path, monkeypatch, capsys, emulated):
    from rnnlab.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("abc bca cab\naaa " * 100)
    run = tmp_path / "run"
    assert main(["train", str(text), "--out", str(run), "--cell", "gru", "--hidden-size", "8", "--num-layers", "1",
                 "--batch-size", "2", "--seq-len", "8", "--max-steps", "2"]) == 0
    capsys.readouterr()
    outs = []
    for _ in range(2):
        assert main(["sample", str(run), "--length", "30", "--precision", "bf16", "--seed", "4", "--prime", "a"]) == 0
        outs.append(capsys.readouterr().out)
    assert len(outs[0]) == 31 and outs[0] == outs[1]
