"""Training loop: exact resume, checkpoints, divergence guard."""
import json
import math

import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint
from rnnlab.errors import ConfigError
from rnnlab.tasks.charlm import train
from rnnlab.train import DivergenceError, TrainConfig
from rnnlab.train.progress import MetricsLog


def _text(tmp_path, n=6000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n"]
    text = "".join(rng.choice(words, size=n // 4))
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _cfg(corpus, **kw):
    base = dict(corpus=corpus, cell="lstm", hidden_size=16, num_layers=2, embedding_size=8, dropout=0.1,
                batch_size=4, seq_len=8, eval_every=5, log_every=1, max_steps=12, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _quiet(*a, **k):
    pass


def _trainer(cfg, corpus, run_dir):
    from rnnlab.tasks.charlm import CharLMTask
    from rnnlab.train.trainer import Trainer

    tr, va, _ = corpus.split()
    return Trainer(CharLMTask(cfg, corpus.vocab, tr, va), cfg, run_dir, log=_quiet)


def _train_losses(run_dir):
    return [(r["step"], r["loss"]) for r in MetricsLog(run_dir / "metrics.jsonl").read() if r["split"] == "train"]


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path, monkeypatch):
    from rnnlab.train.trainer import Trainer

    corpus = _text(tmp_path)
    full = tmp_path / "full"
    train(_cfg(corpus), out=str(full), log=_quiet)
    # The same run, interrupted (Ctrl-C) at step 7 — between evaluations — then resumed.
    original = Trainer.train_step

    def interrupt_once(self):
        if self.step == 7 and not getattr(Trainer, "_interrupted", False):
            Trainer._interrupted = True
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", interrupt_once)
    part = tmp_path / "part"
    first = train(_cfg(corpus), out=str(part), log=_quiet)
    assert first["stop"].startswith("interrupted") and first["steps"] == 7 and first["exit_code"] == 130
    summary = train(_cfg(corpus), resume=str(part), log=_quiet)
    assert summary["steps"] == 12
    a, b = _train_losses(full), _train_losses(part)
    assert [s for s, _ in a] == list(range(1, 13))
    assert a == b  # bit-identical losses, step for step (dropout masks, data, optimizer, schedule)
    wa, _ = load_checkpoint(full / "last.npz")
    wb, _ = load_checkpoint(part / "last.npz")
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


def test_checkpoint_holds_config_vocab_and_optimizer_state(tmp_path):
    run = tmp_path / "run"
    train(_cfg(_text(tmp_path), max_steps=5), out=str(run), log=_quiet)
    arrays, meta = load_checkpoint(run / "best.npz")
    assert meta["config"]["hidden_size"] == 16
    assert set(meta["vocab"]) and meta["trainer"]["step"] == 5
    assert any(k.startswith("optim/") for k in arrays)
    assert any(k.startswith("carry/") for k in arrays)
    config = json.loads((run / "config.json").read_text())
    assert config["cell"] == "lstm" and config["precision"] == "fp32"
    # which library ran the step products, recorded once training returns (rnnlab.blas.choice)
    assert config["blas"]["precision"] == "fp32" and config["blas"]["requested"] in ("auto", "openblas", "mkl")
    assert isinstance(config["blas"]["chosen"], dict)
    assert all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f")


def test_validation_improves_on_learnable_text(tmp_path):
    run = tmp_path / "run"
    summary = train(_cfg(_text(tmp_path, 20000), max_steps=120, eval_every=40, dropout=0.0, hidden_size=32,
                         batch_size=8, seq_len=16, lr=1e-2), out=str(run), log=_quiet)
    vals = [r["bpc"] for r in MetricsLog(run / "metrics.jsonl").read() if r["split"] == "val"]
    assert vals[-1] < vals[0] - 0.5
    assert summary["best_val_bpc"] < 2.5  # uniform over the vocabulary would be log2(V) ~ 4


def _irnn_cfg(corpus, guard):
    # The users' story: ReLU + identity, plain SGD, no clipping, far too high a learning rate.
    return _cfg(corpus, cell="irnn", optimizer="sgd", lr=5.0, clip=0.0, dropout=0.0, guard=guard,
                hidden_size=32, num_layers=1, max_steps=30, eval_every=10, seq_len=16)


def test_guard_abort_names_the_cause(tmp_path):
    with pytest.raises(DivergenceError) as info:
        train(_irnn_cfg(_text(tmp_path), "abort"), out=str(tmp_path / "run"), log=_quiet)
    msg = str(info.value)
    assert "diverged" in msg and "layer 0" in msg and "time step" in msg
    assert "clipping" in msg and "learning rate" in msg


def test_unguarded_irnn_really_produces_nan(tmp_path):
    """Without the guard the same settings poison the weights: the failure the guard exists for."""
    from rnnlab.data import EncodedCorpus

    corpus = EncodedCorpus.from_source(_text(tmp_path))
    tr, va, _ = corpus.split()
    cfg = _irnn_cfg(None, "skip").validate()
    trainer = _trainer(cfg, corpus, tmp_path)
    trainer.guard.verdict = lambda *args: None  # switch the guard off
    for _ in range(30):
        trainer.train_step()
    weights = np.concatenate([p.ravel() for _, p, _ in trainer.model.named_parameters()])
    assert not np.isfinite(weights).all()


def test_guard_backoff_keeps_training_finite(tmp_path):
    run = tmp_path / "run"
    summary = train(_irnn_cfg(_text(tmp_path), "backoff"), out=str(run), log=_quiet)
    assert summary["steps"] == 30
    records = MetricsLog(run / "metrics.jsonl").read()
    assert any(r["split"] == "guard" for r in records)
    assert all(math.isfinite(r["loss"]) for r in records if r["split"] in ("train", "val"))
    arrays, meta = load_checkpoint(run / "last.npz")
    assert all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f")
    assert meta["trainer"]["lr_scale"] < 1.0


@pytest.mark.parametrize("change, words", [({"cell": "transformer"}, "unknown --cell"),
                                           ({"dropout": 1.5}, "dropout"),
                                           ({"lr": -1.0}, "lr"),
                                           ({"guard": "pray"}, "guard")])
def test_bad_config_is_a_clear_error(tmp_path, change, words):
    with pytest.raises(ConfigError, match=words):
        _cfg("x", **change).validate()


@pytest.mark.parametrize("cell, key", [("lstm", "saturated"), ("gru", "saturated"), ("rnn", "saturated"),
                                       ("irnn", "dead"), ("bnlstm", "saturated"), ("lnlstm", "saturated")])
def test_diagnostics_are_logged_per_layer(tmp_path, cell, key):
    run = tmp_path / "run"
    train(_cfg(_text(tmp_path), cell=cell, max_steps=4, eval_every=4, diagnostics=True), out=str(run), log=_quiet)
    rows = [r for r in MetricsLog(run / "metrics.jsonl").read() if r["split"] == "train"]
    assert len(rows) == 4
    for r in rows:
        for layer in ("l0", "l1"):
            assert r[f"h_norm/{layer}"] > 0 and r[f"h_max/{layer}"] > 0 and r[f"grad_norm/{layer}"] > 0
            assert 0.0 <= r[f"{key}/{layer}"] <= 1.0


def test_diagnostics_see_saturation_and_dead_units():
    from rnnlab.models import CharRNN, ModelConfig
    from rnnlab.train.diagnostics import layer_diagnostics

    ids = np.random.default_rng(0).integers(0, 5, size=(3, 6))
    tanh = CharRNN(ModelConfig(5, "rnn", 8, 1, 4))
    tanh.rnn.layers[0].cell.params["W_x"][...] *= 100.0  # drive tanh into its flat tails
    (_, _), cache = tanh.forward(ids)
    assert layer_diagnostics(tanh, cache.rnn)["saturated/l0"] > 0.5
    relu = CharRNN(ModelConfig(5, "irnn", 8, 1, 4))
    relu.rnn.layers[0].cell.params["b"][...] = -10.0  # every unit below its kink
    (_, _), cache = relu.forward(ids)
    assert layer_diagnostics(relu, cache.rnn)["dead/l0"] == 1.0


def test_resume_from_weights_only_checkpoint_is_a_clear_error(tmp_path):
    from rnnlab.api import save_model
    from rnnlab.data import Vocab
    from rnnlab.errors import CheckpointError
    from rnnlab.models import CharRNN, ModelConfig

    run = tmp_path / "weights"
    run.mkdir()
    save_model(run / "best.npz", CharRNN(ModelConfig(3, "gru", 4, 1, 2)), Vocab("abc"))
    with pytest.raises(CheckpointError, match="weights only"):
        train(_cfg(_text(tmp_path)), resume=str(run), log=_quiet)


def test_time_budgeted_cosine_anneals_over_the_budget(tmp_path):
    from rnnlab.data import EncodedCorpus

    corpus = EncodedCorpus.from_source(_text(tmp_path))
    tr, va, _ = corpus.split()
    cfg = _cfg(None, schedule="cosine", max_steps=0, max_minutes=2.0, lr=1e-2, min_lr=1e-4).validate()
    trainer = _trainer(cfg, corpus, tmp_path)
    rates = []
    for seconds in (0.0, 30.0, 60.0, 90.0, 120.0, 500.0):
        trainer.elapsed = seconds
        rates.append(trainer.current_lr())
    # float64 schedule values (interpolations of 1e-2 and 1e-4): a few ulps; approx default rel 1e-6.
    assert rates[0] == pytest.approx(1e-2) and rates[2] == pytest.approx((1e-2 + 1e-4) / 2)
    # float64 schedule values: a few ulps; default rel 1e-6.
    assert rates[4] == pytest.approx(1e-4) and rates[5] == pytest.approx(1e-4)
    assert all(a > b for a, b in zip(rates[:4], rates[1:5]))


def test_time_budgeted_cosine_with_warmup_builds_and_warms_up(tmp_path):
    """A time budget, a cosine and a warm-up together (the --cell irnn preset) once failed to start."""
    from rnnlab.data import EncodedCorpus

    corpus = EncodedCorpus.from_source(_text(tmp_path))
    cfg = _cfg(None, schedule="cosine", max_steps=0, max_minutes=2.0, lr=1e-2, warmup_steps=30).validate()
    trainer = _trainer(cfg, corpus, tmp_path)
    trainer.elapsed = 0.0
    # float64 warm-up factor times the rate: a few ulps; default rel 1e-6.
    assert trainer.current_lr() == pytest.approx(1e-2 / 30)
    trainer.step, trainer.elapsed = 29, 60.0
    # float64 warm-up factor times the rate: a few ulps; default rel 1e-6.
    assert trainer.current_lr() == pytest.approx(1e-2 / 2)
    with pytest.raises(ConfigError, match="--warmup-steps .30. must be below --max-steps .30."):
        _cfg("x", schedule="cosine", max_steps=30, warmup_steps=30).validate()


def test_cosine_without_a_budget_is_a_config_error():
    with pytest.raises(ConfigError, match="cosine"):
        _cfg("x", schedule="cosine", max_steps=0, max_minutes=0).validate()
    with pytest.raises(ConfigError, match="schedule"):
        _cfg("x", schedule="wobbly").validate()


def test_gradient_spikes_are_left_to_clipping_when_it_is_on(tmp_path):
    """IRNNs spike constantly; with clipping on a spike is bounded and must not trigger backoff."""
    from rnnlab.data import EncodedCorpus

    corpus = EncodedCorpus.from_source(_text(tmp_path))
    tr, va, _ = corpus.split()
    for clip, flagged in ((1.0, False), (0.0, True)):
        trainer = _trainer(_cfg(None, cell="irnn", clip=clip).validate(), corpus, tmp_path)
        for norm in (1.0, 1.2, 0.9, 1.1):
            trainer.guard.accept(norm)
        assert (trainer.guard.verdict(2.0, 1000.0) is not None) == flagged
        assert trainer.guard.verdict(float("nan"), 1.0) is not None  # non-finite is always caught


@pytest.mark.parametrize("options, words", [({"bogus": 1}, "do not fit the lstm cell"), ([1], "JSON object")])
def test_bad_cell_options_are_a_clear_error(options, words):
    with pytest.raises(ConfigError, match=words):
        _cfg("x", cell_options=options).validate()


def test_the_cli_gives_the_irnn_the_setting_that_trains_it_unless_told_otherwise(tmp_path, capsys):
    from rnnlab.cli import build_parser
    from rnnlab.commands.train import resolve_config

    def resolve(*argv):
        return resolve_config(build_parser().parse_args(["train", "x.txt", *argv]))

    cfg = resolve("--cell", "irnn")
    assert (cfg.optimizer, cfg.lr, cfg.clip, cfg.warmup_steps, cfg.cell_options) == \
        ("adam", 1e-3, 1.0, 30, {"identity_scale": 0.5})
    assert "--lr 0.001" in capsys.readouterr().err
    cfg = resolve("--cell", "irnn", "--optimizer", "sgd", "--identity-scale", "0.9")
    assert (cfg.optimizer, cfg.lr, cfg.cell_options) == ("sgd", 1e-3, {"identity_scale": 0.9})
    cfg = resolve("--cell", "irnn", "--lr", "0.05", "--warmup-steps", "0")
    assert (cfg.lr, cfg.warmup_steps, cfg.clip) == (0.05, 0, 1.0)
    assert resolve("--cell", "lstm").optimizer == "adam"
    run = tmp_path / "irnn"
    summary = train(resolve("--cell", "irnn").replace(corpus=_text(tmp_path), hidden_size=32, num_layers=1,
                                                       embedding_size=8, batch_size=8, seq_len=16, max_steps=40,
                                                       eval_every=20, dropout=0.0), out=str(run), log=_quiet)
    assert summary["steps"] == 40
    assert not [r for r in MetricsLog(run / "metrics.jsonl").read() if r["split"] == "guard"]


def test_resume_takes_back_the_blas_choices_instead_of_timing_again(tmp_path, monkeypatch):
    """Under RNNLAB_BLAS=auto the step products' library is chosen by timing, and OpenBLAS and MKL
    round differently: a resumed run must multiply with the libraries its checkpoint recorded."""
    from rnnlab.blas import choice

    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_cache", {})
    timed = []

    def openblas_faster(B, K, N):   # no MKL needed: the choice is OpenBLAS, so np.matmul runs
        timed.append((B, K, N))
        return {"openblas": 1e-6, "mkl": 2e-6}

    monkeypatch.setattr(choice, "_time_both", openblas_faster)
    corpus = _text(tmp_path)
    run = tmp_path / "run"
    train(_cfg(corpus, max_steps=6), out=str(run), log=_quiet)
    assert timed, "the LSTM's step products were never chosen"
    _, meta = load_checkpoint(run / "last.npz")
    recorded = meta["blas"]
    assert recorded and set(recorded.values()) == {"openblas"}
    assert set(recorded) == {f"{B}x{K}x{N}@{n}" for B, K, N, n in choice._cache}

    monkeypatch.setattr(choice, "_cache", {})   # a new process: nothing chosen yet

    def must_not_time(B, K, N):
        raise AssertionError(f"timed ({B}, {K}, {N}) again on resume instead of taking the checkpoint's choice")

    monkeypatch.setattr(choice, "_time_both", must_not_time)
    summary = train(_cfg(corpus, max_steps=10), resume=str(run), log=_quiet)
    assert summary["steps"] == 10
    assert choice.choices()["chosen"] == recorded


def test_blas_preset_ignores_what_does_not_parse_and_explicit_requests(monkeypatch):
    from rnnlab.blas import choice

    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setattr(choice, "_requested", "openblas")   # an explicit RNNLAB_BLAS wins over a checkpoint
    assert choice.preset({"4x16x64@1": "mkl"}) == 0 and choice._cache == {}
    monkeypatch.setattr(choice, "_requested", "auto")
    hostile = {"4x16x64@1": "mkl", "4x16@1": "mkl", "axbxc@1": "openblas", "4x16x64@2": "cublas",
               "0x16x64@1": "mkl", "8x16x64@x": "mkl"}
    assert choice.preset(hostile) == 1 and choice._cache == {(4, 16, 64, 1): "mkl"}
    assert choice.preset(["4x16x64@1"]) == 0 and choice.preset(None) == 0


def test_resume_is_bit_exact_when_a_new_timing_would_pick_the_other_library(tmp_path, monkeypatch):
    """The real libraries: a run that multiplied with MKL is resumed where timing now favours
    OpenBLAS (as it can under load); its weights must still equal those of the uninterrupted run."""
    from rnnlab.blas import choice
    from rnnlab.train.trainer import Trainer

    if not choice.mkl_loadable():
        pytest.skip("the mkl extra is not installed")
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 2e-6, "mkl": 1e-6})
    corpus = _text(tmp_path)
    cfg = dict(hidden_size=48, embedding_size=16, max_steps=10)
    full = tmp_path / "full"
    train(_cfg(corpus, **cfg), out=str(full), log=_quiet)
    assert set(choice.choices()["chosen"].values()) == {"mkl"}

    monkeypatch.setattr(choice, "_cache", {})
    original = Trainer.train_step
    interrupted = []

    def interrupt_once(self):
        if self.step == 5 and not interrupted:
            interrupted.append(self.step)
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", interrupt_once)
    part = tmp_path / "part"
    assert train(_cfg(corpus, **cfg), out=str(part), log=_quiet)["steps"] == 5
    monkeypatch.setattr(Trainer, "train_step", original)
    monkeypatch.setattr(choice, "_cache", {})   # a new process, where OpenBLAS now times faster
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 1e-6, "mkl": 2e-6})
    assert train(_cfg(corpus, **cfg), resume=str(part), log=_quiet)["steps"] == 10
    wa, _ = load_checkpoint(full / "last.npz")
    wb, _ = load_checkpoint(part / "last.npz")
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
