"""The char-LM's config and model packing live in its task package (rnnlab.tasks.charlm); the old
import paths under rnnlab.train keep working for users (looked up when asked for)."""
from __future__ import annotations

import pytest


def test_the_config_extends_the_loops_and_keeps_the_char_lm_defaults():
    from rnnlab.tasks.charlm.config import TrainConfig
    from rnnlab.train.loopconfig import LoopConfig

    cfg = TrainConfig()
    assert isinstance(cfg, LoopConfig)
    assert (cfg.lr, cfg.clip, cfg.schedule, cfg.max_steps, cfg.eval_every) == (2e-3, 5.0, "auto", 0, 200)
    assert (cfg.hidden_size, cfg.num_layers, cfg.split, cfg.cell_options) == (256, 2, (0.9, 0.05, 0.05), {})
    assert TrainConfig().cell_options is not cfg.cell_options   # a fresh dict per config
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_old_import_paths_still_resolve():
    import rnnlab.train as train
    from rnnlab.tasks.charlm import config, packing
    from rnnlab.train import config as old_config
    from rnnlab.train import snapshot

    assert train.TrainConfig is config.TrainConfig and train.load_toml is config.load_toml
    assert old_config.TrainConfig is config.TrainConfig and old_config.check_types is config.check_types
    for name in ("pack_model", "unpack_model", "check_model_meta", "KIND"):
        assert getattr(snapshot, name) is getattr(packing, name)
    with pytest.raises(AttributeError):
        old_config.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        snapshot.no_such_name  # noqa: B018
