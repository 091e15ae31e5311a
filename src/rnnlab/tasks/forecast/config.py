"""The forecaster's settings, with their defaults and the help ``rnnlab forecast train`` shows
(field metadata read by :mod:`rnnlab.commands.configflags`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ...errors import ConfigError
from ...train.loopconfig import LoopConfig
from .frequency import frequency
from .model import MODELS


def _opt(default, help: str = "", **meta):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class ForecastConfig(LoopConfig):
    data: str = _opt("m4-hourly", "m4-hourly or a CSV file", cli=False)   # the positional DATA
    data_dir: str | None = _opt(None, "folder holding the M4 files (e.g. ../shared/data)", metavar="DIR")
    test: str = _opt("", "the values after each training series (M4's wide layout or unique_id,ds,y rows); "
                         "'forecast eval RUN' scores them", metavar="TEST.csv")
    frequency: str = _opt("", "yearly|quarterly|monthly|weekly|daily|hourly: M4's horizon (6/8/18/13/14/48) and "
                              "MASE period (1/4/12/1/1/24) and a default window",
                          choices=("", "yearly", "quarterly", "monthly", "weekly", "daily", "hourly"), metavar="FREQ")
    mase_period: int = _opt(0, "MASE's and Naive2's period (default: M4's for --frequency, else --season)",
                            metavar="M", check="positive")
    model: str = _opt("encdec", "encdec: a decoder runs over the horizon; direct: a Linear on the last state "
                                "outputs the whole horizon (default encdec, the better on M4 Hourly)",
                      choices=MODELS)
    cell: str = _opt("gru", "recurrent cell", choices=("lstm", "gru"))
    window: int = _opt(0, "input length (default 7 seasons, 168 hourly, at least 2 horizons); shorter series are "
                          "trained and forecast with windows of their own length", metavar="L", check="positive")
    horizon: int = _opt(0, "steps forecast at once (default: 48 for M4 Hourly, else 2 seasons)", metavar="H",
                        check="positive")
    holdout: int = _opt(0, "values at each series' end kept out of training and validation, for a later "
                           "rolling-origin test", metavar="N")
    history: int = _opt(0, "keep only the last N values of each series (training, and eval's default; 0: all)",
                        metavar="N")
    min_window: int = _opt(0, "the shortest input length of the --short-share batches (default 0: the horizon)",
                           metavar="N")
    short_share: float = _opt(0.25, "share of the batches whose input length is drawn from --min-window..--window, so "
                                    "that histories shorter than the window are forecast as well as full ones (0: every "
                                    "batch has the full window)", metavar="P")
    phase: str = _opt("end", "for series without timestamps, the time features count steps from the series' end, "
                             "the forecast origin (a history cut at the front keeps its phase), or from its first "
                             "value (series that all start at the same time)", choices=("end", "start"))
    init: str = _opt("", "start from the weights of a trained run (fine-tuning on this data); --model, --cell, "
                         "--hidden-size, --layers and --quantiles must be that run's", metavar="RUN")
    hidden_size: int = _opt(64, "units", check="positive")
    num_layers: int = _opt(1, "stacked layers", flag="--layers", metavar="LAYERS", check="positive")
    quantiles: list = _opt([0.1, 0.5, 0.9], "quantile levels learnt with the pinball loss; the one nearest 0.5 is "
                                            "the forecast, the outer ones the interval", metavar="Q1,Q2,...")
    season: int = _opt(0, "season length for the seasonal-naive base and MASE (default: inferred, 24 hourly)",
                       metavar="M", check="positive")
    norm: str = _opt("auto", "per-window scaling: log of value/window mean, or standardised (default: log when all "
                             "values are positive)", choices=("auto", "log", "standard"))
    base: str = _opt("snaive", "learn a correction of the seasonal naive forecast, or the values",
                     choices=("snaive", "none"))
    periods: list = _opt([24.0, 168.0], cli=False)
    batch_size: int = _opt(64, "windows per step", check="positive")
    eval_batch: int = _opt(512, cli=False)
    lr: float = _opt(3e-3, "Adam learning rate, cosine-annealed")
    schedule: str = _opt("auto", cli=False)
    max_steps: int = _opt(0, "step budget (default 0: none; on --resume: the run's own)")
    max_minutes: float = _opt(10.0, "training time (default 10; on --resume: the run's own)")
    eval_every: int = _opt(200, "steps between validations", check="positive")
    log_every: int = _opt(50, cli=False)
    seed: int = _opt(0, "seed of the weights and the window draws")

    def validate(self) -> "ForecastConfig":
        super().validate()
        if self.model not in MODELS:
            raise ConfigError(f"unknown --model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.cell not in ("lstm", "gru"):
            raise ConfigError(f"--cell must be lstm or gru, got {self.cell!r}")
        frequency(self.frequency)
        for name in ("window", "horizon", "holdout", "history", "min_window", "season", "mase_period"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("hidden_size", "num_layers", "batch_size", "eval_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.quantiles or any(not 0 < q < 1 for q in self.quantiles):
            raise ConfigError(f"--quantiles must lie strictly between 0 and 1, got {self.quantiles}")
        if self.norm not in ("auto", "log", "standard") or self.base not in ("snaive", "none"):
            raise ConfigError("--norm must be auto, log or standard and --base snaive or none")
        if not 0 <= self.short_share <= 1:
            raise ConfigError(f"--short-share must lie between 0 and 1, got {self.short_share}")
        if self.phase not in ("end", "start"):
            raise ConfigError(f"--phase must be end or start, got {self.phase!r}")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "ForecastConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        if "short_share" not in d and "min_window" in d:
            # a run saved before --short-share: --min-window N > 0 drew every batch's length, 0 none
            d["short_share"] = 1.0 if d["min_window"] > 0 else 0.0
        return cls(**{k: v for k, v in d.items() if k in names})
