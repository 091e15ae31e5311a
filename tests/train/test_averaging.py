"""Weight averaging in the one training loop (``--average``): a NumPy reference, training untouched,
exact resume, best.npz holding the winner."""
import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint
from rnnlab.errors import ConfigError
from rnnlab.tasks.charlm import train
from rnnlab.train import TrainConfig
from rnnlab.train.averaging import PREFIX, WeightAverage
from rnnlab.train.progress import MetricsLog


def _text(tmp_path, n=6000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n"]
    path = tmp_path / "corpus.txt"
    path.write_text("".join(rng.choice(words, size=n // 4)), encoding="utf-8")
    return str(path)


def _cfg(corpus, **kw):
    base = dict(corpus=corpus, cell="lstm", hidden_size=16, num_layers=1, embedding_size=8, dropout=0.1,
                batch_size=4, seq_len=8, eval_every=4, log_every=1, max_steps=12, seed=3, average=0.9)
    base.update(kw)
    return TrainConfig(**base)


def _quiet(*a, **k):
    pass


def _rows(run, split):
    return [r for r in MetricsLog(run / "metrics.jsonl").read() if r["split"] == split]


def test_the_average_equals_a_numpy_reference(tmp_path, monkeypatch):
    from rnnlab.train.trainer import Trainer

    seen = []   # the weights after every step, and the initial ones
    original = Trainer.train_step

    def record(self):
        if not seen:
            seen.append({n: p.copy() for n, p, _ in self.optimizer.params})
        out = original(self)
        seen.append({n: p.copy() for n, p, _ in self.optimizer.params})
        return out

    monkeypatch.setattr(Trainer, "train_step", record)
    run = tmp_path / "run"
    train(_cfg(_text(tmp_path)), out=str(run), log=_quiet)
    arrays, meta = load_checkpoint(run / "last.npz")
    assert meta["trainer"]["average_count"] == 12 and len(seen) == 13
    for name in seen[0]:
        ref = seen[0][name].copy()
        for n, w in enumerate(seen[1:]):
            d = min(0.9, (1 + n) / (10 + n))
            ref = ref - np.float32(1 - d) * (ref - w[name])
        np.testing.assert_array_equal(arrays[PREFIX + name], ref, err_msg=name)
        assert not np.array_equal(ref, seen[-1][name])   # it is an average, not the last weights


def test_training_is_the_same_with_and_without_it(tmp_path):
    corpus = _text(tmp_path)
    plain, avg = tmp_path / "plain", tmp_path / "avg"
    train(_cfg(corpus, average=0.0), out=str(plain), log=_quiet)
    train(_cfg(corpus), out=str(avg), log=_quiet)
    assert [r["loss"] for r in _rows(plain, "train")] == [r["loss"] for r in _rows(avg, "train")]
    pv, av = _rows(plain, "val"), _rows(avg, "val")
    assert [r["loss"] for r in pv] == [r["loss"] for r in av]   # the current weights score the same
    assert all("avg_loss" in r and "avg_loss" not in p for r, p in zip(av, pv))
    a, _ = load_checkpoint(plain / "last.npz")
    b, _ = load_checkpoint(avg / "last.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not any(k.startswith(PREFIX) for k in a) and any(k.startswith(PREFIX) for k in b)


def test_resume_is_bit_exact_with_it_on(tmp_path, monkeypatch):
    from rnnlab.train.trainer import Trainer

    corpus = _text(tmp_path)
    full, part = tmp_path / "full", tmp_path / "part"
    train(_cfg(corpus), out=str(full), log=_quiet)
    original = Trainer.train_step
    state = {"done": False}

    def interrupt_once(self):
        if self.step == 6 and not state["done"]:
            state["done"] = True
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", interrupt_once)
    assert train(_cfg(corpus), out=str(part), log=_quiet)["steps"] == 6
    assert train(_cfg(corpus), resume=str(part), log=_quiet)["steps"] == 12
    def scores(run):
        return [{k: v for k, v in r.items() if k not in ("elapsed", "time")} for r in _rows(run, "val")]

    assert scores(full) == scores(part) and "avg_loss" in scores(full)[0]
    for name in ("last.npz", "best.npz"):
        a, ma = load_checkpoint(full / name)
        b, mb = load_checkpoint(part / name)
        assert ma["trainer"]["weights"] == mb["trainer"]["weights"]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")


def test_best_holds_the_weights_that_won(tmp_path):
    run = tmp_path / "run"
    summary = train(_cfg(_text(tmp_path), max_steps=40, eval_every=5, average=0.95, lr=1e-2), out=str(run),
                    log=_quiet)
    key = summary["selection"]
    rows = _rows(run, "val")
    scores = [min(r[key], r[f"avg_{key}"]) for r in rows]
    won = rows[int(np.argmin(scores))]
    arrays, meta = load_checkpoint(run / "best.npz")
    assert meta["trainer"]["step"] == won["step"]
    expect = "average" if won[f"avg_{key}"] < won[key] else "current"
    assert meta["trainer"]["weights"] == expect
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    same = all(np.array_equal(params[k[len(PREFIX):]], v) for k, v in arrays.items() if k.startswith(PREFIX))
    assert same == (expect == "average")


def test_applied_restores_the_weights_even_on_error():
    w = np.arange(6, dtype=np.float32)
    avg = WeightAverage([("w", w, None)], 0.5)
    w += 10
    avg.update()
    with pytest.raises(RuntimeError):
        with avg.applied():
            assert np.array_equal(w, avg.avg["w"])
            raise RuntimeError
    np.testing.assert_array_equal(w, np.arange(6, dtype=np.float32) + 10)


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_a_decay_outside_0_1_is_a_config_error(tmp_path, value):
    with pytest.raises(ConfigError, match="--average"):
        _cfg(_text(tmp_path), average=value).validate()
