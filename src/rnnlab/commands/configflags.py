"""A command's flags built from a task's config dataclass: one flag per field, with the default
and the help read from the dataclass, so that each lives in one place.

The help of a field is its ``metadata["help"]`` (or an entry of the ``help`` dict the command
passes, for configs shared with the Python API that keep their help here); the shown default is
the dataclass default, appended as ``(default: X)`` unless the help already says ``(default``.
Other metadata keys: ``flag`` (the flag's name when it is not ``--field-name``), ``aliases``
(more names), ``type`` (the value's type where the default is None), ``metavar``, ``choices``,
``nargs`` and ``const`` (argparse's), and ``check`` (``"positive"``, ``"non_negative"`` or
``"probability"``, in [0, 1]: the value is checked by :mod:`rnnlab.commands.argtypes`, with its wording).

Every flag is made with ``default=None``: a flag the user did not give stays None, so
:func:`given_settings` tells what the user gave from what the dataclass would fill in. A new run
is the dataclass built from the given settings; a resumed run keeps its own and takes only those
given (:func:`rnnlab.train.job.resumed_config`).
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, Iterable

from .argtypes import non_negative_float, positive_float, positive_int, probability

_CHECKS: dict[tuple[type, str], Callable[[str], Any]] = {
    (int, "positive"): positive_int, (float, "positive"): positive_float,
    (float, "non_negative"): non_negative_float, (float, "probability"): probability,
}


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_help(config_cls: type, f: dataclasses.Field) -> str:
    """A field's help: its own metadata's, else that of the same field in a base dataclass (a task's
    config that sets a new default for a loop setting keeps the loop's help)."""
    for cls in config_cls.__mro__:
        if dataclasses.is_dataclass(cls):
            for g in dataclasses.fields(cls):
                if g.name == f.name and g.metadata.get("help"):
                    return g.metadata["help"]
    return ""


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def config_fields(config_cls: type, skip: Iterable[str] = ()) -> list[dataclasses.Field]:
    skip = set(skip)
    return [f for f in dataclasses.fields(config_cls) if f.name not in skip and f.metadata.get("cli", True)]


def add_config_flags(p: Any, config_cls: type, *, skip: Iterable[str] = (), help: dict[str, str] | None = None,
                     types: dict[str, Callable[[str], Any]] | None = None,
                     groups: dict[str, Any] | None = None) -> dict[str, str]:
    """Add one flag per field of ``config_cls`` (but ``skip``) to the parser or group ``p`` (or to
    ``groups[field]``); ``types`` gives a field's argument type where the field's own type is not
    enough (lists, checked values). Returns {field: flag}, for messages naming the flag."""
    names = {}
    for f in config_fields(config_cls, skip):
        meta, default = f.metadata, field_default(f)
        text = (help or {}).get(f.name) or field_help(config_cls, f) or f.name.replace("_", " ")
        if "(default" not in text:
            text += f" (default: {_shown(default)})"
        flag = flag_name(f)
        target = (groups or {}).get(f.name, p)
        names[f.name] = flag
        opts: dict[str, Any] = {"dest": f.name, "default": None, "help": text.replace("%", "%%")}
        if isinstance(default, bool):
            target.add_argument(flag, *meta.get("aliases", ()), action=argparse.BooleanOptionalAction, **opts)
            continue
        kind = meta.get("type") or (type(default) if default is not None else str)
        check = meta.get("check")
        opts["type"] = (types or {}).get(f.name) or (_CHECKS[(kind, check)] if check else kind)
        if "choices" in meta:
            opts["choices"] = meta["choices"]
        if "nargs" in meta:  # e.g. nargs "?" with a const: the flag alone means the const
            opts["nargs"], opts["const"] = meta["nargs"], meta.get("const")
        opts["metavar"] = meta.get("metavar", None if "choices" in meta else f.name.upper())
        target.add_argument(flag, *meta.get("aliases", ()), **opts)
    return names


def given_settings(args: argparse.Namespace, config_cls: type, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of ``config_cls`` the user gave a flag for (those not None in ``args``)."""
    return {f.name: getattr(args, f.name) for f in config_fields(config_cls, skip)
            if getattr(args, f.name, None) is not None}
