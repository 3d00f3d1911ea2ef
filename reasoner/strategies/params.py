"""``key=value`` strings -> a strategy's typed config dataclass, with errors that name the bad key or value.

Each config is a frozen dataclass whose fields are ``int``, ``float``, ``bool``, ``str`` or a ``Literal`` of
strings, each with an attribute docstring (units, meaning); ``__post_init__`` checks ranges with ``check``.
``config_help`` reads those docstrings back (for ``--help`` and error messages).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class FieldHelp:
    """One config field as shown to users."""

    name: str
    type: str
    default: Any
    doc: str


def check(name: str, value: Any, ok: bool, rule: str) -> None:
    """Raise ``ValueError`` naming the field when ``ok`` is False (used in configs' ``__post_init__``)."""
    if not ok:
        raise ValueError(f"{name} must be {rule}, got {value!r}")


def _docstrings(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # pragma: no cover - source unavailable (frozen app)
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def config_help(cls: type) -> list[FieldHelp]:
    """The fields of a config dataclass: name, type, default and attribute docstring."""
    hints = typing.get_type_hints(cls)
    docs = _docstrings(cls)
    return [
        FieldHelp(f.name, _type_name(hints[f.name]), f.default, docs.get(f.name, ""))
        for f in dataclasses.fields(cls)
    ]


def _coerce(key: str, raw: Any, tp: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if typing.get_origin(tp) is Literal:
        choices = [str(a) for a in typing.get_args(tp)]
        if text not in choices:
            raise ValueError(f"{key}={raw!r}: must be one of {', '.join(choices)}")
        return text
    if tp is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{key}={raw!r}: expected a boolean (true/false)")
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            kind = "an integer" if tp is int else "a number"
            raise ValueError(f"{key}={raw!r}: expected {kind}") from None
    return raw


def parse_config(cls: type, params: Mapping[str, Any], owner: str) -> Any:
    """Build ``cls`` from ``params`` (strings are parsed by field type). Raises ``ValueError`` that names the
    strategy, the bad key or value, and lists the valid keys."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    valid = ", ".join(names) if names else "(none: this strategy takes no parameters)"
    values = {}
    for key, raw in params.items():
        if key not in names:
            raise ValueError(f"strategy {owner!r}: unknown parameter {key!r}; valid keys: {valid}")
        try:
            values[key] = _coerce(key, raw, hints[key])
        except ValueError as err:
            raise ValueError(f"strategy {owner!r}: {err}; valid keys: {valid}") from None
    try:
        return cls(**values)
    except ValueError as err:
        raise ValueError(f"strategy {owner!r}: {err}; valid keys: {valid}") from None
