"""User-facing error types.

Everything that can go wrong because of the user's input (a missing file, a
corrupt checkpoint, a bad option) raises a subclass of :class:`RnnlabError`.
The command line catches exactly this base class and prints
``error: <message>`` with exit status 2 instead of a traceback, so messages
are written for a person: one line, naming the file (or option) and the
problem, and where possible what to do about it.

Programming errors (wrong types passed between modules, broken invariants)
stay ordinary ``ValueError`` / ``TypeError`` so they keep their traceback.
"""
from __future__ import annotations


class RnnlabError(Exception):
    """Base class for errors caused by user input, reported without traceback."""


class DataError(RnnlabError):
    """A corpus, dataset or batch layout cannot be used."""


class CheckpointError(RnnlabError):
    """A checkpoint cannot be written or read."""


class ConfigError(RnnlabError):
    """An option or configuration value is invalid."""


class InputWarning(UserWarning):
    """Input that is used but looks wrong (e.g. an absurd value); the command line prints it as one line."""
