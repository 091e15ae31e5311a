"""Generated hourly series shared by the forecaster tests (no real data needed)."""
import numpy as np
import pytest

from rnnlab.tasks.forecast.spec import ForecastSpec
from rnnlab.timeseries.series import Series


def spec_of(**settings):
    """A ForecastSpec with small defaults (encdec GRU 5, window 48, horizon 4, season 24, log, snaive, periods
    24 and 168, quantiles 0.1/0.5/0.9, robust off, no phase key), ``settings`` replacing them."""
    d = {"model": "encdec", "cell": "gru", "hidden_size": 5, "num_layers": 1, "seed": 0, "window": 48, "horizon": 4,
         "season": 24, "norm": "log", "base": "snaive", "periods": [24.0, 168.0], "quantiles": [0.1, 0.5, 0.9],
         "robust": False, **settings}
    d["input_size"] = d["future_size"] = 1 + 2 * len(d["periods"])
    return ForecastSpec.from_dict(d)


def hourly_series(n_series=6, length=240, seed=0, timestamps=False, negative=False):
    """Daily and weekly seasonal, trending, noisy positive series (or zero-mean ones with ``negative``)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_series):
        n = length + 24 * k
        t = np.arange(n)
        phase = rng.uniform(0, 2 * np.pi)
        v = 10 + k + 3 * np.sin(2 * np.pi * t / 24 + phase) + np.sin(2 * np.pi * t / 168) + 0.01 * t
        v = v + 0.3 * rng.standard_normal(n)
        if negative:
            v = v - v.mean()
        stamps = (np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")) if timestamps else None
        out.append(Series(f"s{k}", v, stamps))
    return out


@pytest.fixture
def series():
    return hourly_series()


def write_long_csv(path, series):
    lines = ["series_id,timestamp,value"]
    for s in series:
        lines += [f"{s.id},{str(t).replace('T', ' ')},{v:.5f}" for t, v in zip(s.timestamps, s.values)]
    path.write_text("\n".join(lines) + "\n")
    return path
