"""--precision bf16 (rnnlab.blas.precision, rnnlab.fast.bf16): the refusals, the bf16 products
against a NumPy reference that rounds to bf16 the same way (nearest even) and accumulates in
float32, the LSTM's forward steps against that reference, the gradient error against float64,
and a short training run whose loss follows fp32's.

Everything but the refusals needs oneMKL with its bf16 GEMM (``pip install 'rnnlab[mkl]'``) and
skips cleanly without it. The CPU feature is not needed to test correctness: on a CPU without
AVX512_BF16, oneMKL emulates the same products (only slower), so these tests set the precision
directly rather than through :func:`precision.use` (which refuses there, on purpose)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab import no_grad
from rnnlab.blas import mkl, precision
from rnnlab.blas.bf16 import round_bf16, to_bf16
from rnnlab.cells import LSTMCell
from rnnlab.errors import ConfigError
from rnnlab.fast import accel, bf16
from rnnlab.layers import Recurrent, SoftmaxCrossEntropy
from rnnlab.models import CharRNN, ModelConfig

needs_bf16 = pytest.mark.skipif(not (mkl.available() and mkl.has_bf16()),
                                reason="oneMKL with cblas_gemm_bf16bf16f32 not loadable (pip install 'rnnlab[mkl]')")
EPS32 = 2.0 ** -24


@pytest.fixture
def in_bf16(monkeypatch):
    monkeypatch.setattr(precision, "_current", "bf16")


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv("RNNLAB_BF16_EMULATED", raising=False)


# -- refusals ---------------------------------------------------------------------------------------
def test_refused_without_the_cpu_feature(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "fma"})
    with pytest.raises(ConfigError) as err:
        precision.check("bf16")
    msg = str(err.value)
    assert "\n" not in msg and "--precision" in msg and "avx512_bf16" in msg and "amx_bf16" in msg
    with pytest.raises(ConfigError):
        with precision.use("bf16"):
            pass
    assert precision.current() == "fp32"
    assert precision.check("fp32") == "fp32"


def test_refused_off_intel_and_the_override(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(precision, "cpu_vendor", lambda: "AuthenticAMD")
    with pytest.raises(ConfigError) as err:
        precision.check("bf16")
    assert "\n" not in str(err.value) and "AuthenticAMD" in str(err.value) and "--precision fp32" in str(err.value)
    if mkl.available() and mkl.has_bf16():
        monkeypatch.setenv("RNNLAB_BF16_EMULATED", "1")
        assert precision.check("bf16") == "bf16"
        monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
        assert precision.check("bf16") == "bf16"


def test_refused_without_mkl(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(precision, "cpu_vendor", lambda: "GenuineIntel")
    monkeypatch.setattr(mkl, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"--precision bf16 needs oneMKL: pip install 'rnnlab\[mkl\]'"):
        precision.check("bf16")


def test_unknown_precision_is_one_line():
    from rnnlab.train.config import TrainConfig

    with pytest.raises(ConfigError, match="--precision must be one of fp32, bf16"):
        precision.check("fp16")
    with pytest.raises(ConfigError, match="--precision must be one of fp32, bf16"):
        TrainConfig(precision="fp16").validate()
    with pytest.raises(ConfigError, match="--precision bf16 runs the lstm, gru cell so far, not --cell rnn"):
        TrainConfig(precision="bf16", cell="rnn").validate()
    TrainConfig(precision="bf16", cell="gru").validate()


def test_train_command_refuses_in_one_line(monkeypatch, tmp_path, capsys):
    from rnnlab.cli import main

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    text = tmp_path / "t.txt"
    text.write_text("abcab " * 200)
    assert main(["train", str(text), "--out", str(tmp_path / "run"), "--max-steps", "1", "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "avx512_bf16" in err[0] and "--precision" in err[0]


# -- conversion and products ----------------------------------------------------------------------
def test_convert_equals_to_bf16_on_every_path():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 19)) * np.exp(rng.uniform(-30, 30, (37, 19)))).astype(np.float32)
    x.flat[:12] = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-40, -1e-45, 1.0, 1.00390625]
    want = to_bf16(x)
    for flag in ([False, True] if accel.available() else [False]):
        with accel.using(flag):
            np.testing.assert_array_equal(bf16.convert(x), want)
            np.testing.assert_array_equal(bf16.convert(x.T), want.T)          # a transposed view
            np.testing.assert_array_equal(bf16.convert(x[::2, 1:]), want[::2, 1:])   # neither layout


def ref_bf16(a, b):
    """The reference: both operands rounded to bf16 (nearest even), products summed in float32."""
    return np.matmul(round_bf16(np.ascontiguousarray(a)), round_bf16(np.ascontiguousarray(b)))


def tolerance(a, b):
    # Each product of two bf16 values (8 significant bits each) is exact in float32 (24 bits), so the
    # reference and oneMKL differ only in the order of their float32 additions: each is within
    # k * eps32 * (|a| |b|) of the exact sum of the rounded products, hence 2 (k + 2) eps32 |a||b| between
    # them. bf16 rounding itself is 2^-8 relative: 65000x larger than this bound for k = 64.
    k = a.shape[1]
    return 2 * (k + 2) * EPS32 * (np.abs(round_bf16(np.ascontiguousarray(a))) @ np.abs(round_bf16(np.ascontiguousarray(b))))


@needs_bf16
@pytest.mark.parametrize("layout", ["plain", "a transposed", "b transposed"])
def test_matmul_matches_the_rounded_reference(layout):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((48, 64)).astype(np.float32)
    b = rng.standard_normal((64, 40)).astype(np.float32)
    if layout == "a transposed":
        a = np.ascontiguousarray(a.T).T
    elif layout == "b transposed":
        b = np.ascontiguousarray(b.T).T
    got = bf16.matmul(a, b)
    want, tol = ref_bf16(a, b), tolerance(a, b)
    assert got.dtype == np.float32 and np.all(np.abs(got - want) <= tol)
    assert np.max(np.abs(got - a @ b) - tol) > 0      # the unrounded product is out of reach: bf16 ran
    c0 = rng.standard_normal(got.shape).astype(np.float32)
    c = c0.copy()
    bf16.matmul(a, b, c, beta=1.0)                   # accumulating, as the weight gradients do
    assert np.all(np.abs(c - (want + c0)) <= tol + 2 * EPS32 * np.abs(c0))


@needs_bf16
def test_stepper_matches_the_rounded_reference():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 16, 32)).astype(np.float32)
    W = rng.standard_normal((32, 24)).astype(np.float32)
    out = np.empty((16, 24), np.float32)
    run = bf16.stepper(a, W, out)
    for t in (4, 0, 2):
        run(t)
        assert np.all(np.abs(out - ref_bf16(a[t], W)) <= tolerance(a[t], W))


@needs_bf16
def test_mm_is_numpy_unless_bf16(in_bf16):
    a = np.ones((3, 4))
    np.testing.assert_array_equal(bf16.mm(a, a.T), a @ a.T)   # float64: never bf16
    assert bf16.active(a.astype(np.float32)) and not bf16.active(a)


# -- the LSTM -------------------------------------------------------------------------------------
def _reference_step(x, h, c, W_x, W_h, b, H):
    """One LSTM step with the bf16 products of the reference (gates in float64 from there)."""
    a = (ref_bf16(x, W_x) + ref_bf16(h, W_h)).astype(np.float64) + b
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    c = f * c + i * g
    return o * np.tanh(c), c


def _layer_and_input(cell_cls, seed, B, T, H, D=16):
    """A layer of ``cell_cls(D, H)`` with weights uniform in [-0.3, 0.3], and a float32 (B, T, D) input."""
    rng = np.random.default_rng(seed)
    layer = Recurrent(cell_cls(D, H))
    for _, p, _ in layer.named_parameters():
        p[...] = rng.uniform(-0.3, 0.3, p.shape)
    return layer, rng.standard_normal((B, T, D)).astype(np.float32)


@needs_bf16
def test_lstm_steps_match_the_reference(in_bf16):
    """Each step of the training forward and of the forward-only loop, from the kernel's own previous
    state: no error carried from step to step, so the bound stays tight. 2e-6 covers the float32
    accumulation order (k = 48: 3e-6 |a||b| relative, |a||b| ~ 1 here) before the gates, and the
    compiled float32 tanh (2.7e-7); bf16 rounding moves h by ~1e-3."""
    B, T, H = 8, 6, 32
    layer, x = _layer_and_input(LSTMCell, 3, B, T, H)
    W_x, W_h, b = (layer.cell.params[k] for k in ("W_x", "W_h", "b"))
    (y, (hT, cT)), cache = layer.forward(x)
    y = np.array(y)
    with no_grad():
        (y_eval, _), _ = layer.forward(x)
    # float32 state either way (bf16 only inside the products): eval and training forward run the same kernels
    # except the compiled tanh (2.7e-7 error, see docstring); through 6 steps ~1e-6; atol 2e-6.
    np.testing.assert_allclose(y_eval, y, atol=2e-6)
    h, far = np.zeros((B, H), np.float32), 0.0
    for t in range(T):
        c_prev = cache.steps[t].c_prev
        h_ref, c_ref = _reference_step(x[:, t], h, c_prev, W_x, W_h, b, H)
        # reference step in float64 from the same bf16-rounded products: differences are the float32 state and
        # tanh (2.7e-7), ~1e-6; atol 2e-6 while bf16 rounding itself moves h by ~1e-3 (checked below).
        np.testing.assert_allclose(y[:, t], h_ref, atol=2e-6, err_msg=f"step {t}")
        a32 = (x[:, t] @ W_x + h @ W_h).astype(np.float64) + b    # without rounding: visibly different
        far = max(far, np.abs(a32 - ((ref_bf16(x[:, t], W_x) + ref_bf16(h, W_h)) + b)).max())
        h = y[:, t]
    # as above for the cell state: ~1e-6 float32/tanh error; atol 2e-6.
    np.testing.assert_allclose(cT, c_ref, atol=2e-6)
    assert far > 1e-3


def _reference_gru_step(x, h, W_x, W_h, b, b_hn, H):
    xw = ref_bf16(x, W_x).astype(np.float64) + b
    hw = ref_bf16(h, W_h).astype(np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, z = sig(xw[:, :H] + hw[:, :H]), sig(xw[:, H:2 * H] + hw[:, H:2 * H])
    n = np.tanh(xw[:, 2 * H:] + r * (hw[:, 2 * H:] + b_hn))
    return n + z * (h - n)


@needs_bf16
def test_gru_steps_match_the_reference(in_bf16):
    """As for the LSTM: each step from the kernel's own previous h, training forward and no_grad."""
    from rnnlab.cells import GRUCell

    B, T, H = 8, 6, 32
    layer, x = _layer_and_input(GRUCell, 5, B, T, H)
    W_x, W_h, b, b_hn = (layer.cell.params[k] for k in ("W_x", "W_h", "b", "b_hn"))
    (y, _), _ = layer.forward(x)
    y = np.array(y)
    with no_grad():
        (y_eval, _), _ = layer.forward(x)
    # as for the LSTM: float32 state, compiled tanh/sigmoid error ~3e-7 over 6 steps; atol 2e-6.
    np.testing.assert_allclose(y_eval, y, atol=2e-6)
    h = np.zeros((B, H), np.float32)
    for t in range(T):
        # as for the LSTM: the float64 reference from the same bf16 products; atol 2e-6.
        np.testing.assert_allclose(y[:, t], _reference_gru_step(x[:, t], h, W_x, W_h, b, b_hn, H), atol=2e-6,
                                   err_msg=f"step {t}")
        h = y[:, t]


def _grads(model, ids, dtype):
    model.astype(dtype)
    model.zero_grad()
    loss = SoftmaxCrossEntropy()
    (logits, _), cache = model.forward(ids[:, :-1])
    value, lc = loss.forward(logits, ids[:, 1:])
    model.backward((loss.backward(1.0, lc), None), cache)
    return {name: np.array(g, dtype=np.float64) for name, _, g in model.named_parameters()}


@needs_bf16
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradient_error_against_float64(cell, monkeypatch, capsys):
    """A realistic small char-LM step (2 x 128 LSTM, B = 32, T = 64): the bf16 gradient's relative
    error (per parameter, Frobenius) against float64 stays within 2e-2; bf16's unit roundoff is
    3.9e-3 and the measured figure is printed (-s). fp32's, for scale, must be far smaller."""
    rng = np.random.default_rng(4)
    V = 60
    ids = rng.integers(0, V, (32, 65))
    model = CharRNN(ModelConfig(vocab_size=V, cell=cell, hidden_size=128, num_layers=2, embedding_size=32,
                                dropout=0.0))
    state = {k: v.copy() for k, v in model.state_dict().items()}
    g64 = _grads(model, ids, np.float64)
    model.load_state_dict(state)
    g32 = _grads(model, ids, np.float32)
    model.load_state_dict(state)
    monkeypatch.setattr(precision, "_current", "bf16")
    g16 = _grads(model, ids, np.float32)

    def rel(g):
        return {k: float(np.linalg.norm(g[k] - g64[k]) / np.linalg.norm(g64[k])) for k in g64}

    e16, e32 = rel(g16), rel(g32)
    with capsys.disabled():
        print(f"\n{cell}: bf16 gradient error vs float64: max {max(e16.values()):.2e} "
              f"(fp32: {max(e32.values()):.2e}); per parameter: "
              + ", ".join(f"{k} {v:.1e}" for k, v in e16.items()))
    # bf16 inputs (8 mantissa bits, unit roundoff 2^-9 ~ 2e-3) give gradient errors of ~3e-3 (printed above,
    # measured per parameter); 2e-2 is ~5x that and still catches a wrong gradient (O(1)).
    assert max(e16.values()) < 2e-2
    # float32 gradients' error vs float64 is a few float32 ulps grown through sums (printed above as fp32), so 1e-4 splits
    # float32 (below) from bf16 (above, ~2e-3): a bf16 path that silently ran float32 fails here.
    assert max(e32.values()) < 1e-4 < min(e16.values())


@needs_bf16
def test_bf16_training_loss_follows_fp32(tmp_path, monkeypatch):
    """40 steps on a small repetitive text, same seed: the bf16 loss curve stays within 0.05 nats of
    fp32's at every logged step, and both fall."""
    from rnnlab.tasks.charlm import train
    from rnnlab.train.config import TrainConfig

    monkeypatch.setenv("RNNLAB_BF16_EMULATED", "1")   # the same numbers where oneMKL only emulates bf16
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 300)
    curves = {}
    for p in ("fp32", "bf16"):
        cfg = TrainConfig(corpus=str(text), hidden_size=64, num_layers=2, embedding_size=16, batch_size=16,
                          seq_len=32, max_steps=40, eval_every=1000, log_every=5, precision=p, seed=3)
        train(cfg, out=str(tmp_path / p), log=lambda s: None)
        rows = [json.loads(line) for line in (tmp_path / p / "metrics.jsonl").read_text().splitlines()]
        curves[p] = np.array([r["loss"] for r in rows if r.get("split") == "train"])
    assert len(curves["fp32"]) >= 6 and curves["fp32"][-1] < curves["fp32"][0] - 0.5
    assert np.max(np.abs(curves["bf16"] - curves["fp32"])) < 0.05
    assert precision.current() == "fp32"   # restored after the run
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert config["precision"] == config["blas"]["precision"] == "bf16"


@needs_bf16
def test_eval_command_and_api_take_the_precision(tmp_path, monkeypatch, capsys):
    """`rnnlab train/eval --precision bf16` and CharLM(precision=...).evaluate(precision=...): the bf16
    score of a small GRU run is within 0.01 bits/char of its fp32 score (emulated where needed)."""
    from rnnlab import CharLM
    from rnnlab.cli import main

    monkeypatch.setenv("RNNLAB_BF16_EMULATED", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("abc bca cab\naaa " * 150)
    run = tmp_path / "run"
    assert main(["train", str(text), "--out", str(run), "--cell", "gru", "--hidden-size", "16", "--num-layers", "1",
                 "--batch-size", "4", "--seq-len", "12", "--max-steps", "6", "--precision", "bf16"]) == 0
    capsys.readouterr()
    bits = {}
    for p in ("fp32", "bf16"):
        assert main(["eval", str(run), "--split", "val", "--json", "--precision", p]) == 0
        bits[p] = json.loads(capsys.readouterr().out)["bits_per_char"]
    assert abs(bits["bf16"] - bits["fp32"]) < 0.01 and bits["bf16"] != bits["fp32"]
    lm = CharLM.load(run)
    assert lm.config.precision == "bf16"
    fp, bf = (lm.evaluate(text="abc bca cab\n" * 20, precision=p)["bits_per_char"] for p in ("fp32", "bf16"))
    assert abs(bf - fp) < 0.01 and bf != fp
    with pytest.raises(ConfigError, match="--precision must be one of"):
        lm.evaluate(text="abc bca", precision="fp16")


@needs_bf16
@pytest.mark.parametrize("compiled", [True, False])
def test_lstm_forward_only_loop_takes_the_bf16_products_with_either_steps(in_bf16, compiled):
    """The forward-only loop (no_grad: evaluation, scoring) multiplies as the training forward does. With
    the NumPy steps (no numba, RNNLAB_ACCEL=0, NUMBA_DISABLE_JIT=1) it once took a float32 np.matmul
    instead: a bf16 evaluation then differed from the training forward by up to 6e-4."""
    from rnnlab.fast import accel

    if compiled and not accel.available():
        pytest.skip(f"no compiled steps: {accel.describe()}")
    layer, x = _layer_and_input(LSTMCell, 3, 8, 6, 32)
    with accel.using(compiled):
        (y, _), _ = layer.forward(x)
        y = np.array(y)
        with no_grad():
            (y_eval, _), _ = layer.forward(x)
    np.testing.assert_array_equal(y_eval, y)
