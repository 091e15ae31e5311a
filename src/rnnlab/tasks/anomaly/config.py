"""The settings of an anomaly detector, with their defaults and the help ``rnnlab detect`` shows
(field metadata read by :mod:`rnnlab.commands.configflags`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import ConfigError
from .likelihood import POST


SEASON_MODES = ("off", "on", "auto", "pick")   # --online-season (rnnlab.tasks.anomaly.season)


def _opt(default, help: str, **meta):
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class DetectorConfig:
    window: int = _opt(32, "rows per input window", metavar="L", check="positive")
    hidden: int = _opt(32, "LSTM units", metavar="H", check="positive")
    latent: int = _opt(8, "the VAE's latent size", metavar="Z", check="positive")
    epochs: int = _opt(30, "passes over the probationary-period windows", metavar="N", check="positive")
    batch: int = _opt(32, "windows per training step", cli=False)
    lr: float = _opt(3e-3, "Adam learning rate, cosine-annealed", metavar="LR")
    beta: float = _opt(1.0, "the VAE's KL weight", cli=False)
    samples: int = _opt(4, "the VAE's z samples per window when scoring", metavar="K", check="positive")
    calendar: bool = _opt(True, "hour-of-day and day-of-week inputs (when timestamps are given); --no-calendar "
                                "leaves them out")
    post: str = _opt("likelihood", "raw error to score: HTM-style anomaly likelihood (short- against long-window "
                                   "errors; default) or the tail of a Gaussian fitted on the probationary period",
                     choices=tuple(POST))
    short: int = _opt(5, "the anomaly likelihood's short window in rows", metavar="S", check="positive")
    slow: int = _opt(20, "the anomaly likelihood's second, slower short window in rows: each row's z is the larger "
                         "of the --short and the S2-row window's, so a sustained moderate change stands out as a "
                         "single wild row does (default 20; 0: the short window alone, as before)", metavar="S2")
    long: int = _opt(8640, "the anomaly likelihood's long window in rows", metavar="W", check="positive")
    warmup: int = _opt(100, "the anomaly likelihood's statistics from the scored rows only (not the training "
                            "rows, on which the network's errors are smaller), the first W of them scoring 0 "
                            "(default 100; 0: statistics from the first full window on, training rows included)",
                       metavar="W")
    warmup_alarms: bool = _opt(True, "range alarms count in the --warmup rows too (the range rule needs no "
                                     "statistics; HTM's applies from the first scored row; default); "
                                     "--no-warmup-alarms: those rows score 0")
    suppress: int = _opt(50, "onsets only: a score counts only above the K rows before it (default 50; 0 off)",
                         metavar="K")
    peak: int = _opt(10, "peaks only: a run of consecutive onsets (a rising score passes the onset rule on "
                         "row after row, and NAB counts each as a detection) raises one alarm, its last score, "
                         "on the row after the run (at once on a score of 1), at most N rows after the run "
                         "began (default 10; 0: every onset at once, as before)", metavar="N")
    max_minutes: float = _opt(0.0, "training-time budget per series in minutes (default: none, epochs only)",
                              metavar="M")
    refit_every: int = _opt(500, "learn online: every R scored rows, train on the windows of the last P rows "
                                 "(P = the probationary length) before going on (default 500; 0: never, the "
                                 "probationary period only)", metavar="R")
    refit_epochs: int = _opt(3, "passes over those windows at each refit", metavar="N", check="positive")
    refit_lr: float = _opt(0.3, "the refits' learning rate as a fraction of --lr", metavar="F")
    ensemble: int = _opt(1, "K networks trained from different seeds (the first from --seed, the others derived "
                            "from it), their raw anomaly measures averaged before the score: steadier from seed "
                            "to seed, K times the time", metavar="K", check="positive")
    online_every: int = _opt(2, "the online detector: score K rows, then take one Adam step (default 2)", metavar="K",
                             check="positive")
    online_batch: int = _opt(16, "the online detector: windows per step, the newest K and the rest drawn from its "
                                 "replay memory", metavar="B", check="positive")
    online_memory: int = _opt(4000, "the online detector: rows in its replay memory (the last M rows)", metavar="M",
                              check="positive")
    online_lr: float = _opt(1e-3, "the online detector's Adam learning rate (constant)", metavar="LR")
    online_warm: int = _opt(300, "the online detector: extra steps on the probationary rows once it has seen them",
                            metavar="N")
    online_clip: float = _opt(3.0, "the online detector's Huber loss: errors beyond C robust sd count linearly",
                              metavar="C")
    online_floor: float = _opt(0.1, "the online detector: forecast errors below F robust sd count 0 (a flat line "
                                    "or clean square wave raises nothing)", metavar="F")
    online_norm: int = _opt(500, "the online detector: divide each |error| by the typical error (1.4826 x median) "
                                 "of the N rows before it, plus the floor (default 500; 0: off)", metavar="N")
    online_log: bool = _opt(True, "the online detector: the raw measure is log(1 + the normalised error), so one wild "
                                  "row counts little more than a clearly wrong one and a run of wrong rows stands out "
                                  "(default; --no-online-log: the normalised error itself)")
    online_season: str = _opt("pick", "the online detector: also the value one day before each row as an input "
                                      "(when the timestamps' step divides a day): on (also a bare --online-season), "
                                      "off, auto: only when the probationary rows pass M4's seasonality test at "
                                      "lag one day (at least 3 days of them; rnnlab.tasks.anomaly.season), or pick "
                                      "(default): a network with it and one without both learn the stream (twice "
                                      "the cost of off) and each row takes the measure of the one that forecast the "
                                      "--online-pick rows before it better",
                              choices=SEASON_MODES, nargs="?", const="on")
    online_pick: int = _opt(500, "the online detector with --online-season pick: rows of recent forecast errors "
                                 "compared", metavar="N", check="positive")
    online_average: float = _opt(0.0, "the online detector: score with weights averaged over its steps, each "
                                      "step's weight 1 - D (0: score with the last weights)", metavar="D")
    online_novel: int = _opt(-1, "the online detector: a value-novelty channel beside the forecast errors: a row "
                                 "is novel when at most K earlier rows took a value in its bucket or the two beside "
                                 "it (the probationary range cut into 130 buckets, HTM's resolution), and each row's "
                                 "z is also at least HTM's likelihood of that 0/1 measure (rnnlab.tasks.anomaly."
                                 "novelty; -1: off)", metavar="K")
    online_scales: str = _opt("", "the online detector: also the means of the value over the last W1,W2,... rows "
                                  "as inputs (e.g. 16,128; default none)", metavar="W1,W2")
    range_tolerance: float = _opt(0.05, "range alarms: a value more than F x the range of all earlier values "
                                        "outside that range scores 1, before the onset rule (HTM's spatial-anomaly "
                                        "rule and constant; default 0.05; 0 off)", metavar="F", check="non_negative")

    def validate(self) -> "DetectorConfig":
        if self.post not in POST:
            raise ConfigError(f"unknown --post {self.post!r}; choose from {', '.join(POST)}")
        for name in ("window", "hidden", "latent", "epochs", "batch", "samples", "short", "long", "ensemble"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.refit_every < 0 or self.refit_epochs < 1 or not self.refit_lr > 0:
            raise ConfigError("--refit-every must be >= 0, --refit-epochs >= 1 and --refit-lr > 0")
        if self.suppress < 0 or self.warmup < 0 or self.peak < 0 or self.slow < 0:
            raise ConfigError(f"--suppress, --warmup, --peak and --slow must be >= 0, got {self.suppress}, "
                              f"{self.warmup}, {self.peak} and {self.slow}")
        if not self.lr > 0 or self.max_minutes < 0:
            raise ConfigError("--lr must be positive and --max-minutes >= 0")
        if min(self.online_every, self.online_pick, self.online_batch, self.online_memory) < 1 \
                or self.online_warm < 0 or not self.online_lr > 0 or not self.online_clip > 0 \
                or not self.online_floor >= 0 or self.online_norm < 0 or not 0 <= self.online_average < 1:
            raise ConfigError("--online-every, --online-pick, --online-batch, --online-memory must be >= 1, "
                              "--online-warm >= 0, --online-lr and --online-clip > 0, --online-floor and "
                              "--online-norm >= 0, --online-average in [0, 1)")
        try:
            scales = [int(w) for w in str(self.online_scales).replace(" ", "").split(",") if w]
        except ValueError:
            scales = [0]
        if any(w < 1 for w in scales):
            raise ConfigError(f"--online-scales must be positive whole numbers joined by commas, got "
                              f"{self.online_scales!r}")
        if self.online_novel < -1:
            raise ConfigError(f"--online-novel must be -1 (off) or a count >= 0, got {self.online_novel}")
        if isinstance(self.online_season, bool):  # settings saved before "auto": True / False
            self.online_season = "on" if self.online_season else "off"
        if self.online_season not in SEASON_MODES:
            raise ConfigError(f"--online-season must be off, on, auto or pick, got {self.online_season!r}")
        if not 0 <= self.range_tolerance < math.inf:
            raise ConfigError(f"--range-tolerance must be >= 0 (0 turns range alarms off), got {self.range_tolerance}")
        return self
