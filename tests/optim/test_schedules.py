"""Learning-rate schedules: closed-form values, warm-up, the factory."""
import math

import numpy as np
import pytest

from rnnlab.optim import SCHEDULES, Constant, Cosine, StepDecay, Warmup, constant, make_schedule


def test_constant():
    sched = constant(0.3)
    assert isinstance(sched, Constant)
    assert [sched(s) for s in (0, 1, 1000)] == [0.3, 0.3, 0.3]


# Schedules are float64 Python arithmetic; pytest.approx's default (1e-6 relative) is far above its rounding
# (~1e-16) and far below any wrong formula's error.

def test_step_decay_values():
    sched = StepDecay(1.0, step_size=3, gamma=0.5)
    assert [sched(s) for s in range(8)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cosine_shape():
    sched = Cosine(1.0, total_steps=10, min_lr=0.1)
    values = np.array([sched(s) for s in range(15)])
    assert values[0] == 1.0
    # float64 linear interpolation of decimals: a few ulps; approx default rel 1e-6.
    assert values[5] == pytest.approx(0.55)
    # float64: a few ulps; approx default rel 1e-6.
    assert values[10] == pytest.approx(0.1)
    np.testing.assert_allclose(values[10:], 0.1)  # stays at the floor afterwards
    assert np.all(np.diff(values) <= 1e-15)
    # the same float64 cosine formula written out: a few ulps; default rel 1e-6.
    assert sched(3) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.3)) / 2)


def test_warmup_then_wrapped_schedule():
    inner = StepDecay(0.8, step_size=2, gamma=0.5)
    sched = Warmup(inner, warmup_steps=4)
    # float64 k/5 times 1.0: a few ulps; default rel 1e-6.
    assert [sched(s) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert [sched(s) for s in range(4, 9)] == [inner(s) for s in range(5)]
    passthrough = Warmup(inner, warmup_steps=0)
    assert [passthrough(s) for s in range(5)] == [inner(s) for s in range(5)]


def test_make_schedule():
    assert set(SCHEDULES) == {"constant", "step", "cosine"}
    assert make_schedule("constant", 0.1, total_steps=50)(7) == 0.1
    # float64 0.1 * 0.1: one rounding; default rel 1e-6.
    assert make_schedule("step", 0.1, step_size=5, gamma=0.1)(5) == pytest.approx(0.01)
    cos = make_schedule("Cosine", 0.1, total_steps=20, min_lr=0.01)
    # float64 cosine at its end: a few ulps; default rel 1e-6.
    assert isinstance(cos, Cosine) and cos(20) == pytest.approx(0.01)
    # With warm-up, total_steps still counts the whole run.
    warm = make_schedule("cosine", 0.1, total_steps=20, warmup_steps=5, min_lr=0.01)
    assert isinstance(warm, Warmup)
    # float64 warm-up factors: a few ulps; default rel 1e-6.
    assert warm(0) == pytest.approx(0.02) and warm(5) == pytest.approx(0.1)
    # float64 schedule after warm-up: a few ulps; default rel 1e-6.
    assert warm(19) > 0.01 and warm(20) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("exponential", 0.1)
    with pytest.raises(ValueError):
        make_schedule("cosine", 0.1, total_steps=5, warmup_steps=5)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError):
        StepDecay(0.1, step_size=0)
    with pytest.raises(ValueError):
        Cosine(0.1, total_steps=0)
    with pytest.raises(ValueError):
        Constant(0.1)(-1)
