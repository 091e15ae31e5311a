"""Flags built from a task's config dataclass (rnnlab.commands.configflags): one flag per field,
the dataclass's default shown in the help, a flag left out reads as not given."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from rnnlab.cli import build_parser
from rnnlab.commands.configflags import add_config_flags, config_fields, field_default, flag_name, given_settings


@dataclass
class Toy:
    width: int = field(default=3, metadata={"help": "how wide", "check": "positive", "metavar": "W"})
    rate: float = 0.5
    kind: str = field(default="a", metadata={"help": "which kind", "choices": ("a", "b")})
    tidy: bool = True
    sizes: list = field(default_factory=lambda: [1, 2], metadata={"help": "sizes (default 1,2)"})
    hidden: int = field(default=0, metadata={"cli": False})


def _parser():
    p = argparse.ArgumentParser()
    names = add_config_flags(p, Toy, types={"sizes": lambda t: [int(v) for v in t.split(",")]})
    return p, names


def test_one_flag_per_field_with_the_dataclass_default_in_its_help():
    p, names = _parser()
    assert names == {"width": "--width", "rate": "--rate", "kind": "--kind", "tidy": "--tidy", "sizes": "--sizes"}
    text = p.format_help()
    assert "how wide (default: 3)" in text and "rate (default: 0.5)" in text and "--no-tidy" in text
    assert "sizes (default 1,2)" in text and "(default: [1, 2])" not in text and "--hidden" not in text


def test_flags_left_out_are_not_given_and_the_dataclass_fills_them():
    p, _ = _parser()
    args = p.parse_args([])
    assert given_settings(args, Toy) == {}
    assert Toy(**given_settings(args, Toy)) == Toy()
    args = p.parse_args(["--width", "3", "--no-tidy", "--sizes", "4,5", "--kind", "b"])
    # a flag equal to the default is still given (on --resume it replaces the run's value)
    assert given_settings(args, Toy) == {"width": 3, "tidy": False, "sizes": [4, 5], "kind": "b"}


def test_checks_and_choices_come_from_the_metadata(capsys):
    p, _ = _parser()
    for argv in (["--width", "0"], ["--kind", "c"]):
        with pytest.raises(SystemExit):
            p.parse_args(argv)
    err = capsys.readouterr().err
    assert "must be at least 1, got 0" in err and "invalid choice: 'c'" in err


def _subparser(*path):
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path, config", [
    (("detect", "run"), "rnnlab.tasks.anomaly.config:DetectorConfig"),
    (("detect", "nab"), "rnnlab.tasks.anomaly.config:DetectorConfig"),
    (("forecast", "train"), "rnnlab.tasks.forecast.config:ForecastConfig"),
    (("tag", "train"), "rnnlab.tasks.tagging.config:TagConfig"),
    (("train",), "rnnlab.tasks.charlm.config:TrainConfig"),
])
def test_every_config_field_is_a_documented_flag_whose_default_is_the_dataclasss(path, config):
    import importlib

    module, name = config.split(":")
    cls = getattr(importlib.import_module(module), name)
    parser = _subparser(*path)
    by_dest = {a.dest: a for a in parser._actions}
    flags = [f for f in config_fields(cls) if f.name in by_dest]
    assert len(flags) >= 10
    for f in flags:  # (fields not here are loop settings the command leaves at the task's value)
        action = by_dest[f.name]
        assert action.default is None and flag_name(f) in action.option_strings, f.name
        assert action.help and "(default" in action.help, f.name
        default = field_default(f)
        if "(default" not in f.metadata.get("help", "") and not isinstance(default, (list, tuple, dict, bool)):
            shown = "none" if default in (None, "") else f"{default:g}" if isinstance(default, float) else default
            assert action.help.endswith(f"(default: {shown})"), (f.name, action.help)


def test_a_task_config_keeps_the_loops_help_for_a_loop_setting_it_gives_a_new_default():
    from rnnlab.tasks.charlm.config import TrainConfig
    from rnnlab.train.loopconfig import LoopConfig

    assert issubclass(TrainConfig, LoopConfig)
    lr = next(a for a in _subparser("train")._actions if a.dest == "lr")
    assert lr.help == "learning rate (default: 0.002)"   # LoopConfig's help, TrainConfig's default
