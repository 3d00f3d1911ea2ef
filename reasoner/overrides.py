"""Reading recipe-like YAML and dotted ``key=value`` overrides, and errors that name the offending key (L0).

YAML is read with YAML 1.2 scalars (``parse_yaml``): only ``true``/``false`` are booleans, so ``save_strategy: no``
is the string, and ``1e-6`` is a float. An override ``a.b.c=value`` (``parse_override``) sets ``tree[a][b][c]``
(``apply_override``; list items by integer index) to the value parsed as a YAML scalar or flow list. A pydantic
``ValidationError`` becomes one line per problem naming the dotted key (``format_validation_error``), with a
"did you mean" hint for an unknown key, looked up through nested sections, lists and tagged unions.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "ConfigError",
    "apply_override",
    "keys_help",
    "format_validation_error",
    "parse_override",
    "parse_value",
    "parse_yaml",
]

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # YAML 1.1 reads 1e-6 as a string


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2's scalars: only true/false are booleans (``save_strategy: no`` stays "no"), and
    ``1e-6`` is a float."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """YAML 1.2 scalars (see ``_Loader``): how recipes and override values are read."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message names the offending key."""


def parse_value(text: str) -> Any:
    """An override value: a YAML scalar or flow collection; ``1e-6`` style floats are floats."""
    try:
        return parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], parsed value)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override {item!r} must look like section.key=value (e.g. trainer.learning_rate=1e-6)"
        )
    return key.split("."), parse_value(value)


def apply_override(tree: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set ``tree[path[0]][path[1]]... = value``, creating sections; list items by integer index."""
    node: Any = tree
    for depth, part in enumerate(path[:-1]):
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ConfigError(f"cannot set {'.'.join(path)!r}: {'.'.join(path[:depth])!r} is not a section")
        if not isinstance(node, dict | list):
            raise ConfigError(f"cannot set {'.'.join(path)!r}: {where!r} is a value, not a section")
    last = path[-1]
    if isinstance(node, list):
        node[_index(last, node, ".".join(path))] = value
    else:
        node[last] = value


def _index(part: str, items: list, where: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(items) <= int(part) < len(items):
        raise ConfigError(f"{where!r}: {part!r} is not an index of a list of {len(items)} items")
    return int(part)


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _models(annotation: Any) -> list[tuple[str | None, type[BaseModel]]]:
    """The pydantic models inside a field's annotation (through list, Union, Annotated), each with its
    union tag: the ``Literal`` value of its ``name``/``kind`` field, as pydantic writes it in error locations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        tags = [
            typing.get_args(f.annotation)
            for key, f in annotation.model_fields.items()
            if key in ("name", "kind")
        ]
        literal = next((t[0] for t in tags if len(t) == 1 and isinstance(t[0], str)), None)
        return [(literal, annotation)]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _known_keys(root: Any, loc: Sequence[Any]) -> list[str]:
    """Field names of the section at ``loc`` (for 'did you mean' hints); a union member is picked by its tag."""
    candidates = _models(root)
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        tagged = [(t, m) for t, m in candidates if t == part and part not in m.model_fields]
        if tagged:
            candidates = tagged
            continue
        field = next((m.model_fields[part] for _, m in candidates if part in m.model_fields), None)
        if field is None:
            return []
        candidates = _models(field.annotation)
    return [key for _, m in candidates[:1] for key in m.model_fields]


def format_validation_error(err: ValidationError, root: Any, *, tagged_root: bool = False) -> str:
    """One line per problem, each naming the dotted key. ``root`` is the validated model (or union type);
    ``tagged_root``: the root is a tagged union, whose tag leads every error location and is left out."""
    lines = []
    for item in err.errors():
        loc = item["loc"][1:] if tagged_root and item["loc"] else item["loc"]
        where = _location(loc)
        if item["type"] == "extra_forbidden":
            known = _known_keys(root, item["loc"])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown key {where!r}{hint} (known: {', '.join(known)})")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg} (got {item.get('input')!r})")
    return "; ".join(lines)


def _keys(model: type[BaseModel]) -> str:
    """``a, b, c.{d, e}``: a section's keys, nested sections inline."""
    parts = []
    for key, field in model.model_fields.items():
        inner = [m for _, m in _models(field.annotation)]
        parts.append(f"{key}.{{{_keys(inner[0])}}}" if inner else key)
    return ", ".join(parts)


def keys_help(model: type[BaseModel], notes: dict[str, str] | None = None, width: int = 110) -> str:
    """The dotted keys of ``model``'s sections, generated from its fields: per top-level field, its keys (nested
    sections inline) and the first sentence of its attribute docstring, plus ``notes[field]`` when given (e.g. the registered
    reward names). What ``reasoner train --help`` lists, so the help cannot drift from the config."""
    import textwrap

    lines = []
    for key, field in model.model_fields.items():
        inner = [m for _, m in _models(field.annotation)]
        if typing.get_origin(field.annotation) is list and inner:
            head = f"{key}.<i>.{{{_keys(inner[0])}}}"
        elif inner:
            head = f"{key}.{{{_keys(inner[0])}}}"
        elif isinstance(field.annotation, type) or typing.get_origin(field.annotation) is typing.Literal:
            head = key
        else:
            head = f"{key}.*"
        text = " ".join((field.description or "").split()).split(". ")[0].rstrip(".") + "."
        if notes and key in notes:
            text = f"{text} {notes[key]}".strip()
        lines += textwrap.wrap(
            head, width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
        )
        lines += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)
