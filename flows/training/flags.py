"""Command-line flags generated from :class:`TrainConfig`'s fields: one flag per field, its help text,
its default and, for named choices, the valid names (read from the registry when the parser is built)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .config import TrainConfig, choices


def parse_widths(text: str) -> list[int]:
    """Parses "256,256", "256 256" or "256, 256" into layer widths; ValueError saying how to write them.

    Only the syntax is checked here; :meth:`TrainConfig.validate` rejects widths below 1.
    """
    try:
        widths = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        widths = []
    if not widths:
        raise ValueError(f"hidden widths must be integers separated by commas, e.g. 256, 256; got {text!r}")
    return widths


def _widths_argument(text: str) -> list[int]:
    try:
        return parse_widths(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("none", "default") else float(text)


#: argparse keyword arguments by the field's annotation (``from __future__ import annotations``: text).
_BY_TYPE: dict[str, dict[str, Any]] = {
    "int": {"type": int},
    "float": {"type": float},
    "str": {},
    "bool": {"action": "store_true"},
    "list[int]": {"type": _widths_argument, "nargs": "+"},
    "float | None": {"type": _optional_float},
}


def add_config_flags(
    parser: argparse.ArgumentParser, suppress_defaults: bool = False, extra_help: Mapping[str, str] = {}
) -> None:
    """Adds one flag per TrainConfig field (``--batch-size`` for ``batch_size``) to ``parser``.

    With ``suppress_defaults`` a flag not given is absent from the parsed namespace, which tells the
    flags given apart from defaults. ``extra_help`` appends a sentence to a field's help.
    """
    defaults = TrainConfig()
    for item in fields(TrainConfig):
        options = dict(_BY_TYPE[str(item.type)])
        text = TrainConfig.help(item.name)
        valid = choices(item.name)
        if valid is not None:
            text = f"{text} (one of: {', '.join(valid)})"
        if item.name in extra_help:
            text = f"{text}; {extra_help[item.name]}"
        options["help"] = text
        options["default"] = argparse.SUPPRESS if suppress_defaults else getattr(defaults, item.name)
        parser.add_argument(TrainConfig.flag(item.name), dest=item.name, **options)


def config_values(namespace: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields present in ``namespace``, hidden flattened to one list."""
    names = {f.name for f in fields(TrainConfig)}
    values = {name: value for name, value in vars(namespace).items() if name in names}
    if "hidden" in values:  # "--hidden 256,256 128" gives [[256, 256], [128]]
        values["hidden"] = [
            w for group in values["hidden"] for w in (group if isinstance(group, list) else [group])
        ]
    return values
