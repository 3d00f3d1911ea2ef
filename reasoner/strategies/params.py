"""Strategy parameters: each strategy's config is a frozen pydantic model (``StrategyConfig``), built from
``key=value`` strings with errors that name the strategy, the bad key or value, and list the valid keys.

A config's fields are ``int``, ``float``, ``bool``, ``str`` or a ``Literal`` of strings, with ranges declared
as ``Field(ge=..., gt=..., le=...)`` and an attribute docstring each (units, meaning, default). Strings from the
command line are parsed by pydantic's lax mode ("3" -> 3, "0.5" -> 0.5, "true" -> True). ``config_help`` reads
the fields back (for ``--help`` and error messages).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError


class StrategyConfig(BaseModel):
    """Base of every strategy's config: frozen, an unknown key is an error, attribute docstrings are the
    fields' descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True)
class FieldHelp:
    """One config field as shown to users."""

    name: str
    type: str
    default: Any
    doc: str


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def config_help(cls: type[BaseModel]) -> list[FieldHelp]:
    """The fields of a config model: name, type, default and attribute docstring."""
    return [
        FieldHelp(name, _type_name(f.annotation), f.default, " ".join((f.description or "").split()))
        for name, f in cls.model_fields.items()
    ]


def parse_config(cls: type[BaseModel], params: Mapping[str, Any], owner: str) -> Any:
    """Validate ``params`` (strings are parsed by field type) into ``cls``. Raises ``ValueError`` that names
    the strategy, the bad key or value, and lists the valid keys."""
    names = list(cls.model_fields)
    valid = ", ".join(names) if names else "(none: this strategy takes no parameters)"
    for key in params:
        if key not in names:
            raise ValueError(f"strategy {owner!r}: unknown parameter {key!r}; valid keys: {valid}")
    try:
        return cls.model_validate(dict(params))
    except ValidationError as err:
        problems = "; ".join(_problem(item) for item in err.errors())
        raise ValueError(f"strategy {owner!r}: {problems}; valid keys: {valid}") from None


def _problem(item: Any) -> str:
    """One validation error as ``key='value': what is wrong`` (a check across fields: its message alone)."""
    msg = str(item["msg"]).removeprefix("Value error, ")
    return f"{item['loc'][0]}={item['input']!r}: {msg}" if item["loc"] else msg
