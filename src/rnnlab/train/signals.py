"""Stop requests (Ctrl-C, SIGTERM) turned into a flag the training loop reads between steps.

A KeyboardInterrupt raised in the middle of a step can land anywhere: after
the batch was drawn, halfway through the optimizer's update of the weights.
A checkpoint written then would not describe any state the uninterrupted run
ever had. So while a run trains, SIGINT and SIGTERM only set a flag; the loop
finishes the step it is in (milliseconds to seconds), stops at the step
boundary, writes ``last.npz`` and exits with status 130 (SIGINT) or 143
(SIGTERM). A second Ctrl-C during the final save is noted and ignored: the
save always finishes. A third one gives up waiting (KeyboardInterrupt); every
file in the run folder is still whole, because each is written atomically,
and a resume trims the metrics to the last checkpoint.

Handlers can only be installed from the main thread; elsewhere (a worker
thread, some notebooks) the loop still works, and a KeyboardInterrupt that
arrives mid-step is rewound by the trainer instead.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(KeyboardInterrupt):
    """Raised by callers that run several trainings in a row (a detector's networks, refits) when
    one of them stopped on SIGINT or SIGTERM, so the whole job stops instead of going on with a
    half-trained network; ``exit_code`` is 130 or 143. The command line exits with it."""

    def __init__(self, exit_code: int = 130) -> None:
        super().__init__(f"interrupted (exit status {exit_code})")
        self.exit_code = int(exit_code)

    def __reduce__(self):  # pickled back from a study's worker process
        return (Interrupted, (self.exit_code,))


def raise_if_interrupted(summary: dict) -> None:
    """After one training of several in a row: if a signal stopped it (its summary's exit code),
    raise :class:`Interrupted` so the whole job stops rather than going on with a cut-short run."""
    if summary.get("exit_code"):
        raise Interrupted(summary["exit_code"])


class StopSignals:
    """Context manager: ``with StopSignals(on_first) as stop: ... if stop.received: ...``."""

    def __init__(self, on_first: Callable[[str], None] = lambda name: None) -> None:
        self.on_first = on_first
        self.received: str | None = None   # "SIGINT" or "SIGTERM" once asked to stop
        self.count = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.count += 1
        if self.received is None:
            self.received = name
            self.on_first(name)
        elif self.count >= 3 and signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # pragma: no cover - platform without the signal
                    pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def exit_code(self) -> int:
        return EXIT_CODES.get(self.received or "", 0)
