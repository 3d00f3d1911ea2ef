"""The per-sample rows of ``samples.jsonl`` as data: ``Row`` (one strategy, budget, problem and seed) and
``SampleRecord`` (one of its completions), read and written in exactly the JSONL format runs have always used.

One line of ``samples.jsonl`` is ``Row.to_json()`` (keys in this order)::

    {"problem_id", "strategy", "budget", "seed", "answer", "gold", "tokens": {TokenCount fields}, "spent",
     "wall_s", "measured_s", "samples": [{"tokens", "finish", "answer", "correct", "status", "text"}, ...],
     "correct", "status", "grader"}

Reading is strict: a stored row with an unknown key, a missing required key or a value of the wrong type is a
``RowFormatError`` that names the key and the file and line. Keys that older runs lack are optional and keep
the default the report has always used (each field's docstring says so). Only a line that is not JSON at all
(a torn tail left by a crash) is skipped, with a warning. Nothing here imports the runner or an engine: the
report, the plots and the drill-down read runs through this module alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasoner.types import TokenCount

log = logging.getLogger(__name__)

CONFIG_FILE, SAMPLES_FILE = "config.yaml", "samples.jsonl"
Key = tuple[str, int, str, int]
"""A row's identity: (strategy, budget, problem_id, seed)."""


class RowFormatError(ValueError):
    """A stored row (or summary cell) that does not have the format this code writes; names field and place."""


def _take(data: Mapping[str, Any], name: str, types: tuple[type, ...], where: str, *, null: bool = False):
    """``data[name]`` checked against ``types`` (bool is never an int here); a RowFormatError otherwise."""
    if name not in data:
        raise RowFormatError(f"{where}: missing field {name!r}")
    value = data[name]
    if value is None and null:
        return None
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise RowFormatError(
            f"{where}: field {name!r} must be {' or '.join(t.__name__ for t in types)}"
            f"{' or null' if null else ''}, got {value!r}"
        )
    return value


def _check_keys(data: Any, known: tuple[str, ...], where: str) -> None:
    if not isinstance(data, Mapping):
        raise RowFormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = [k for k in data if k not in known]
    if unknown:
        raise RowFormatError(f"{where}: unknown field {unknown[0]!r} (known fields: {', '.join(known)})")


NUMBER = (int, float)


@dataclass(frozen=True)
class SampleRecord:
    """One completion of a row: its length, finish reason, extracted answer, verdict and text."""

    tokens: int
    """Tokens of the completion."""
    finish: str
    """Finish reason (``stop``, ``length``, ...)."""
    answer: str | None
    """The answer the grader extracted (None: none)."""
    correct: bool
    """The grader's verdict."""
    status: str | None = None
    """The verdict's status (``ok``, ``no_answer``, ...). Optional: runs made before it was recorded lack it
    (None, and it is not written back)."""
    text: str | None = None
    """The completion's text. Optional: runs made before texts were kept lack it (None, not written back;
    such runs cannot be re-graded or audited)."""

    FIELDS = ("tokens", "finish", "answer", "correct", "status", "text")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tokens": self.tokens,
            "finish": self.finish,
            "answer": self.answer,
            "correct": self.correct,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.text is not None:
            out["text"] = self.text
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> SampleRecord:
        _check_keys(data, cls.FIELDS, where)
        return cls(
            tokens=_take(data, "tokens", (int,), where),
            finish=_take(data, "finish", (str,), where),
            answer=_take(data, "answer", (str,), where, null=True),
            correct=_take(data, "correct", (bool,), where),
            status=_take(data, "status", (str,), where) if "status" in data else None,
            text=_take(data, "text", (str,), where) if "text" in data else None,
        )


TOKEN_FIELDS = tuple(f.name for f in dataclasses.fields(TokenCount))


def _tokens(data: Any, where: str) -> TokenCount:
    where = f"{where}, field 'tokens'"
    _check_keys(data, TOKEN_FIELDS, where)
    return TokenCount(**{name: _take(data, name, (int,), where) for name in TOKEN_FIELDS})


@dataclass(frozen=True, kw_only=True)
class Row:
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
    tokens: TokenCount
    """What the strategy spent (``reasoner.types.TokenCount``)."""
    wall_s: float
    """Per-problem latency as the strategy measured it (replayed budgets scale the recorded time)."""
    samples: tuple[SampleRecord, ...]
    correct: bool
    """The final answer's verdict."""
    spent: int = 0
    """Tokens this run actually generated for the row (replays cost nothing). Optional: 0 when absent (what
    the report has always counted), and then written back as 0."""
    measured_s: float = 0.0
    """Compute seconds this run spent on the row. Optional: 0.0 when absent, then written back as 0.0."""
    status: str | None = None
    """The final verdict's status. Optional: older runs lack it (None, not written back)."""
    grader: str | None = None
    """The grader's extraction policy (``lenient``/``strict``). Optional: older runs lack it (None, not
    written back)."""

    FIELDS = (
        "problem_id", "strategy", "budget", "seed", "answer", "gold", "tokens", "spent", "wall_s", "measured_s",
        "samples", "correct", "status", "grader",
    )  # fmt: skip
    """The keys of a stored row, in the order they are written."""

    @property
    def key(self) -> Key:
        return (self.strategy, self.budget, self.problem_id, self.seed)

    @property
    def cell(self) -> str:
        """``strategy@budget``."""
        return f"{self.strategy}@{self.budget}"

    def to_json(self) -> dict[str, Any]:
        """The row as stored in ``samples.jsonl`` (module docstring); ``from_json`` reads it back equal."""
        out: dict[str, Any] = {
            "problem_id": self.problem_id,
            "strategy": self.strategy,
            "budget": self.budget,
            "seed": self.seed,
            "answer": self.answer,
            "gold": self.gold,
            "tokens": dataclasses.asdict(self.tokens),
            "spent": self.spent,
            "wall_s": self.wall_s,
            "measured_s": self.measured_s,
            "samples": [s.to_json() for s in self.samples],
            "correct": self.correct,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.grader is not None:
            out["grader"] = self.grader
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "row") -> Row:
        """A stored row; ``where`` (e.g. ``runs/x/samples.jsonl line 3``) goes into every error message."""
        _check_keys(data, cls.FIELDS, where)
        samples = _take(data, "samples", (list,), where)
        return cls(
            problem_id=_take(data, "problem_id", (str,), where),
            strategy=_take(data, "strategy", (str,), where),
            budget=_take(data, "budget", (int,), where),
            seed=_take(data, "seed", (int,), where),
            answer=_take(data, "answer", (str,), where, null=True),
            gold=_take(data, "gold", (str,), where),
            tokens=_tokens(_take(data, "tokens", (dict,), where), where),
            wall_s=_take(data, "wall_s", NUMBER, where),
            samples=tuple(SampleRecord.from_json(s, f"{where}, samples[{i}]") for i, s in enumerate(samples)),
            correct=_take(data, "correct", (bool,), where),
            spent=_take(data, "spent", (int,), where) if "spent" in data else 0,
            measured_s=_take(data, "measured_s", NUMBER, where) if "measured_s" in data else 0.0,
            status=_take(data, "status", (str,), where) if "status" in data else None,
            grader=_take(data, "grader", (str,), where) if "grader" in data else None,
        )

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
                data = json.loads(line)
            except ValueError:
                bad += line.strip() != ""
                continue
            row = Row.from_json(data, f"{path} line {number}")
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
