"""The forecasters' networks, pinball loss (torch parity) and features."""
import numpy as np
import pytest

from rnnlab.tasks.forecast import features as F
from rnnlab.tasks.forecast.baselines import seasonal_naive
from rnnlab.tasks.forecast.model import EncDecForecaster, PinballLoss, make_model, run_model
from rnnlab.tasks.forecast.task import ForecastConfig, make_spec

from .conftest import hourly_series, spec_of

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("q", [[0.5], [0.1, 0.5, 0.9], [0.02, 0.7]])
def test_pinball_loss_matches_torch(q):
    rng = np.random.default_rng(len(q))
    pred = rng.standard_normal((4, 6, len(q)))
    y = rng.standard_normal((4, 6))
    loss = PinballLoss()
    value, cache = loss.forward(pred, y, q)
    dpred = loss.backward(0.7, cache)
    p = torch.tensor(pred, requires_grad=True)
    u = torch.tensor(y)[..., None] - p
    qt = torch.tensor(q, dtype=torch.float64)
    ref = torch.maximum(qt * u, (qt - 1) * u).mean()
    (0.7 * ref).backward()
    # float64 on both sides, a mean of 24 (or 72) pinball terms: ~24 eps; rel 1e-12 leaves ~100x.
    assert value == pytest.approx(ref.item(), rel=1e-12)
    # float64 elementwise q*g/N: 1-2 roundings each; rtol 1e-12, atol 1e-15 for exact zeros' neighbours.
    np.testing.assert_allclose(dpred, p.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_median_pinball_is_half_the_mae():
    rng = np.random.default_rng(1)
    pred, y = rng.standard_normal((3, 5, 1)), rng.standard_normal((3, 5))
    # float64 mean of 15 terms in two orders: ~15 eps; approx default rel 1e-6.
    assert PinballLoss().forward(pred, y, [0.5])[0] == pytest.approx(0.5 * np.abs(pred[..., 0] - y).mean())


def test_encdec_shapes_and_state_gradient():
    rng = np.random.default_rng(0)
    model = EncDecForecaster("lstm", 3, 2, 5, 3, num_layers=2, seed=0).astype(np.float64)
    x, u = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 4, 2))
    y, cache = model.forward(x, u)
    assert y.shape == (2, 4, 3)
    dx, du = model.backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and du.shape == u.shape
    assert np.abs(dx[:, 0]).sum() > 0  # the encoder's first step is reached through the decoder's state


@pytest.mark.parametrize("kind", ["direct", "encdec"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_an_untrained_network_forecasts_the_seasonal_naive_exactly(kind, cell):
    series = hourly_series(3)
    spec = make_spec(ForecastConfig(model=kind, cell=cell, window=48, horizon=30, season=24).validate(), series)
    model = make_model(spec)
    L = spec.window
    x = np.stack([s.values[-L:] for s in series])
    e = F.encode(spec, x, [F.clock(s) for s in series], np.array([len(s) - L for s in series]))
    out, _ = run_model(model, spec, e.x, e.u)
    assert out.shape == (3, 30, 3) and not out.any()
    fc = F.decode(spec, e, out)[..., 1]
    expect = np.stack([seasonal_naive(s.values, 30, 24) for s in series])
    # the network outputs exactly 0, so the forecast is level * seasonal naive in float64 (normalise then
    # denormalise, log/exp): a few ulps of values up to ~1e3, ~1e-14 relative; rtol 1e-10 leaves 1e4x.
    np.testing.assert_allclose(fc, expect, rtol=1e-10)


@pytest.mark.parametrize("norm", ["log", "standard"])
def test_targets_and_decode_invert_each_other(norm):
    series = hourly_series(4, negative=norm == "standard")
    assert F.choose_norm([s.values for s in series]) == norm
    spec = make_spec(ForecastConfig(window=50, horizon=20, season=24).validate(), series)
    x = np.stack([s.values[:50] for s in series])
    y = np.stack([s.values[50:70] for s in series])
    e = F.encode(spec, x, [F.clock(s) for s in series], np.zeros(4), dtype=np.float64)
    t = F.targets(spec, e, y)
    # float64 targets then decode (log/exp or scale/unscale): a few ulps; rtol 1e-10 with atol 1e-10 for
    # values near 0 in the 'standard' norm (|y| up to ~1e2, so ~1e-14 absolute rounding).
    np.testing.assert_allclose(F.decode(spec, e, t[..., None])[..., 0], y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(e.loc, np.median(x, axis=1), rtol=1e-12)   # robust level: the window's median


def test_time_features_follow_the_clock():
    """Hourly timestamps: hour of day and day of week; without: position in steps from the series' end
    (or, for models saved before, from its start)."""
    s = hourly_series(1, timestamps=True)[0]
    c = F.clock(s)
    assert c.step == 1.0 and F.infer_season([s]) == 24
    spec = spec_of(horizon=4)
    e = F.encode(spec, s.values[None, :48], [c], np.array([0]), dtype=np.float64)
    # 2024-01-01 00:00 was a Monday at midnight: both phases 0
    np.testing.assert_allclose(e.x[0, 0, 1:], [0, 1, 0, 1], atol=1e-9)
    # float64 sin/cos of the same angle written two ways: a few ulps; default rtol 1e-7.
    np.testing.assert_allclose(e.x[0, 6, 1:3], [np.sin(2 * np.pi * 6 / 24), np.cos(2 * np.pi * 6 / 24)])
    assert F.clock(hourly_series(1)[0]) == F.Clock(-240.0, 1.0)
    assert F.clock(hourly_series(1)[0], "start") == F.Clock(0.0, 1.0)

