"""The online detector scores the same bits whatever BLAS kernel the CPU gets (RNNLAB_BLAS=exact inside
the stream, rnnlab.tasks.anomaly.online.fixed_products): two processes with OpenBLAS's Haswell (FMA)
and Sandybridge (AVX, no FMA) kernels give byte-identical scores, where with NumPy's BLAS they differ."""
import os
import subprocess
import sys

import pytest

from rnnlab.fast import accel

SCRIPT = """
import hashlib, numpy as np
from rnnlab.tasks.anomaly import Detector
rng = np.random.default_rng(0)
n = 900
values = np.sin(2 * np.pi * np.arange(n) / 24) + 0.1 * rng.standard_normal(n)
values[700:705] += 3.0
stamps = np.datetime64("2020-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
det = Detector("online", seed=0, window=8, hidden=16, online_warm=30, online_batch=8, long=400)
scores = det.fit_score(values, stamps, progress=False)
print(hashlib.sha1(det.last_fit["raw"].tobytes()).hexdigest(), hashlib.sha1(scores.tobytes()).hexdigest())
"""


def _run(coretype: str, blas: str | None) -> str:
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("RNNLAB_BLAS", None)
    if blas:
        env["RNNLAB_BLAS"] = blas
    src = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
    env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line and " fma" in line for line in f)
    except OSError:
        return False


@pytest.mark.skipif(not _has_avx2(), reason="OpenBLAS's Haswell kernel needs AVX2 and FMA")
@pytest.mark.skipif(not accel.enabled(), reason="the fixed-order products serve the compiled steps only (numba)")
def test_scores_do_not_depend_on_the_blas_kernel():
    haswell, sandy = _run("Haswell", None), _run("Sandybridge", None)
    assert haswell == sandy
    # the control: the BLAS itself rounds differently on the two kernels, and the stream carries it
    assert _run("Haswell", "openblas") != _run("Sandybridge", "openblas")


def test_without_the_compiled_steps_the_stream_keeps_one_blas(monkeypatch):
    from rnnlab.blas import choice
    from rnnlab.tasks.anomaly.online import fixed_products

    monkeypatch.delenv("RNNLAB_BLAS", raising=False)
    monkeypatch.setattr(choice, "_requested", None)
    before = choice.requested()
    with accel.using(False), fixed_products():
        assert choice.requested() == "openblas"      # the NumPy loop of blas.exact would cost ~7x
    if accel.available():
        with accel.using(True), fixed_products():
            assert choice.requested() == "exact"
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")         # a library named by the user wins
    with fixed_products():
        assert choice.requested() == before
    assert choice.requested() == before
