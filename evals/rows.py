"""The per-sample rows of ``samples.jsonl`` as data: ``Row`` (one strategy, budget, problem and seed) and
``SampleRecord`` (one of its completions), frozen pydantic models read and written in exactly the JSONL format
runs have always used.

One line of ``samples.jsonl`` is ``Row.to_json()`` (keys in field order)::

    {"problem_id", "strategy", "budget", "seed", "answer", "gold", "tokens": {TokenCount fields}, "spent",
     "wall_s", "measured_s", "samples": [{"tokens", "finish", "answer", "correct", "status", "text"}, ...],
     "correct", "status", "grader"}

Reading is strict (pydantic's strict mode on JSON input: a bool is never an int, an int is a float, nothing
is coerced from a string; ``reasoner.types.TokenCount`` is checked the same way): a stored row with an unknown
key, a missing required key or a value of the wrong type is a ``RowFormatError`` that names the dotted field
(``samples.1.finish``) and the file and line (``stored_error``). Keys that older runs lack are optional and
keep the default the report has always used (each field's docstring says so). Only a line that is not JSON at
all (a torn tail left by a crash) is skipped, with a warning. Nothing here imports the runner or an engine:
the report, the plots and the drill-down read runs through this module alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, ValidationInfo

from reasoner.types import TokenCount

log = logging.getLogger(__name__)

CONFIG_FILE, SAMPLES_FILE = "config.yaml", "samples.jsonl"
Key = tuple[str, int, str, int]
"""A row's identity: (strategy, budget, problem_id, seed)."""
ARRAY = Strict(False)
"""On a tuple type: a list is accepted too (and becomes a tuple); its items stay strict."""


def omit_none() -> Any:
    """An optional key: None when absent (older runs lack it), and then not written back. Its type is
    ``Annotated[T | None, NOT_NULL]``: a stored null is refused (it would not be written back)."""
    return Field(None, exclude_if=lambda value: value is None)


def _not_null(value: Any, info: ValidationInfo) -> Any:
    if value is None and info.mode == "json":
        raise ValueError("absent or a value, never null")
    return value


NOT_NULL = BeforeValidator(_not_null)


def _every_token_field(value: Any) -> Any:
    """A stored ``TokenCount`` has all its fields: the dataclass's defaults (0) are for code, not for files."""
    missing = [
        f.name for f in dataclasses.fields(TokenCount) if isinstance(value, dict) and f.name not in value
    ]
    if missing:
        raise ValueError(f"every TokenCount field is stored; missing: {', '.join(missing)}")
    return value


class RowFormatError(ValueError):
    """A stored row (or summary cell) that does not have the format this code writes; names field and place."""


class Stored(BaseModel):
    """A frozen record as stored in a run's files: strict types, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, use_attribute_docstrings=True)

    def to_json(self) -> dict[str, Any]:
        """The record as stored (JSON data: lists, None for a non-finite float); ``from_json`` reads it back."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Any, where: str = "record") -> typing.Self:
        """A stored record from its JSON text or from parsed JSON (validated as JSON, which is what it was);
        ``where`` (e.g. ``runs/x/samples.jsonl line 3``) leads every error message."""
        try:
            return cls.model_validate_json(data if isinstance(data, str | bytes) else json.dumps(data))
        except ValidationError as err:
            raise stored_error(err, cls, where) from None


def stored_error(err: ValidationError, root: type, where: str) -> RowFormatError:
    """``err`` as one message: each problem with its dotted field, after ``where``."""
    problems = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"])
        if item["type"] == "missing":
            problems.append(f"missing field {field!r}")
        elif item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's, a dataclass's
            problems.append(f"unknown field {field!r} (known fields: {', '.join(_known(root, item['loc']))})")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{f'field {field!r}: ' if field else ''}{message}, got {item['input']!r}")
    return RowFormatError(f"{where}: {'; '.join(problems)}")


def _known(model: Any, loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the record (a model or a dataclass) at ``loc[:-1]`` under ``model``."""
    for part in loc[:-1]:
        if isinstance(part, str):
            model = _record(model.model_fields[part].annotation)
    return (
        list(model.model_fields)
        if issubclass(model, BaseModel)
        else [f.name for f in dataclasses.fields(model)]
    )


def _record(annotation: Any) -> Any:
    """The model or dataclass type inside ``annotation`` (e.g. ``tuple[SampleRecord, ...]``), else None."""
    if isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    ):
        return annotation
    return next(filter(None, map(_record, typing.get_args(annotation))), None)


class SampleRecord(Stored):
    """One completion of a row: its length, finish reason, extracted answer, verdict and text."""

    tokens: int
    """Tokens of the completion."""
    finish: str
    """Finish reason (``stop``, ``length``, ...)."""
    answer: str | None
    """The answer the grader extracted (None: none)."""
    correct: bool
    """The grader's verdict."""
    status: Annotated[str | None, NOT_NULL] = omit_none()
    """The verdict's status (``ok``, ``no_answer``, ...). Optional: runs made before it was recorded lack it
    (None, and it is not written back)."""
    text: Annotated[str | None, NOT_NULL] = omit_none()
    """The completion's text. Optional: runs made before texts were kept lack it (None, not written back;
    such runs cannot be re-graded or audited)."""


class Row(Stored):
    """One (strategy, budget, problem, seed) result of a run, graded (one line of ``samples.jsonl``)."""

    problem_id: str
    strategy: str
    """The strategy's label (``evals.sweep.StrategyEntry.label``, e.g. ``majority:k=8``)."""
    budget: int
    """Token budget (max_tokens, or the thinking cap of budget forcing)."""
    seed: int
    answer: str | None
    """The strategy's final answer (None: none)."""
    gold: str
    tokens: Annotated[TokenCount, BeforeValidator(_every_token_field)]
    """What the strategy spent (``reasoner.types.TokenCount``)."""
    spent: int = 0
    """Tokens this run actually generated for the row (replays cost nothing). Optional: 0 when absent (what
    the report has always counted), and then written back as 0."""
    wall_s: float
    """Per-problem latency as the strategy measured it (replayed budgets scale the recorded time)."""
    measured_s: float = 0.0
    """Compute seconds this run spent on the row. Optional: 0.0 when absent, then written back as 0.0."""
    samples: Annotated[tuple[SampleRecord, ...], ARRAY]
    correct: bool
    """The final answer's verdict."""
    status: Annotated[str | None, NOT_NULL] = omit_none()
    """The final verdict's status. Optional: older runs lack it (None, not written back)."""
    grader: Annotated[str | None, NOT_NULL] = omit_none()
    """The grader's extraction policy (``lenient``/``strict``). Optional: older runs lack it (None, not
    written back)."""

    @property
    def key(self) -> Key:
        return (self.strategy, self.budget, self.problem_id, self.seed)

    @property
    def cell(self) -> str:
        """``strategy@budget``."""
        return f"{self.strategy}@{self.budget}"

    def to_line(self) -> str:
        """One JSONL line (with its newline), as ``samples.jsonl`` holds it."""
        return json.dumps(self.to_json(), ensure_ascii=False) + "\n"


def read_rows(path: str | Path) -> list[Row]:
    """The rows of a ``samples.jsonl`` (first copy of each key); [] when there is no file.

    A line that is not JSON (a torn tail from a crash) is skipped with a warning; a JSON line that is not a
    row of this format is a ``RowFormatError`` naming the field, the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    rows: list[Row] = []
    seen: set[Key] = set()
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            try:
                row = Row.model_validate_json(line)
            except ValidationError as err:
                if [e["type"] for e in err.errors()] != ["json_invalid"]:
                    raise stored_error(err, Row, f"{path} line {number}") from None
                bad += line.strip() != ""
                continue
            if row.key not in seen:
                seen.add(row.key)
                rows.append(row)
    if bad:
        log.warning("%s: skipped %d unreadable line(s) (a run cut short)", path, bad)
    return rows


def read_run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """``RUN_DIR/config.yaml`` as stored (``evals.runner.RunDir.write_config`` writes ``EvalConfig.to_dict()``),
    or None when there is none. Not validated: the report shows what the run recorded."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise RowFormatError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data
