"""`rnnlab gradcheck --all` reaches every path of the recurrent time loop, for every cell with a kernel."""
import numpy as np
import pytest

from rnnlab import fast, gradcheck
from rnnlab.cells import LSTMCell
from rnnlab.fast import accel
from rnnlab.gradcheck.specs import PATHS, available_paths, on_path, sequence_case, taking
from rnnlab.layers import Recurrent, SoftmaxCrossEntropy


def _cells_with_kernels():
    return sorted(fast.KERNELS, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _cells_with_kernels(), ids=lambda c: c.__name__)
def test_every_path_has_its_own_cases(cls):
    labels = [case.label for case in gradcheck.SPECS[cls](np.random.default_rng(0))]
    paths = {label.split(":")[0] for label in labels}
    assert paths == set(available_paths(16)), labels
    assert "reference loop" in paths and "NumPy steps" in paths
    if accel.available():
        assert "compiled steps" in paths


def test_the_split_path_is_available_here():
    pytest.importorskip("threadpoolctl")
    # every path, the compiled steps where numba runs them (not without numba, nor under NUMBA_DISABLE_JIT=1)
    assert available_paths(16) == [p for p in PATHS if p != "compiled steps" or accel.available()]
    assert "batch split" not in available_paths(15)   # too few rows to split


def test_taking_restores_the_switches():
    before = (fast.enabled(), accel.enabled())
    for path in PATHS:
        with taking(path):
            assert fast.enabled() == (path != "reference loop")
        assert (fast.enabled(), accel.enabled()) == before
    with pytest.raises(ValueError, match="unknown path"):
        with taking("fastest"):
            pass


def test_a_case_off_its_path_refuses_to_check():
    """A cell without a kernel cannot run on a kernel path: the case says so instead of passing."""
    class NoKernel(LSTMCell):
        abstract = True

    rng = np.random.default_rng(0)
    layer = gradcheck.randomize(Recurrent(NoKernel(2, 3)), rng)
    case = on_path("NumPy steps", sequence_case("B=2,T=2", layer, 2, 2, rng))
    assert case.label == "NumPy steps: B=2,T=2"
    with pytest.raises(RuntimeError, match="NumPy steps"):
        case.run()
    ok = on_path("reference loop", sequence_case("B=2,T=2", layer, 2, 2, rng))
    assert all(r.passed for r in gradcheck.check_case("NoKernel", ok))


@pytest.mark.parametrize("seed", range(20))
def test_the_masked_cross_entropy_case_always_masks_something(seed):
    (case,) = [c for c in gradcheck.SPECS[SoftmaxCrossEntropy](np.random.default_rng(seed)) if "masked" in c.label]
    _, cache = case.run()
    assert 0 < cache.mask.sum() < cache.mask.size
