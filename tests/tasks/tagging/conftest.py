"""Shared by the tagging tests: the tagger written in torch (``torch_tagger.py``), loaded as a module
(the tests run with ``--import-mode=importlib``, so a sibling file is not importable by name)."""
import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def torch_tagger():
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("torch_tagger", Path(__file__).with_name("torch_tagger.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
