"""Named studies behind ``rnnlab experiment NAME``: reproductions with numbers.

Each study module defines a :class:`~rnnlab.experiments.runner.Study` called
``STUDY``; :func:`run` runs it over several seeds and writes a markdown table,
plots and a JSON record (see :mod:`rnnlab.experiments.runner`).

* ``adding``  – the adding problem of Le et al. (2015) at T = 100, 150, 200, 400
* ``digits``  – pixel-by-pixel (and permuted) 8x8 digits, a small sequential MNIST
* ``charlm``  – character LM: cells at equal parameters and time, one-hot vs embedding
"""
from __future__ import annotations

import importlib

from .runner import Options, Study, run_study

# name -> (module, one-line description); modules are imported only when run,
# so `rnnlab experiment --help` works without scikit-learn or matplotlib.
STUDIES: dict[str, tuple[str, str]] = {
    "adding": ("adding", "adding problem, T=100/150/200/400: tanh RNN, IRNN (Adam, and SGD as in Le et al.), "
                         "LSTM, GRU, BN-LSTM"),
    "digits": ("digits", "pixel-by-pixel 8x8 digits (plain and permuted): IRNN (Adam, and SGD as in Le et al.), "
                         "LSTM, BN-LSTM, LN-LSTM"),
    "charlm": ("charlm", "character LM at equal parameters, steps and time: cells, one-hot vs embedding"),
}


def get_study(name: str) -> Study:
    from ..errors import ConfigError

    if name not in STUDIES:
        raise ConfigError(f"unknown experiment {name!r}; choose from {', '.join(STUDIES)}")
    module = importlib.import_module(f".{STUDIES[name][0]}", __name__)
    return module.STUDY


def run(name: str, opts: Options | None = None) -> dict:
    """Run the study ``name``; returns the results dict (also written under ``opts.out``)."""
    return run_study(get_study(name), opts or Options())


__all__ = ["Options", "STUDIES", "Study", "get_study", "run", "run_study"]
