"""A run's summary as data: ``Cell`` (the metrics of one strategy x budget) and ``Summary`` (``summary.json``),
frozen pydantic models read and written in exactly the format ``summary.json`` and ``summary.csv`` have always
had.

The metrics themselves are computed in ``evals.report`` (its module docstring defines each one). A cell is
stored as one JSON object whose keys come in this order::

    strategy, budget, problems, rows, accuracy, accuracy_ci, [sample_acc, pass@1, pass@1_ci, pass@2, ...,
    maj@k,] thinking, answer, generated, sequential, truncated, tokens_per_correct, acc_per_1k, spent,
    wall_s, measured_s, pareto

(the bracketed keys only for strategies with independent full samples). In JSON a value that is not finite
(``tokens_per_correct`` when nothing is correct, a bound of an undefined interval) is ``null``. Reading is
strict like ``evals.rows``: an unknown or missing key or a value of the wrong type is a ``RowFormatError``
naming the dotted field and the file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, model_serializer, model_validator

from evals.rows import ARRAY, NOT_NULL, Stored, omit_none

SUMMARY_FILE = "summary.json"
Interval = Annotated[tuple[float | None, float | None], ARRAY]
"""A confidence interval ``(lo, hi)``; None: a bound that is undefined (NaN)."""
_PASS, _MAJ = re.compile(r"pass@(\d+)"), re.compile(r"maj@(\d+)")


class Cell(Stored):
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
    sample_acc: Annotated[float | None, NOT_NULL] = omit_none()
    """Per-sample accuracy; None (not stored): a strategy without independent full samples."""
    pass_at: tuple[tuple[int, float, Interval], ...] = ()
    """``(k, pass@k, its interval)`` for k = 1, 2, 4, ...; empty like ``sample_acc``. Stored as the keys
    ``pass@k`` and ``pass@k_ci``."""
    maj: tuple[int, float] | None = None
    """``(k, maj@k)`` when each row has k > 1 samples; None otherwise. Stored as the key ``maj@k``."""
    thinking: float
    answer: float
    generated: float
    sequential: float
    truncated: float
    tokens_per_correct: Annotated[float, BeforeValidator(lambda v: math.inf if v is None else v)]
    """Generated tokens per correct answer; inf in memory when nothing is correct (None in JSON)."""
    acc_per_1k: float
    spent: int
    wall_s: float
    measured_s: float
    pareto: bool
    """On the Pareto front of (generated, accuracy) across the summary's cells (``evals.report.summarize``)."""

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any) -> Any:
        """The stored ``pass@k``, ``pass@k_ci`` and ``maj@k`` keys as ``pass_at`` and ``maj`` (any other such
        key, e.g. a second ``maj@k``, is left as an unknown field)."""
        if not isinstance(data, dict):
            return data
        rest = dict(data)
        passes = sorted(int(m[1]) for key in data if (m := _PASS.fullmatch(key)))
        if passes:
            rest["pass_at"] = tuple(
                (k, rest.pop(f"pass@{k}"), rest.pop(f"pass@{k}_ci", None)) for k in passes
            )
        if maj := next((m for key in data if (m := _MAJ.fullmatch(key))), None):
            rest["maj"] = (int(maj[1]), rest.pop(maj[0]))
        return rest

    @model_serializer(mode="wrap")
    def _spread(self, handler: Any) -> dict[str, Any]:
        """``pass_at`` and ``maj`` stored as ``pass@k``, ``pass@k_ci`` and ``maj@k`` before ``thinking``."""
        data = handler(self)
        flat = {}
        for k, value, ci in data.pop("pass_at"):
            flat[f"pass@{k}"], flat[f"pass@{k}_ci"] = value, ci
        if (maj := data.pop("maj")) is not None:
            flat[f"maj@{maj[0]}"] = maj[1]
        items = list(data.items())
        at = list(data).index("thinking")
        return dict(items[:at] + list(flat.items()) + items[at:])


class Summary(Stored):
    """A run's summary (``evals.report.summarize``), as ``summary.json`` holds it. The cells are ``Cell``s;
    the other parts are plain JSON data, as documented in ``evals.report`` and ``evals.summary_stats``."""

    config: dict[str, Any]
    """The run's config (``config.yaml``), {} when the rows came without one."""
    rows: int
    cells: Annotated[tuple[Cell, ...], ARRAY]
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

    def cell(self, strategy: str, budget: int) -> Cell:
        return next(c for c in self.cells if c.strategy == strategy and c.budget == budget)


def load_summary(run_dir: str | Path) -> Summary:
    """``RUN_DIR/summary.json`` (written by ``evals.report.write_summary``)."""
    path = Path(run_dir) / SUMMARY_FILE
    return Summary.from_json(path.read_text(encoding="utf-8"), str(path))
