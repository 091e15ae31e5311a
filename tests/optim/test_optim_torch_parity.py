"""Parity of rnnlab.optim with torch.optim / torch.nn.utils / lr_scheduler (float64)."""
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnlab.optim import (  # noqa: E402
    Constant, Cosine, StepDecay, Warmup, clip_grad_norm, clip_grad_value, make_optimizer,
)

SHAPES = [(3, 4), (4,), (2, 3, 5), (1,)]
STEPS = 12

# (our registry name, kwargs shared by both libraries, torch class name)
CONFIGS = [
    ("sgd", dict(lr=0.1), "SGD"),
    ("sgd", dict(lr=0.1, momentum=0.9), "SGD"),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True), "SGD"),
    ("sgd", dict(lr=0.05, momentum=0.8, weight_decay=0.1), "SGD"),
    ("sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), "SGD"),
    # eps given explicitly: our default is min-char-rnn's 1e-8, torch's is 1e-10
    ("adagrad", dict(lr=0.1, eps=1e-8), "Adagrad"),
    ("adagrad", dict(lr=0.1, eps=1e-10), "Adagrad"),
    ("adagrad", dict(lr=0.1, eps=1e-3, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2), "Adagrad"),
    ("rmsprop", dict(lr=1e-2), "RMSprop"),
    ("rmsprop", dict(lr=1e-2, alpha=0.9, momentum=0.9), "RMSprop"),
    ("rmsprop", dict(lr=1e-2, centered=True), "RMSprop"),
    ("rmsprop", dict(lr=1e-2, alpha=0.95, eps=1e-4, centered=True, momentum=0.5, weight_decay=0.1), "RMSprop"),
    ("adam", dict(lr=1e-2), "Adam"),
    ("adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), "Adam"),
    ("adam", dict(lr=1e-2, amsgrad=True), "Adam"),
    ("adamw", dict(lr=1e-2), "AdamW"),
    ("adamw", dict(lr=1e-2, weight_decay=0.3, amsgrad=True), "AdamW"),
]

# our slot name -> torch state key, per optimizer
STATE_KEYS = {
    "sgd": {"momentum": "momentum_buffer"},
    "adagrad": {"sum": "sum"},
    "rmsprop": {"square_avg": "square_avg", "grad_avg": "grad_avg", "momentum": "momentum_buffer"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
}
STATE_KEYS["adamw"] = STATE_KEYS["adam"]


def _random_grad(rng, shape):
    # Gradient scales spanning three decades exercise the adaptive denominators.
    return rng.normal(size=shape) * 10.0 ** rng.uniform(-2, 1)


@pytest.mark.parametrize("name, kwargs, torch_name", CONFIGS, ids=lambda c: str(c))
def test_matches_torch_optimizer(name, kwargs, torch_name):
    rng = np.random.default_rng(zlib.crc32(f"{name}{kwargs}".encode()))
    params = [rng.normal(size=s) for s in SHAPES]
    grads = [np.zeros_like(p) for p in params]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = make_optimizer(name, [(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads))], **kwargs)
    theirs = getattr(torch.optim, torch_name)(tparams, **kwargs)
    for step in range(STEPS):
        if step == STEPS // 2:  # the lr attribute is live, as a schedule would use it
            ours.lr = kwargs["lr"] * 0.5
            theirs.param_groups[0]["lr"] = kwargs["lr"] * 0.5
        for g, tp in zip(grads, tparams):
            g[...] = _random_grad(rng, g.shape)
            tp.grad = torch.tensor(g.copy())
        ours.step()
        theirs.step()
        for p, tp in zip(params, tparams):
            # float64 both sides, the same update formula in another operation order: each step adds a few
            # ulps (~1e-16) of relative error, compounded over the steps; 1e-10 leaves a wide margin and is
            # far below a wrong formula's error
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=0)
    for slot, buffers in ours.state.items():
        for i, tp in enumerate(tparams):
            ref = theirs.state[tp][STATE_KEYS[name][slot]].numpy()
            # optimiser state in float64, same formulas as torch in another operation order, compounded over the
            # steps: ~1e-15 per step; rtol 1e-10 (atol 1e-300: only exact zeros pass absolutely).
            np.testing.assert_allclose(buffers[f"p{i}"], ref, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("ratio", [0.1, 0.9, 1.5])
def test_clip_grad_norm_matches_torch(ratio):
    rng = np.random.default_rng(7)
    grads = [rng.normal(size=s) for s in SHAPES]
    max_norm = ratio * np.sqrt(sum(np.sum(g * g) for g in grads))  # clip hard, barely, not at all
    tparams = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for g, tp in zip(grads, tparams):
        tp.grad = torch.tensor(g.copy())
    norm = clip_grad_norm(grads, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    # float64: one sum of squares in another order: rounding only
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    for g, tp in zip(grads, tparams):
        # float64 rescale by the same factor, computed in another order: ~1 ulp; rtol 1e-12.
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-12, atol=0)


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(8)
    grads = [rng.normal(scale=3.0, size=s) for s in SHAPES]
    tparams = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for g, tp in zip(grads, tparams):
        tp.grad = torch.tensor(g.copy())
    clip_grad_value([("w", None, g) for g in grads], 1.5)
    torch.nn.utils.clip_grad_value_(tparams, 1.5)
    for g, tp in zip(grads, tparams):
        np.testing.assert_array_equal(g, tp.grad.numpy())


def _torch_lrs(make_scheduler, lr0, steps):
    """lr used at steps 0..steps-1 by a torch scheduler stepped once per update."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


def test_step_decay_matches_steplr():
    ours = StepDecay(0.3, step_size=4, gamma=0.5)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5), 0.3, 30)
    # float64 lr * gamma^k for k <= 7: a few ulps; rtol 1e-12.
    np.testing.assert_allclose([ours(s) for s in range(30)], ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_matches_cosine_annealing(min_lr):
    total = 25
    ours = Cosine(0.2, total_steps=total, min_lr=min_lr)
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=min_lr), 0.2, total + 1)
    # torch computes the rate recursively, so at the very end (lr -> 0) only
    # an absolute tolerance is meaningful.
    np.testing.assert_allclose([ours(s) for s in range(total + 1)], ref, rtol=1e-10, atol=1e-15)


def test_warmup_matches_linearlr():
    warm = 5
    ours = Warmup(Constant(0.1), warmup_steps=warm)
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / warm, total_iters=warm - 1), 0.1, 12)
    # float64 linear warm-up factors (k/warm): a few ulps; rtol 1e-12.
    np.testing.assert_allclose([ours(s) for s in range(12)], ref, rtol=1e-12, atol=0)
