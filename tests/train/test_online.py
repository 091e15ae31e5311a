"""rnnlab.train.online.OnlineLearner: the one loop's optimizer and guard, one update at a time.
A finite run is exactly the optimizer's steps on the task's gradients; a non-finite one stops with
one line naming the update, the reason and the task's hint, without touching the weights."""
import numpy as np
import pytest

from rnnlab.cells import LSTMCell
from rnnlab.layers import Recurrent
from rnnlab.optim import Adam
from rnnlab.train.guard import DivergenceError
from rnnlab.train.online import OnlineLearner


def _model(seed=0):
    layer = Recurrent(LSTMCell(3, 4))
    rng = np.random.default_rng(seed)
    for _, p, _ in layer.named_parameters():
        p[...] = rng.uniform(-0.5, 0.5, p.shape)
    return layer


def _fb(model, x):
    (y, _), cache = model.forward(x)
    model.backward((np.ones_like(y), None), cache)   # d(sum y) / d y
    return float(np.sum(y))


def test_finite_updates_are_exactly_the_optimizers_steps():
    xs = [np.random.default_rng(k).standard_normal((2, 5, 3)) for k in range(6)]
    a, b = _model(), _model()
    learner = OnlineLearner(a, "adam", lr=0.01)
    opt = Adam(b.named_parameters(), lr=0.01)
    for x in xs:
        learner.update(_fb, x)
        b.zero_grad()
        _fb(b, x)
        opt.step()
    assert learner.steps == 6
    for (_, p, _), (_, q, _) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p, q)                   # bit for bit: same steps, same order
    assert any(np.abs(p - q).max() > 0 for (_, p, _), (_, q, _) in zip(a.named_parameters(),
                                                                       _model().named_parameters()))


def test_clip_bounds_the_step():
    a = _model()
    learner = OnlineLearner(a, "sgd", lr=1.0, clip=1e-3)
    before = [p.copy() for _, p, _ in a.named_parameters()]
    learner.update(_fb, np.ones((2, 5, 3)))
    moved = np.sqrt(sum(float(np.sum((p - q) ** 2)) for (_, p, _), q in zip(a.named_parameters(), before)))
    assert moved == pytest.approx(1e-3, rel=1e-6)   # SGD at lr 1 moves by the clipped gradient's norm


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_step_is_refused_in_one_line(bad):
    a = _model()
    learner = OnlineLearner(a, "adam", lr=0.01, hint="lower --online-lr")
    learner.update(_fb, np.ones((2, 5, 3)))
    before = [p.copy() for _, p, _ in a.named_parameters()]
    x = np.ones((2, 5, 3))
    x[0, 0, 0] = bad
    with pytest.raises(DivergenceError) as err:
        learner.update(_fb, x)
    msg = str(err.value)
    assert "\n" not in msg and "update 2" in msg and "lower --online-lr" in msg
    assert learner.steps == 1
    for (_, p, _), q in zip(a.named_parameters(), before):
        np.testing.assert_array_equal(p, q)                    # no step taken
