"""Forecast files in the three layouts (rows, M4's wide, long unique_id/ds/y) read back as they were written."""
import csv

import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.forecast.api import Forecast
from rnnlab.tasks.forecast.frequency import match_test
from rnnlab.tasks.forecast.report import write_forecast_csv
from rnnlab.timeseries.series import Series, read_series

from .conftest import hourly_series


def _forecast(series, h=5, seed=0):
    rng = np.random.default_rng(seed)
    point = 100 + 10 * rng.standard_normal((len(series), h))
    q = np.stack([point - 3, point, point + 3], axis=-1)
    return Forecast([s.id for s in series], point, q, [0.1, 0.5, 0.9], 0.0)


def test_wide_layout_is_m4s_and_reads_back_as_a_test_file(tmp_path):
    series = hourly_series(3, length=50)
    f = _forecast(series)
    path = write_forecast_csv(tmp_path / "f.csv", series, f, "wide")
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(f'"V{k}"' for k in range(1, 7)) and lines[1].startswith('"s0","')
    back = read_series(path)
    assert [s.id for s in back] == ["s0", "s1", "s2"] and all(s.timestamps is None for s in back)
    # not rounding: the CSV writes values with 10 significant digits (:.10g), so each read-back value is off
    # by <= 5e-10 relative; rtol 1e-9 covers that and nothing more.
    np.testing.assert_allclose(np.stack([s.values for s in back]), f.point, rtol=1e-9)
    # same 10-digit CSV round trip: <= 5e-10 relative; rtol 1e-9.
    np.testing.assert_allclose(match_test(series, back, str(path)), f.point, rtol=1e-9)


@pytest.mark.parametrize("timestamps", [True, False])
def test_long_layout_reads_back_with_the_next_timestamps_or_positions(tmp_path, timestamps):
    series = hourly_series(2, length=30, timestamps=timestamps)
    f = _forecast(series, h=4)
    path = write_forecast_csv(tmp_path / "f.csv", series, f, "long")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["unique_id", "ds", "y"] and len(rows) == 8
    back = {s.id: s for s in read_series(path)}
    for i, s in enumerate(series):
        # same 10-digit CSV round trip (long layout, :.10g): <= 5e-10 relative; rtol 1e-9.
        np.testing.assert_allclose(back[s.id].values, f.point[i], rtol=1e-9)
        if timestamps:
            step = np.timedelta64(1, "h")
            np.testing.assert_array_equal(back[s.id].timestamps, s.timestamps[-1] + step * np.arange(1, 5))
        else:
            assert back[s.id].timestamps is None
            assert [r["ds"] for r in rows if r["unique_id"] == s.id] == [str(len(s) + k) for k in range(1, 5)]


def test_history_and_forecast_in_the_long_layout_join_into_one_series(tmp_path):
    """A history written as unique_id,ds,y with integer ds, then its forecast appended: one series, in order."""
    s = Series("a", np.arange(1.0, 7.0))
    f = _forecast([s], h=3)
    hist = tmp_path / "h.csv"
    hist.write_text("unique_id,ds,y\n" + "".join(f"a,{k + 1},{v}\n" for k, v in enumerate(s.values)))
    fc = write_forecast_csv(tmp_path / "f.csv", [s], f, "long")
    joined = tmp_path / "j.csv"
    joined.write_text(hist.read_text() + "".join(fc.read_text().splitlines(keepends=True)[1:]))
    back = read_series(joined)[0]
    # same 10-digit CSV round trip: <= 5e-10 relative; rtol 1e-9.
    np.testing.assert_allclose(back.values, np.concatenate([s.values, f.point[0]]), rtol=1e-9)


def test_integer_ds_orders_rows_and_gaps_are_missing(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("unique_id,ds,y\nb,3,30\nb,1,10\nb,2,20\n")
    with pytest.raises(DataError, match=r"l.csv:3: series 'b': ds 1 does not follow 3 \(line 2\)"):
        read_series(path)
    path.write_text("unique_id,ds,y\nb,1,10\nb,2,20\nb,4,40\n")
    s = read_series(path)[0]
    assert s.timestamps is None
    np.testing.assert_array_equal(s.values, [10, 20, 30, 40])
    np.testing.assert_array_equal(s.mask, [False, False, True, False])


def test_rows_layout_keeps_the_quantiles_and_an_unknown_layout_is_one_line(tmp_path):
    series = hourly_series(1, length=30)
    f = _forecast(series, h=2)
    rows = list(csv.DictReader(write_forecast_csv(tmp_path / "f.csv", series, f).open()))
    assert list(rows[0]) == ["series_id", "step", "timestamp", "forecast", "q0.1", "q0.5", "q0.9"]
    with pytest.raises(DataError, match="--layout must be one of rows, wide, long"):
        write_forecast_csv(tmp_path / "g.csv", series, f, "parquet")
