"""The forecasting networks behind one interface (model.Network): build, run, backward, recurrent cache."""
import numpy as np
import pytest

from rnnlab.tasks.forecast.model import MODELS, NETWORKS, backward_model, make_model, network, run_model

from .conftest import spec_of


def _spec(model):
    return spec_of(model=model, periods=[24.0])


@pytest.mark.parametrize("name", MODELS)
def test_every_network_runs_and_backpropagates_through_one_interface(name):
    spec = _spec(name)
    model = make_model(spec)
    assert type(network(spec)) is type(NETWORKS[name]) and not np.any(model.out.params["W"])
    rng = np.random.default_rng(0)
    x, u = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 4, 3))
    out, cache = run_model(model, spec, x.astype(model.dtype), u.astype(model.dtype))
    assert out.shape == (2, 4, 3) and network(spec).recurrent(cache) is not None
    model.zero_grad()
    backward_model(model, spec, np.ones_like(out), cache)
    grads = {n: g for n, _, g in model.named_parameters()}
    assert np.any(grads["out.W"])      # the output layer starts at zero and still learns


def test_an_unknown_network_is_named():
    assert MODELS == ("direct", "encdec")
    with pytest.raises(ValueError, match="model must be one of"):
        network("transformer")
