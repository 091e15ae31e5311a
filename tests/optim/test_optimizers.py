"""rnnlab.optim optimizers: in-place updates, dtypes, checkpoints, registry, validation."""
import json

import numpy as np
import pytest

from rnnlab.module import Module
from rnnlab.optim import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, RMSprop, make_optimizer

CONFIGS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("adagrad", dict(lr=0.1, eps_inside_sqrt=True, initial_accumulator_value=0.1)),
    ("rmsprop", dict(lr=1e-2, centered=True, momentum=0.9, weight_decay=0.01)),
    ("rmsprop", dict(lr=1e-2)),
    ("adam", dict(lr=1e-2, weight_decay=0.01)),
    ("adam", dict(lr=1e-2, amsgrad=True)),
    ("adamw", dict(lr=1e-2, weight_decay=0.1)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]


class Toy(Module):
    """Two parameters in a child, one in the root: dotted names like a real model."""

    def __init__(self, dtype, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.add_param("b", rng.normal(size=(5,)).astype(dtype))
        child = self.add_child("cell", Module())
        child.add_param("W", rng.normal(size=(4, 5)).astype(dtype))
        child.add_param("U", rng.normal(size=(2, 3, 2)).astype(dtype))


def _run(opt, model, rng, steps):
    for _ in range(steps):
        for _, _, g in model.named_parameters():
            g[...] = rng.normal(size=g.shape)
        opt.step()


def _save_and_load(state, tmp_path):
    """Round trip through .npz (arrays) + JSON (scalars), as a checkpoint would."""
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    np.savez(tmp_path / "opt.npz", **arrays)
    (tmp_path / "opt.json").write_text(json.dumps(scalars))
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        loaded = {k: f[k] for k in f.files}
    loaded.update(json.loads((tmp_path / "opt.json").read_text()))
    return loaded


def _train(name, kwargs, dtype, rng, steps, model=None):
    """``steps`` updates; the learning rate is halved after the fifth."""
    model = model or Toy(dtype)
    opt = make_optimizer(name, model.named_parameters(), **kwargs)
    _run(opt, model, rng, min(steps, 5))
    opt.lr *= 0.5
    _run(opt, model, rng, steps - 5)
    return model, opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_state_dict_resume_is_exact(name, kwargs, dtype, tmp_path):
    straight, ref = _train(name, kwargs, dtype, np.random.default_rng(1), 10)

    rng = np.random.default_rng(1)
    first, opt1 = _train(name, kwargs, dtype, rng, 5)
    saved = _save_and_load(opt1.state_dict(), tmp_path)
    resumed = Toy(dtype, seed=99)
    resumed.load_state_dict(first.state_dict())
    opt2 = make_optimizer(name, resumed.named_parameters(), **kwargs)
    opt2.lr = 123.0  # the saved (halved) lr must override this
    opt2.load_state_dict(saved)
    assert opt2.step_count == 5 and opt2.lr == opt1.lr
    _run(opt2, resumed, rng, 5)

    for (n, p, _), (_, q, _) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert p.dtype == q.dtype == dtype
        np.testing.assert_array_equal(p, q, err_msg=n)
    final = opt2.state_dict()
    assert final.keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        np.testing.assert_array_equal(final[key], value, err_msg=key)


def test_state_dict_values_are_arrays_or_json_scalars():
    model = Toy(np.float32)
    opt = Adam(model.named_parameters(), amsgrad=True)
    state = opt.state_dict()
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    assert json.loads(json.dumps(scalars)) == scalars
    assert {"type", "step", "lr"} <= scalars.keys()
    assert "m/cell.W" in state and "v_max/b" in state
    state["m/cell.W"][...] = 7.0  # a copy: mutating it must not touch the optimizer
    assert not opt.state["m"]["cell.W"].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_updates_in_place_keep_dtype_and_leave_grads(name, kwargs, dtype):
    model = Toy(dtype)
    before = {n: (p, p.copy()) for n, p, _ in model.named_parameters()}
    opt = make_optimizer(name, model.named_parameters(), **kwargs)
    rng = np.random.default_rng(3)
    for _ in range(3):
        grads = {}
        for n, _, g in model.named_parameters():
            g[...] = rng.normal(size=g.shape)
            grads[n] = g.copy()
        opt.step()
        for n, _, g in model.named_parameters():
            np.testing.assert_array_equal(g, grads[n])  # gradients are read-only to step()
    for n, p, _ in model.named_parameters():
        assert p is before[n][0] and p.dtype == dtype
        assert not np.array_equal(p, before[n][1])
    for buffers in opt.state.values():
        assert all(b.dtype == dtype for b in buffers.values())


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_float32_tracks_float64(name, kwargs):
    m32, _ = _train(name, kwargs, np.float32, np.random.default_rng(4), 8)
    m64, _ = _train(name, kwargs, np.float64, np.random.default_rng(4), 8)
    for (n, p, _), (_, q, _) in zip(m32.named_parameters(), m64.named_parameters()):
        # float32 vs float64 after 8 steps: float32 gradients carry a few ulps (2^-24 ~ 6e-8) of rounding and
        # adaptive optimisers divide by sqrt(v), passing it on to the update; measured worst over all configs:
        # 8.5 % of (1e-5 + 1e-4|q|) under OPENBLAS_CORETYPE Sandybridge, Haswell and default alike, so rtol 1e-5 /
        # atol 1e-6 (was 1e-4 / 1e-5, ~100x above the error) still leave ~12x and catch a half-precision slip.
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6, err_msg=n)


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_minimises_a_quadratic(name, kwargs):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(8, 4))
    b = rng.normal(size=8)
    x = np.zeros(4)
    dx = np.zeros(4)
    opt = make_optimizer(name, [("x", x, dx)], **kwargs)
    loss = lambda: 0.5 * np.sum((a @ x - b) ** 2)  # noqa: E731
    start = loss()
    for _ in range(200):
        dx[...] = a.T @ (a @ x - b) / 8  # overwritten in place, as backward() would
        opt.step()
    assert loss() < 0.8 * start


def test_sgd_step_is_exact_and_lr_is_live():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    opt = SGD([("p", p, g)], lr=0.0)
    opt.step()
    np.testing.assert_array_equal(p, [1.0, -2.0])
    opt.lr = 2.0
    opt.step()
    np.testing.assert_array_equal(p, [0.0, -2.5])


def test_sgd_momentum_by_hand():
    p, g = np.zeros(1), np.ones(1)
    opt = SGD([("p", p, g)], lr=1.0, momentum=0.5)
    opt.step()  # buf = 1,    p = -1
    opt.step()  # buf = 1.5,  p = -2.5
    np.testing.assert_array_equal(p, [-2.5])
    q, h = np.zeros(1), np.ones(1)
    nest = SGD([("q", q, h)], lr=1.0, momentum=0.5, nesterov=True)
    nest.step()  # buf = 1, step 1 + 0.5
    np.testing.assert_array_equal(q, [-1.5])


def test_adagrad_eps_inside_sqrt_is_min_char_rnn():
    rng = np.random.default_rng(6)
    p = rng.normal(size=(3, 3))
    g = np.zeros_like(p)
    ref, mem = p.copy(), np.zeros_like(p)
    opt = Adagrad([("p", p, g)], lr=0.1, eps_inside_sqrt=True)
    for _ in range(10):
        g[...] = rng.normal(size=g.shape)
        # the update of Karpathy's min-char-rnn.py
        mem += g * g
        ref += -0.1 * g / np.sqrt(mem + 1e-8)
        opt.step()
    # float64, the same update as the reference loop in a different operation order: ~10 steps * few ulps; 1e-13.
    np.testing.assert_allclose(p, ref, rtol=1e-13)


def test_adamw_decay_is_decoupled():
    # With a zero gradient, Adam's L2 decay still feeds the moments, AdamW's does not.
    p = np.full(2, 3.0)
    g = np.zeros(2)
    opt = AdamW([("p", p, g)], lr=0.1, weight_decay=0.5)
    opt.step()
    np.testing.assert_array_equal(p, 3.0 * (1 - 0.05))
    assert not opt.state["m"]["p"].any()
    q = np.full(2, 3.0)
    Adam([("q", q, np.zeros(2))], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(q, 3.0 - 0.1, rtol=1e-6)  # first Adam step is ~lr * sign


def test_registry_and_make_optimizer():
    assert set(OPTIMIZERS) == {"sgd", "adagrad", "rmsprop", "adam", "adamw"}
    model = Toy(np.float64)
    assert isinstance(make_optimizer("RMSprop", model.named_parameters()), RMSprop)
    assert isinstance(make_optimizer("adamw", model.named_parameters()), AdamW)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs", model.named_parameters())


def test_bad_settings_are_rejected():
    model = Toy(np.float64)
    with pytest.raises(ValueError):
        SGD(model.named_parameters(), lr=-1.0)
    with pytest.raises(ValueError):
        SGD(model.named_parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        Adam(model.named_parameters(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(ValueError, match="shape"):
        Adam([("p", np.zeros(3), np.zeros(4))])
    with pytest.raises(ValueError, match="duplicate"):
        Adam([("p", np.zeros(3), np.zeros(3)), ("p", np.zeros(3), np.zeros(3))])
    with pytest.raises(TypeError):
        Adam([("p", np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64))])


def test_load_state_dict_rejects_mismatches():
    model = Toy(np.float64)
    adam = Adam(model.named_parameters())
    adam.step()
    with pytest.raises(ValueError, match="'Adam', not 'AdamW'"):
        AdamW(model.named_parameters()).load_state_dict(adam.state_dict())
    bad = adam.state_dict()
    del bad["v/cell.U"]
    with pytest.raises(ValueError, match="missing"):
        Adam(model.named_parameters()).load_state_dict(bad)
    bad = adam.state_dict()
    bad["m/b"] = np.zeros(6)
    with pytest.raises(ValueError, match="shape"):
        Adam(model.named_parameters()).load_state_dict(bad)
    # an AMSGrad state needs v_max buffers; a failed load changes nothing
    bad = adam.state_dict()
    bad["hp/amsgrad"] = True
    fresh = Adam(model.named_parameters())
    with pytest.raises(ValueError, match="v_max"):
        fresh.load_state_dict(bad)
    assert fresh.amsgrad is False and fresh.step_count == 0


def test_saved_settings_win_on_load():
    model = Toy(np.float64)
    src = SGD(model.named_parameters(), lr=0.1, momentum=0.9)
    src.step()
    dst = SGD(model.named_parameters(), lr=0.1)
    dst.load_state_dict(src.state_dict())
    assert dst.momentum == 0.9 and "momentum" in dst.state
