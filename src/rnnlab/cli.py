"""The ``rnnlab`` command: one subcommand per module in :mod:`rnnlab.commands`.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
User errors (:class:`rnnlab.errors.RnnlabError`) are printed as one line,
``error: ...``, with exit status 2 — never a traceback. Output piped into a
reader that stops early (``rnnlab gradcheck --all | head``) ends the command
quietly, with the status of a process ended by SIGPIPE (141).
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings

from . import __version__
from .errors import RnnlabError

COMMANDS = ["train", "sample", "eval", "export", "import_", "plot", "gradcheck", "experiment", "detect", "tag", "forecast", "sweep",
            "blas"]
# the commands that multiply matrices for long enough for the BLAS's thread count to matter: --threads on each
THREADED = ("train", "sample", "eval", "experiment", "detect", "tag", "forecast", "sweep", "blas")
THREADS_HELP = ("threads of the BLAS library (NumPy's OpenBLAS, oneMKL) for this command; default: the library's "
                "own (one per core, or OPENBLAS_NUM_THREADS). On a machine busy with other work, 1 can be several "
                "times faster: every small product waits for all of its threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Recurrent neural networks from scratch in NumPy: train, sample, evaluate, check.")
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"rnnlab.commands.{name}").add_parser(sub)
    from .commands.argtypes import positive_int

    for name in THREADED:
        for leaf in _leaves(sub.choices[name]):
            leaf.add_argument("--threads", type=positive_int, default=None, metavar="N", help=THREADS_HELP)
    return parser


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers that take a command's own flags: ``parser`` itself, or those of its subcommands
    (``rnnlab tag train``), once each (an alias shares its parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    seen: dict[int, argparse.ArgumentParser] = {}
    for action in subs:
        for child in action.choices.values():
            for leaf in _leaves(child):
                seen.setdefault(id(leaf), leaf)
    return list(seen.values())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning  # one line in rnnlab's voice, no source path (restored below)
    try:
        if getattr(args, "threads", None):
            from .blas.threads import limit

            limit(args.threads)
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except RnnlabError as exc:
        return _report(f"error: {_one_line(str(exc))}", 2)
    except KeyboardInterrupt as exc:
        return _report("interrupted", getattr(exc, "exit_code", 130))
    finally:
        warnings.showwarning = shown


def _show_warning(message: Warning | str, category: type, filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """A library's warning (NumPy's RuntimeWarning, a UserWarning about a cache folder) as one line
    ``rnnlab: warning: ...`` on stderr, without the source path and line Python would print."""
    text = _one_line(str(message), 300)
    if issubclass(category, RuntimeWarning) and "overflow" in text:
        text += " (a value near the float64 limit 1.7e308 in the input? check the data for absurd values)"
    elif "cache" in text.lower() and ("writable" in text.lower() or "permission" in text.lower()):
        text += " (point the tool's cache folder, e.g. MPLCONFIGDIR or NUMBA_CACHE_DIR, at a writable folder)"
    _report(f"rnnlab: warning: {text}", 0)


def _one_line(message: str, limit: int = 1000) -> str:
    """A message as one line (some wrap a library's multi-line text), at most ``limit`` characters."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[:limit - 5] + " ...)"


def _report(line: str, code: int) -> int:
    try:
        print(line, file=sys.stderr)
    except BrokenPipeError:  # stderr is a closed pipe too (`rnnlab ... 2>&1 | head`)
        return _closed_pipe()
    return code


def _closed_pipe() -> int:
    """The reader of stdout went away (``rnnlab gradcheck | head``): stop quietly, as ``cat`` does.

    Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError
    instead of ending the process. Whatever is still buffered can never be
    delivered: point stdout (and stderr, if it is the closed pipe) at
    /dev/null so that the interpreter's final flush does not print
    "Exception ignored ... BrokenPipeError", and exit with the status of a
    process ended by SIGPIPE (128 + 13), which shells treat as such.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):
                pass
    os.close(devnull)
    return 128 + getattr(signal, "SIGPIPE", 13)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
