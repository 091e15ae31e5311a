"""The executor of independent fits: results in the order given, errors with their type, a dead worker retried once."""
import os

import pytest

from rnnlab.train.executor import LocalPool, Serial, WorkerLost, make_executor


def square_with_pid(x):
    return x * x, os.getpid(), os.environ.get("OMP_NUM_THREADS")


def fails(x):
    if x == 2:
        raise ValueError(f"bad {x}")
    return x


def dies_once(marker, x):
    """Kills its process the first time it runs (a marker file remembers), then works."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return x + 100


def always_dies(x):
    os._exit(4)


@pytest.mark.parametrize("make", [lambda log: Serial(log=log), lambda log: LocalPool(2, log=log)])
def test_results_in_the_order_given_and_each_reported_once(make):
    seen, lines = [], []
    with make(lines.append) as ex:
        results = ex.map(square_with_pid, [(x,) for x in range(5)], on_result=lambda i, v: seen.append((i, v[0])))
    assert [r[0] for r in results] == [0, 1, 4, 9, 16]
    assert sorted(seen) == [(i, i * i) for i in range(5)]
    if isinstance(ex, LocalPool):
        assert all(r[1] != os.getpid() and r[2] == "1" for r in results)  # workers, one BLAS thread each
    else:
        assert all(r[1] == os.getpid() for r in results)


@pytest.mark.parametrize("make", [lambda: Serial(), lambda: LocalPool(2)])
def test_an_error_in_a_fit_ends_the_map_with_its_own_type(make):
    with make() as ex, pytest.raises(ValueError, match="bad 2"):
        ex.map(fails, [(x,) for x in range(4)])


def test_a_dead_worker_is_reported_and_its_fits_run_once_more(tmp_path):
    lines = []
    with LocalPool(2, log=lines.append) as ex:
        results = ex.map(dies_once, [(str(tmp_path / "marker"), x) for x in range(3)])
    assert results == [100, 101, 102]
    assert any("worker process died" in line for line in lines)


def test_a_fit_that_kills_its_worker_twice_is_lost_not_raised(tmp_path):
    lines = []
    with LocalPool(2, log=lines.append) as ex:
        results = ex.map(always_dies, [(1,)])
    assert isinstance(results[0], WorkerLost) and "twice" in str(results[0])
    assert any("is lost" in line for line in lines)


def test_make_executor_picks_the_backend():
    assert isinstance(make_executor(1), Serial) and isinstance(make_executor(3), LocalPool)
    assert make_executor(3).workers == 3
