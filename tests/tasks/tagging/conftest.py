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


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with small generated train.tsv and dev.tsv (the label-consistency tests)."""
    from rnnlab.tasks.tagging.data import write_conll
    from rnnlab.tasks.tagging.synthetic import synthetic_sentences

    root = tmp_path_factory.mktemp("prop")
    for name, n, seed in (("train", 60, 1), ("dev", 30, 2)):
        write_conll(root / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    return root


@pytest.fixture(scope="module")
def tiny_train(files):
    """tiny_train(out, *flags): `rnnlab tag train` on ``files`` with a tiny, fast model; the exit code."""
    from rnnlab.cli import main

    tiny = ["--max-steps", "40", "--eval-every", "20", "--max-minutes", "0", "--hidden-size", "8",
            "--char-hidden", "4", "--word-dim", "8", "--lr", "0.01"]

    def train(out, *flags) -> int:
        return main(["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(files / "dev.tsv"),
                     "--out", str(out), *tiny, *flags])

    return train
