import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Keep encoded-corpus caches out of the user's home: each test session gets its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(params=["compiled", "numpy"])
def element_steps(request):
    """Run a test with the compiled steps (numba, rnnlab.fast.accel) and with their NumPy twins."""
    from rnnlab.fast import accel

    if request.param == "compiled" and not accel.available():
        pytest.skip(f"no compiled steps: {accel.describe()}")
    accel.set_enabled(request.param == "compiled")
    yield request.param
    accel.set_enabled(True)


@pytest.fixture(autouse=True)
def _no_blas_choice_record(monkeypatch):
    """RNNLAB_BLAS=auto's per-machine record of choices (rnnlab.blas.choice_cache) is off in tests:
    tests that fake the timing must not find a choice another test recorded. Its own tests turn it on."""
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", "off")


@pytest.fixture(autouse=True)
def _no_busy_note(monkeypatch):
    """The training loop's note about a busy machine (rnnlab.blas.threads.busy_note) depends on the load
    average when a test runs; tests that read the loop's output must not see it come and go. Its own
    tests turn it on."""
    monkeypatch.setenv("RNNLAB_BUSY_NOTE", "0")


@pytest.fixture
def blas_choice_record(tmp_path, monkeypatch):
    """RNNLAB_BLAS=auto's per-machine record on, as a user has it, in a file of the test's own, and this
    process's earlier choices (timed with the record off) forgotten: for tests that compare results
    across processes. Without the record each process times OpenBLAS against oneMKL itself, and where
    the two timings are close a worker can pick the other library, which rounds differently (seen
    under OPENBLAS_CORETYPE=Sandybridge: a --jobs 2 curve point 1.5e-8 off the serial one)."""
    from rnnlab.blas import choice

    monkeypatch.setenv("RNNLAB_BLAS_CACHE", str(tmp_path / "blas-choices.json"))
    monkeypatch.setattr(choice, "_cache", {})
