"""``--online-season auto`` (rnnlab.tasks.anomaly.season): M4's seasonality test at lag one day on
the probationary rows only; on for a daily cycle, off for noise, a flat line, a short probation."""
import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.tasks.anomaly import Detector
from rnnlab.tasks.anomaly.season import season_period, seasonal

HOURLY = np.datetime64("2020-01-01T00:00") + np.arange(2000) * np.timedelta64(1, "h")
FIVE_MIN = np.datetime64("2020-01-01T00:00") + np.arange(2000) * np.timedelta64(5, "m")
TINY = dict(window=8, hidden=8, online_warm=30, online_batch=8, long=400)


def _daily(n, per_day=24, seed=0, noise=0.2):
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * np.arange(n) / per_day) + noise * rng.standard_normal(n)


def test_a_daily_sine_turns_the_season_on_noise_and_a_flat_line_do_not():
    start = 240  # 10 days of hourly rows
    assert seasonal(_daily(start), 24)
    assert season_period("auto", _daily(800), HOURLY[:800], start) == 24
    white = np.random.default_rng(1).standard_normal(800)
    assert season_period("auto", white, HOURLY[:800], start) == 0
    assert season_period("auto", np.full(800, 3.0), HOURLY[:800], start) == 0


def test_a_short_probation_or_no_daily_step_turns_it_off():
    values = _daily(2000)
    assert season_period("auto", values, HOURLY, 71) == 0    # under 3 days (72 rows)
    assert season_period("auto", values, HOURLY, 96) == 24   # 4 days (at 3 a sine's r_24 is about 2/3,
    # below the test's limit: the test itself wants a little more than the 3-day minimum)
    # 5-minute rows: 750 probationary rows are 2.6 days, fewer than 3: off, whatever the values
    assert season_period("auto", _daily(2000, per_day=288), FIVE_MIN, 750) == 0
    assert season_period("auto", values, None, 240) == 0     # no timestamps
    weekly = np.datetime64("2020-01-01") + np.arange(2000) * np.timedelta64(7, "D")
    assert season_period("auto", values, weekly, 240) == 0   # coarser than a day


def test_the_decision_uses_the_probationary_rows_only():
    values = _daily(800)
    later = values.copy()
    later[240:] = np.random.default_rng(2).standard_normal(560)  # noise after the probation
    assert season_period("auto", later, HOURLY[:800], 240) == 24
    noise_first = later.copy()
    noise_first[:240] = np.random.default_rng(3).standard_normal(240)
    noise_first[240:] = values[240:]                              # a cycle only after it
    assert season_period("auto", noise_first, HOURLY[:800], 240) == 0
    # the timestamps after the probation do not matter either
    odd = HOURLY[:800].copy()
    odd[240:] = odd[239] + np.arange(1, 561) * np.timedelta64(7, "m")
    assert season_period("auto", values, odd, 240) == 24


def test_modes_on_and_off_and_the_detector_input():
    noise = np.random.default_rng(4).standard_normal(800)
    assert season_period("on", noise, HOURLY[:800], 120) == 24  # on: whatever the values
    assert season_period("off", _daily(800), HOURLY[:800], 120) == 0
    det = Detector("online", seed=0, online_season="auto", **TINY)
    det.fit_score(_daily(800), HOURLY[:800], progress=False)  # probation 120 rows = 5 days
    assert det.season == 24 and det.model.spec["input_size"] == 6
    det.fit_score(noise, HOURLY[:800], progress=False)
    assert det.season == 0 and det.model.spec["input_size"] == 5
    assert Detector("online", online_season=True).config.online_season == "on"   # settings saved as bools
    assert Detector("online", online_season=False).config.online_season == "off"
    with pytest.raises(ConfigError, match="online-season"):
        Detector("online", online_season="sometimes")
