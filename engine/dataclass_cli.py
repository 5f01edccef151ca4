"""Command-line flags generated from a documented dataclass.

In: a dataclass whose fields each carry a docstring (a string literal on the line after the
field), like `engine.settings.Settings` and `engine.training.config.TrainConfig`. Out: its
(name, default, doc) list, one typed argparse flag per field, and the parsed values back, so
no command line re-declares a field, its type, its choices or its default.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any, Callable, Collection, Mapping


def documented_fields(cls: type) -> list[tuple[str, Any, str]]:
    """(name, default, doc) for every field of `cls`, the doc read from the class's source;
    the default is `dataclasses.MISSING` for a field without one."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[attr-defined]
    return [(f.name, f.default, docs.get(f.name, "")) for f in dataclasses.fields(cls)]


def converter(hint: Any) -> tuple[Callable[[str], Any], list[Any] | None]:
    """argparse type and choices for a field annotation (`X | None` parses as X; a
    `tuple[X, ...]` from comma-separated text)."""
    origin, args = typing.get_origin(hint), [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is typing.Literal:
        return str, args
    if origin in (typing.Union, types.UnionType):
        return converter(args[0])
    if origin is tuple:
        return _comma_list(args[0]), None
    return hint, None


def _comma_list(item: type) -> Callable[[str], tuple]:
    """argparse type for `tuple[item, ...]`: '0,8,16' -> (0, 8, 16); anything else one sentence."""

    def parse(text: str) -> tuple:
        try:
            return tuple(item(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of {item.__name__} "
                                             "numbers (e.g. 0,8,16)") from None

    return parse


def _shown(default: Any) -> str:
    return ",".join(map(str, default)) if isinstance(default, tuple) else str(default)


def add_dataclass_flags(parser: Any, cls: type, *, names: Collection[str] | None = None,
                        aliases: Mapping[str, list[str]] | None = None,
                        containers: Mapping[str, Any] | None = None) -> None:
    """One flag per field of `cls` (only `names` when given): `--field-name` plus
    `aliases[name]`, typed and limited to choices by the annotation (or the field's `choices`
    metadata, a callable giving them), help from the docstring,
    added to `containers[name]` (e.g. a mutually exclusive group) or else `parser`. Unset
    flags stay out of the namespace, so the dataclass default applies; a field without a
    default is a required flag; a bool field is a switch (`--name`, or `--no-name` when it
    defaults to True)."""
    hints = typing.get_type_hints(cls)
    metas = {f.name: f.metadata for f in dataclasses.fields(cls)}
    for name, default, doc in documented_fields(cls):
        if names is not None and name not in names:
            continue
        target = (containers or {}).get(name, parser)
        flag = "--" + ("no-" if default is True else "") + name.replace("_", "-")
        flags = [flag, *(aliases or {}).get(name, [])]
        if hints[name] is bool:
            target.add_argument(*flags, dest=name, action="store_false" if default else "store_true",
                                default=argparse.SUPPRESS, help=doc.replace("%", "%%"))
            continue
        conv, choices = converter(hints[name])
        if "choices" in metas[name]:
            choices = list(metas[name]["choices"]())
        required = default is dataclasses.MISSING
        text = doc if required else f"{doc} (default: {_shown(default)})"
        target.add_argument(*flags, dest=name, type=conv, choices=choices, required=required,
                            default=argparse.SUPPRESS, help=text.replace("%", "%%"))


def dataclass_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed values of `cls`'s fields (flags left unset are absent)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}
