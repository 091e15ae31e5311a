"""CRF.decode: the compiled Viterbi (rnnlab.fast.compiled_crf) returns exactly the NumPy loop's paths,
on ties, -inf (constraints), NaN, float32 and float64, mixed lengths."""
import numpy as np
import pytest

from rnnlab.fast import accel, compiled_crf
from rnnlab.gradcheck import randomize
from rnnlab.layers import CRF
from rnnlab.tasks.tagging.schemes import tag_constraints

pytestmark = pytest.mark.skipif(not accel.available(), reason="numba is not installed: nothing compiled to test")


def both(crf, em, lengths, constraints=None, compiled=True):
    """The NumPy loop's paths and the compiled ones; ``compiled``: the compiled loop must be the one
    that ran (False: the operands' dtypes differ, NumPy's must run)."""
    with accel.using(False):
        ref = crf.decode(em, lengths, constraints)
    calls = []
    real = compiled_crf.decode

    def spy(*args):
        calls.append(1)
        return real(*args)

    compiled_crf.decode = spy
    try:
        with accel.using(True):
            got = crf.decode(em, lengths, constraints)
    finally:
        compiled_crf.decode = real
    assert bool(calls) == compiled
    return ref, got


def make(K, dtype, rng, scale=1.0):
    """A CRF with random parameters in ``dtype`` (randomize alone gives float64)."""
    crf = randomize(CRF(K, dtype=dtype), rng, scale=scale)
    for name, value in crf.params.items():
        crf.params[name] = value.astype(dtype)
    return crf


def bioes(types=("A", "B", "C")):
    tags = ["O"] + [f"{p}-{t}" for t in types for p in "BIES"]
    return tags, tag_constraints(tags, "BIOES")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("constrained", [False, True])
def test_random_scores_same_paths(dtype, constrained):
    rng = np.random.default_rng(0)
    tags, c = bioes()
    K = len(tags)
    crf = make(K, dtype, rng, scale=2.0)
    for B, T in ((1, 1), (3, 1), (16, 40), (7, 9), (64, 25)):
        em = rng.standard_normal((B, T, K)).astype(dtype) * 3
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T
        ref, got = both(crf, em, lengths, c if constrained else None)
        assert got == ref
        assert [len(p) for p in got] == lengths.tolist()


def test_ties_and_minus_inf_pick_the_first_maximum():
    """Integer-valued scores make many ties: the first maximum must win in both, as NumPy's argmax."""
    rng = np.random.default_rng(1)
    tags, c = bioes(("X", "Y"))
    K = len(tags)
    crf = CRF(K, dtype=np.float32)
    for name in ("transitions", "start", "end"):
        crf.params[name][...] = rng.integers(-1, 2, size=crf.params[name].shape)
    crf.params["transitions"][0, 1] = -np.inf
    for trial in range(20):
        em = rng.integers(-1, 2, size=(5, 12, K)).astype(np.float32)
        em[0, 3, :] = -np.inf          # a position where every tag is impossible
        lengths = rng.integers(1, 13, size=5)
        for constraints in (None, c):
            ref, got = both(crf, em, lengths, constraints)
            assert got == ref


def test_nan_scores_follow_numpy_argmax():
    rng = np.random.default_rng(2)
    K = 4
    crf = make(K, np.float32, rng)
    em = rng.standard_normal((3, 6, K)).astype(np.float32)
    em[1, 2, 1] = np.nan
    em[2, 0, :] = np.nan
    ref, got = both(crf, em, [6, 4, 5])
    assert got == ref


def test_mixed_dtypes_use_the_numpy_loop():
    """float64 emissions with float32 parameters: NumPy's promotion rules, kept by not compiling."""
    rng = np.random.default_rng(3)
    crf = make(5, np.float32, rng)
    em = rng.standard_normal((4, 7, 5))
    ref, got = both(crf, em, [7, 1, 3, 7], compiled=False)
    assert got == ref


def test_empty_batch():
    crf = CRF(3)
    assert both(crf, np.zeros((0, 4, 3), np.float32), np.zeros(0, np.int64)) == ([], [])


@pytest.mark.filterwarnings("ignore:invalid value")
def test_nan_or_inf_in_the_parameters_and_scores():
    """A NaN or +inf transition (every row the NaN-exact loop), +inf scores (+inf + -inf = NaN)."""
    rng = np.random.default_rng(4)
    tags, c = bioes(("X",))
    K = len(tags)
    for bad in (np.nan, np.inf):
        crf = make(K, np.float32, rng)
        crf.params["transitions"][2, 3] = bad
        em = rng.standard_normal((4, 8, K)).astype(np.float32)
        em[1, 4, 2] = np.inf
        for constraints in (None, c):
            ref, got = both(crf, em, [8, 6, 1, 5], constraints)
            assert got == ref
