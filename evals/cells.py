"""A run's summary as data: ``Cell`` (the metrics of one strategy x budget) and ``Summary`` (``summary.json``),
read and written in exactly the format ``summary.json`` and ``summary.csv`` have always had.

The metrics themselves are computed in ``evals.report`` (its module docstring defines each one). A cell is
stored as one JSON object whose keys come in this order::

    strategy, budget, problems, rows, accuracy, accuracy_ci, [sample_acc, pass@1, pass@1_ci, pass@2, ...,
    maj@k,] thinking, answer, generated, sequential, truncated, tokens_per_correct, acc_per_1k, spent,
    wall_s, measured_s, pareto

(the bracketed keys only for strategies with independent full samples). In JSON a value that is not finite
(``tokens_per_correct`` when nothing is correct, a bound of an undefined interval) is ``null``. Reading is
strict: an unknown or missing key is a ``RowFormatError`` naming it and the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.rows import NUMBER, RowFormatError, _take

SUMMARY_FILE = "summary.json"
Interval = tuple[float | None, float | None]
"""A confidence interval ``(lo, hi)``; None: a bound that is undefined (NaN)."""
_SAMPLE_KEY = re.compile(r"^(pass|maj)@(\d+)(_ci)?$")


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float (inf, NaN) replaced by None, through dicts, lists and tuples
    (tuples become lists, as ``json`` writes them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _interval(data: Mapping[str, Any], name: str, where: str) -> Interval:
    value = _take(data, name, (list,), where)
    if len(value) != 2 or not all(v is None or isinstance(v, NUMBER) for v in value):
        raise RowFormatError(f"{where}: field {name!r} must be [lo, hi], got {value!r}")
    return (value[0], value[1])


@dataclass(frozen=True, kw_only=True)
class Cell:
    """The metrics of one (strategy, budget) cell over its rows (``evals.report.cell_summary``)."""

    strategy: str
    budget: int
    problems: int
    """Distinct problems."""
    rows: int
    """Rows (problems x seeds)."""
    accuracy: float
    """avg@n of the final answer."""
    accuracy_ci: Interval
    sample_acc: float | None = None
    """Per-sample accuracy; None (not stored): a strategy without independent full samples."""
    pass_at: tuple[tuple[int, float, Interval], ...] = ()
    """``(k, pass@k, its interval)`` for k = 1, 2, 4, ...; empty like ``sample_acc``."""
    maj: tuple[int, float] | None = None
    """``(k, maj@k)`` when each row has k > 1 samples; None otherwise."""
    thinking: float
    answer: float
    generated: float
    sequential: float
    truncated: float
    tokens_per_correct: float
    """Generated tokens per correct answer; inf in memory when nothing is correct (None in JSON)."""
    acc_per_1k: float
    spent: int
    wall_s: float
    measured_s: float
    pareto: bool = False
    """On the Pareto front of (generated, accuracy) across the summary's cells."""

    FIXED_HEAD = ("strategy", "budget", "problems", "rows", "accuracy", "accuracy_ci")
    FIXED_TAIL = ("thinking", "answer", "generated", "sequential", "truncated", "tokens_per_correct",
                  "acc_per_1k", "spent", "wall_s", "measured_s", "pareto")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The cell as ``summary.json`` holds it (keys in the module docstring's order; not yet ``jsonable``)."""
        out: dict[str, Any] = {
            "strategy": self.strategy,
            "budget": self.budget,
            "problems": self.problems,
            "rows": self.rows,
            "accuracy": self.accuracy,
            "accuracy_ci": list(self.accuracy_ci),
        }
        if self.sample_acc is not None:
            out["sample_acc"] = self.sample_acc
        for k, value, ci in self.pass_at:
            out[f"pass@{k}"], out[f"pass@{k}_ci"] = value, list(ci)
        if self.maj is not None:
            out[f"maj@{self.maj[0]}"] = self.maj[1]
        for name in self.FIXED_TAIL:
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "cell") -> Cell:
        if not isinstance(data, Mapping):
            raise RowFormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
        fixed = (*cls.FIXED_HEAD, "sample_acc", *cls.FIXED_TAIL)
        for key in data:
            if key not in fixed and not _SAMPLE_KEY.match(key):
                raise RowFormatError(f"{where}: unknown field {key!r}")
        passes = sorted(int(m[2]) for m in map(_SAMPLE_KEY.match, data) if m and m[1] == "pass" and not m[3])
        majs = [int(m[2]) for m in map(_SAMPLE_KEY.match, data) if m and m[1] == "maj" and not m[3]]
        if len(majs) > 1:
            raise RowFormatError(f"{where}: more than one maj@k field: {majs}")
        tpc = data.get("tokens_per_correct", 0)
        return cls(
            strategy=_take(data, "strategy", (str,), where),
            budget=_take(data, "budget", (int,), where),
            problems=_take(data, "problems", (int,), where),
            rows=_take(data, "rows", (int,), where),
            accuracy=_take(data, "accuracy", NUMBER, where),
            accuracy_ci=_interval(data, "accuracy_ci", where),
            sample_acc=_take(data, "sample_acc", NUMBER, where) if "sample_acc" in data else None,
            pass_at=tuple(
                (k, _take(data, f"pass@{k}", NUMBER, where), _interval(data, f"pass@{k}_ci", where))
                for k in passes
            ),
            maj=(majs[0], _take(data, f"maj@{majs[0]}", NUMBER, where)) if majs else None,
            thinking=_take(data, "thinking", NUMBER, where),
            answer=_take(data, "answer", NUMBER, where),
            generated=_take(data, "generated", NUMBER, where),
            sequential=_take(data, "sequential", NUMBER, where),
            truncated=_take(data, "truncated", NUMBER, where),
            tokens_per_correct=math.inf if tpc is None else _take(data, "tokens_per_correct", NUMBER, where),
            acc_per_1k=_take(data, "acc_per_1k", NUMBER, where),
            spent=_take(data, "spent", (int,), where),
            wall_s=_take(data, "wall_s", NUMBER, where),
            measured_s=_take(data, "measured_s", NUMBER, where),
            pareto=_take(data, "pareto", (bool,), where),
        )


@dataclass(frozen=True, kw_only=True)
class Summary:
    """A run's summary (``evals.report.summarize``), as ``summary.json`` holds it. The cells are ``Cell``s;
    the other parts are plain JSON data, as documented in ``evals.report`` and ``evals.summary_stats``."""

    config: dict[str, Any]
    """The run's config (``config.yaml``), {} when the rows came without one."""
    rows: int
    cells: tuple[Cell, ...]
    strategies: dict[str, dict[str, float]]
    """Per strategy: ``auc`` and ``auc_norm`` of accuracy vs budget."""
    pareto: list[dict[str, Any]]
    """The front: ``{strategy, budget, generated, accuracy}`` per point, by tokens."""
    cost: dict[str, Any]
    """``spent_tokens``, ``separate_tokens``, ``ratio`` (None when nothing was generated)."""
    comparisons: list[dict[str, Any]]
    """Paired comparisons with the baseline (``evals.summary_stats.comparisons``)."""
    statistics: dict[str, Any]
    """How intervals and comparisons were computed (``evals.summary_stats.statistics_info``)."""
    manifest: dict[str, Any] | None = None
    """``evals.manifest.summarize_manifest`` of the run; None: none recorded (or not read yet). Optional in
    ``summary.json`` (summaries written before manifests lack it; written back as null)."""
    audit: dict[str, Any] | None = None
    """``audit.json`` when the run was audited (``evals.audit``); None otherwise. Optional like ``manifest``."""

    KEYS = ("config", "rows", "cells", "strategies", "pareto", "cost", "comparisons", "statistics", "manifest",
            "audit")  # fmt: skip

    def cell(self, strategy: str, budget: int) -> Cell:
        return next(c for c in self.cells if c.strategy == strategy and c.budget == budget)

    def to_json(self) -> dict[str, Any]:
        """``summary.json``'s content: every part, non-finite floats as None."""
        return jsonable(
            {
                key: [c.to_json() for c in self.cells] if key == "cells" else getattr(self, key)
                for key in self.KEYS
            }
        )

    @classmethod
    def from_json(cls, data: Any, where: str = SUMMARY_FILE) -> Summary:
        if not isinstance(data, Mapping):
            raise RowFormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in cls.KEYS:
                raise RowFormatError(f"{where}: unknown field {key!r} (known fields: {', '.join(cls.KEYS)})")
        cells = _take(data, "cells", (list,), where)
        return cls(
            config=_take(data, "config", (dict,), where),
            rows=_take(data, "rows", (int,), where),
            cells=tuple(Cell.from_json(c, f"{where}, cells[{i}]") for i, c in enumerate(cells)),
            strategies=_take(data, "strategies", (dict,), where),
            pareto=_take(data, "pareto", (list,), where),
            cost=_take(data, "cost", (dict,), where),
            comparisons=_take(data, "comparisons", (list,), where),
            statistics=_take(data, "statistics", (dict,), where),
            manifest=_take(data, "manifest", (dict,), where, null=True) if "manifest" in data else None,
            audit=_take(data, "audit", (dict,), where, null=True) if "audit" in data else None,
        )


def load_summary(run_dir: str | Path) -> Summary:
    """``RUN_DIR/summary.json`` (written by ``evals.report.write_summary``)."""
    path = Path(run_dir) / SUMMARY_FILE
    return Summary.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
