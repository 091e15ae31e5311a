"""The scripts under benchmarks/ loaded as modules for their tests (the folder is not a package)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> Iterator[ModuleType]:
    """Import ``benchmarks/<name>.py`` under a private module name; yield it, and forget it after."""
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def throughput() -> Iterator[ModuleType]:
    yield from _load("throughput")


@pytest.fixture(scope="module")
def store() -> Iterator[ModuleType]:
    yield from _load("nab_online_store")


@pytest.fixture(scope="module")
def nets() -> Iterator[ModuleType]:
    yield from _load("nab_online_nets")
