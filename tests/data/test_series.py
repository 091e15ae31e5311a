"""Time-series CSV reading: layouts, headers, missing values, timestamps, errors, the M4 loader."""
from pathlib import Path

import numpy as np
import pytest

from rnnlab.timeseries.series import Series, load_m4, parse_step, read_series
from rnnlab.errors import DataError

M4_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_long_two_columns_with_header(tmp_path):
    path = write(tmp_path, "timestamp,value\n2014-07-01 00:00:00,1.5\n2014-07-01 01:00:00,2\n"
                           "2014-07-01 02:00:00,3\n")
    (s,) = read_series(path)
    assert s.id == "s" and s.values.dtype == np.float64
    np.testing.assert_array_equal(s.values, [1.5, 2, 3])
    assert s.timestamps.dtype == np.dtype("datetime64[s]")
    assert s.timestamps[2] == np.datetime64("2014-07-01T02:00:00")
    assert not s.mask.any() and len(s) == 3


def test_long_without_header_and_iso_t_and_timezone(tmp_path):
    path = write(tmp_path, "2014-07-01T00:00:00Z,1\n2014-07-01T01:00:00+00:00,2\n2014-07-01T04:00:00+02:00,3\n")
    (s,) = read_series(path)
    np.testing.assert_array_equal(s.values, [1, 2, 3])
    assert s.timestamps[-1] == np.datetime64("2014-07-01T02:00:00")


def test_long_three_columns_interleaved_series(tmp_path):
    path = write(tmp_path, "series_id,timestamp,value\na,2020-01-01,1\nb,2020-01-01,10\n"
                           "a,2020-01-02,2\nb,2020-01-02,20\n")
    a, b = read_series(path)
    assert (a.id, b.id) == ("a", "b")
    np.testing.assert_array_equal(b.values, [10, 20])


def test_header_names_any_column_order(tmp_path):
    path = write(tmp_path, "value,ds,unique_id\n1,2020-01-01,x\n2,2020-01-02,x\n")
    (s,) = read_series(path)
    assert s.id == "x"
    np.testing.assert_array_equal(s.values, [1, 2])


def test_single_column_values(tmp_path):
    (s,) = read_series(write(tmp_path, "value\n1\n\n2\nNA\n4\n"))
    np.testing.assert_array_equal(s.values, [1, 2, 3, 4])
    assert s.timestamps is None and s.mask.tolist() == [False, False, True, False]


def test_wide_m4_like_with_padding(tmp_path):
    path = write(tmp_path, '"V1","V2","V3","V4","V5"\n"H1","1","2","3","4"\n"H2","5","6","",""\n')
    a, b = read_series(path)
    assert (a.id, len(a), b.id, len(b)) == ("H1", 4, "H2", 2)
    assert a.timestamps is None


def test_wide_interior_missing_interpolated_and_masked(tmp_path):
    path = write(tmp_path, "x,1,,,4,5\ny,,2,3,,\n")
    x, y = read_series(path, layout="wide")
    # linear interpolation between integers in float64: each value one or two roundings (~1e-16);
    # assert_allclose's default rtol 1e-7 is far above that and far below a wrong fill (>= 0.5).
    np.testing.assert_allclose(x.values, [1, 2, 3, 4, 5])
    assert x.mask.tolist() == [False, True, True, False, False]
    np.testing.assert_array_equal(y.values, [2, 2, 3])  # leading gap takes the nearest value
    assert y.mask.tolist() == [True, False, False]
    with pytest.raises(DataError, match=r"s\.csv:1: series 'x': value 2 is missing"):
        read_series(path, layout="wide", missing="error")


def test_long_missing_value_and_missing_rows(tmp_path):
    path = write(tmp_path, "timestamp,value\n2020-01-01 00:00,1\n2020-01-01 01:00,\n"
                           "2020-01-01 02:00,3\n2020-01-01 05:00,6\n")
    (s,) = read_series(path)
    # float64 interpolation over a gap of <= 3 steps: a few roundings; default rtol 1e-7.
    np.testing.assert_allclose(s.values, [1, 2, 3, 4, 5, 6])
    assert s.mask.tolist() == [False, True, False, True, True, False]
    assert s.timestamps[4] == np.datetime64("2020-01-01T04:00")
    with pytest.raises(DataError, match=r":3: series 's': value 2 is missing"):
        read_series(path, missing="error")


def test_irregular_timestamps_error_and_resample(tmp_path):
    path = write(tmp_path, "timestamp,value\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n"
                           "2020-01-01 02:00,3\n2020-01-01 02:30,5\n2020-01-01 05:10,8\n")
    with pytest.raises(DataError, match=r"s\.csv:5: series 's': irregular timestamps.*resample="):
        read_series(path)
    (s,) = read_series(path, resample="1h")
    # the expected values are written to 10 significant digits (5.333333333): ~6e-11 relative off the
    # true 16/3; default rtol 1e-7 covers that, and float64 interpolation error (~1e-16) is far smaller.
    np.testing.assert_allclose(s.values, [1, 2, 4, 5.333333333, 6.666666667, 8])
    assert s.mask.tolist() == [False, False, False, True, True, False]
    assert s.timestamps[0] == np.datetime64("2020-01-01T00:00") and s.timestamps[-1] == np.datetime64("2020-01-01T05:00")


def test_resample_sorts_and_averages_repeated_timestamps(tmp_path):
    path = write(tmp_path, "timestamp,value\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n2020-01-01 01:00,4\n"
                           "2020-01-01 03:00,7\n2020-01-01 02:00,5\n")
    with pytest.raises(DataError, match=r":4: .* repeats .*\(line 3\)"):
        read_series(path)
    (s,) = read_series(path, resample="1h")
    # float64 mean of two integers and interpolation: exact or one rounding; default rtol 1e-7.
    np.testing.assert_allclose(s.values, [1, 3, 5, 7])
    assert not s.mask.any()


def test_parse_step():
    assert parse_step("1h") == np.timedelta64(3600, "s")
    assert parse_step("15min") == np.timedelta64(900, "s")
    assert parse_step("d") == np.timedelta64(86400, "s")
    with pytest.raises(DataError, match="expected a step"):
        parse_step("fortnight")


@pytest.mark.parametrize("text, match", [
    ("", r"empty file"),
    ("\n\n", r"empty file"),
    ("timestamp,value\n2020-01-01,1\n2020-01-02,abc\n", r"s\.csv:3: series 's': column 2 holds 'abc', not a number"),
    ("timestamp,value\n2020-01-01,1\nyesterday,2\n", r"s\.csv:3: series 's': cannot read timestamp 'yesterday'"),
    ("timestamp,value\n2020-01-02,1\n2020-01-01,2\n", r"s\.csv:3: series 's': timestamp .* goes back .*sort the rows"),
    ("timestamp,value\n2020-01-01,1\n2020-01-01,2\n", r"s\.csv:3: .* repeats .*drop duplicates"),
    ("x,1,2,oops\n", r"s\.csv:1: series 'x': column 4 holds 'oops'"),
    ("x,1,2\nx,3,4\n", r"s\.csv:2: series 'x' appears twice"),
    ("value\nNA\n\n", r"series 's' has no values"),
    ("timestamp,value\n", r"a header but no data rows"),
])
def test_bad_input_is_one_line_data_error(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=match) as info:
        read_series(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_resample_on_wide(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_series(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="needs timestamps"):
        read_series(write(tmp_path, "a,1,2,3,4\n"), resample="1h")
    with pytest.raises(DataError, match="needs a timestamp column"):
        read_series(write(tmp_path, "value\n1\n2\n"), resample="1h")


def test_series_defaults():
    s = Series("a", [1, 2])
    assert s.values.dtype == np.float64 and s.mask.tolist() == [False, False]


@pytest.mark.skipif(not (M4_DIR / "m4").is_dir(), reason=f"M4 data not found in {M4_DIR / 'm4'}")
def test_load_m4_hourly():
    data = load_m4("m4-hourly", M4_DIR)
    assert len(data.train) == 414 and data.test.shape == (414, 48)
    assert (data.horizon, data.season_length) == (48, 24)
    assert data.train[0].id == "H1" and len(data.train[0]) == 700
    assert {len(s) for s in data.train} <= {700, 960}
    assert np.isfinite(data.test).all() and not any(s.mask.any() for s in data.train)


def test_load_m4_unknown_and_missing(tmp_path):
    with pytest.raises(DataError, match="unknown M4 set"):
        load_m4("m4-minutely", tmp_path)


def test_other_timestamp_formats_need_pandas(tmp_path):
    path = write(tmp_path, "timestamp,value\n07/01/2014 10:00,1\n07/01/2014 11:00,2\n")
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match=r":2: .*cannot read timestamp.*install pandas"):
            read_series(path)
        return
    (s,) = read_series(path)
    assert s.timestamps[1] == np.datetime64("2014-07-01T11:00")
