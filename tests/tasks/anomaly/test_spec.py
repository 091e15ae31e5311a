"""DetectorSpec: the typed spec of a detector's network; checkpoints keep the dict they always held."""
import numpy as np
import pytest

from rnnlab.errors import CheckpointError
from rnnlab.tasks.anomaly.models import make_model
from rnnlab.tasks.anomaly.spec import DetectorSpec
from rnnlab.tasks.anomaly.task import KIND, AnomalyTask

# the dict the detector wrote as a checkpoint's meta["model"] before DetectorSpec
OLD = {"detector": "vae", "input_size": 2, "hidden_size": 5, "window": 4, "horizon": 1, "latent_size": 3, "seed": 2}


def test_to_dict_is_the_dict_checkpoints_held_and_reads_back():
    spec = DetectorSpec.from_dict(OLD)
    assert spec == DetectorSpec("vae", 2, 5, 4, 2, horizon=1, latent_size=3)
    assert list(spec.to_dict().items()) == list(OLD.items())   # same keys, same order
    assert DetectorSpec.from_dict(spec) is spec


def test_horizon_and_latent_size_may_be_absent():
    d = {k: v for k, v in OLD.items() if k not in ("horizon", "latent_size")}
    spec = DetectorSpec.from_dict(d)
    assert (spec.horizon, spec.latent_size) == (1, 8)


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(colour="red"), "unknown key"),
    (lambda d: d.pop("window"), "missing key.*window"),
    (lambda d: d.update(hidden_size="5"), "hidden_size must be a whole number"),
    (lambda d: d.update(seed=True), "seed must be a whole number"),
    (lambda d: d.update(detector=3), "detector must be a string"),
])
def test_a_bad_spec_is_refused_with_its_key(change, words):
    d = dict(OLD)
    change(d)
    with pytest.raises(CheckpointError, match=words):
        DetectorSpec.from_dict(d)
    with pytest.raises(CheckpointError, match="must be a dict"):
        DetectorSpec.from_dict([1, 2])


@pytest.mark.parametrize("kind", ["pred", "encdec", "vae"])
def test_the_dict_and_the_spec_build_the_same_network_and_pack_the_same_meta(kind):
    d = dict(OLD, detector=kind)
    a, b = make_model(d).state_dict(), make_model(DetectorSpec.from_dict(d)).state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    x = np.zeros((3, 4, 2), np.float32)
    task = AnomalyTask(d, x, np.zeros((3, 1), np.float32) if kind == "pred" else None)
    _, meta = task.pack_model(task.build_model())
    assert meta == {"kind": KIND, "model": OLD | {"detector": kind}}
