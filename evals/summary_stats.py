"""The statistics part of a run's summary (``evals.report``): confidence intervals per cell and paired
comparisons of each strategy with a baseline, plus their CSV/HTML/console rendering helpers.

- every cell (``evals.cells.Cell``) gets ``accuracy_ci`` and, for each ``pass@k`` it has, ``pass@k_ci``: ``[lo, hi]`` of a
  percentile bootstrap over problems (``evals.stats.bootstrap_ci``) of the per-problem values the point
  estimate averages (the problem's accuracy over seeds; its unbiased pass@k over the pooled samples);
- ``comparisons``: for each strategy other than the baseline, at each budget both ran, the paired
  comparison (``evals.stats.paired_comparison``) on the problems both ran: per-problem accuracy = the
  problem's mean over seeds, per-problem tokens = its mean ``tokens.generated``;
- the baseline: an explicit label, else the first strategy named ``majority...``, else the first strategy.

Everything is seeded (``SEED``), so these fields are reproducible (not in ``report.NOT_REPRODUCIBLE``).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals import metrics, stats
from evals.cells import Interval, Summary
from evals.rows import Row

N_BOOT, SEED, LEVEL = 2000, 0, 0.95
METHOD = "percentile bootstrap over problems"
COMPARISON_KEYS: tuple[str, ...] = (
    "strategy",
    "baseline",
    "budget",
    "problems",
    "diff",
    "diff_ci",
    "p_value",
)
COMPARISON_KEYS += ("token_ratio", "token_ratio_ci", "token_saving", "token_saving_ci")


def problem_groups(rows: Sequence[Row], value: Callable[[Row], list]) -> dict[str, list]:
    """``problem_id -> values`` pooled over the problem's rows (seeds), in sorted problem order."""
    groups: dict[str, list] = defaultdict(list)
    for r in rows:
        groups[r.problem_id].extend(value(r))
    return {k: groups[k] for k in sorted(groups)}


def _ci(values: Sequence[float]) -> Interval:
    lo, hi = stats.bootstrap_ci(values, n_boot=N_BOOT, seed=SEED, level=LEVEL)
    return (lo, hi)


def cell_cis(rows: Sequence[Row], pass_ks: Sequence[int]) -> tuple[Interval, list[Interval]]:
    """A cell's ``accuracy_ci`` and the interval of each ``pass@k`` in ``pass_ks`` (module docstring)."""
    acc = problem_groups(rows, lambda r: [bool(r.correct)])
    acc_ci = _ci([sum(g) / len(g) for g in acc.values()])
    if not pass_ks:
        return acc_ci, []
    pooled = list(problem_groups(rows, lambda r: [bool(s.correct) for s in r.samples]).values())
    return acc_ci, [_ci([metrics.pass_at_k(len(g), sum(g), k) for g in pooled]) for k in pass_ks]


def resolve_baseline(strategies: Sequence[str], baseline: str | None = None) -> str | None:
    """The explicit ``baseline`` (must be one of ``strategies``), else the first ``majority...``, else the
    first strategy (None when there are none)."""
    if baseline is not None:
        if baseline not in strategies:
            raise ValueError(
                f"unknown baseline {baseline!r}; the run's strategies are: "
                + (", ".join(strategies) or "(none)")
            )
        return baseline
    return next((s for s in strategies if s.startswith("majority")), strategies[0] if strategies else None)


def _per_problem(rows: Sequence[Row]) -> tuple[dict[str, float], dict[str, float]]:
    acc = problem_groups(rows, lambda r: [float(bool(r.correct))])
    tok = problem_groups(rows, lambda r: [float(r.tokens.generated)])
    return {k: float(np.mean(v)) for k, v in acc.items()}, {k: float(np.mean(v)) for k, v in tok.items()}


def comparisons(
    groups: Mapping[tuple[str, int], Sequence[Row]], order: Sequence[str], baseline: str | None
) -> list[dict[str, Any]]:
    """Paired comparisons with ``baseline`` of every other strategy in ``order`` at every shared budget.

    ``groups`` maps ``(strategy, budget)`` to the cell's rows. Problems are paired by ``problem_id``;
    only problems both cells ran count (``problems`` says how many)."""
    out: list[dict[str, Any]] = []
    if baseline is None:
        return out
    for strategy in order:
        if strategy == baseline:
            continue
        for budget in sorted(b for s, b in groups if s == strategy and (baseline, b) in groups):
            acc_a, tok_a = _per_problem(groups[(strategy, budget)])
            acc_b, tok_b = _per_problem(groups[(baseline, budget)])
            common = sorted(set(acc_a) & set(acc_b))
            if not common:
                continue
            result = stats.paired_comparison(
                [acc_a[p] for p in common],
                [acc_b[p] for p in common],
                tokens_a=[tok_a[p] for p in common],
                tokens_b=[tok_b[p] for p in common],
                n_boot=N_BOOT,
                seed=SEED,
                level=LEVEL,
            )
            result = {k: list(v) if isinstance(v, tuple) else v for k, v in result.items()}
            out.append({"strategy": strategy, "baseline": baseline, "budget": budget, **result})
    return out


def statistics_info(baseline: str | None) -> dict[str, Any]:
    """``summary["statistics"]``: how the intervals and comparisons were computed."""
    return {"method": METHOD, "n_boot": N_BOOT, "seed": SEED, "level": LEVEL, "baseline": baseline}


# ---------------------------------------------------------------- rendering


def flatten_cis(row: Mapping[str, Any]) -> dict[str, Any]:
    """For CSV: each ``X_ci: [lo, hi]`` becomes ``X_lo, X_hi`` in its place."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("_ci") and isinstance(value, list | tuple):
            name = key[: -len("_ci")]
            out[f"{name}_lo"], out[f"{name}_hi"] = value if len(value) == 2 else (None, None)
        else:
            out[key] = value
    return out


def write_comparisons_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``comparisons.csv``: one line per comparison, CIs as ``_lo``/``_hi`` columns (header even if none)."""
    columns = list(flatten_cis({k: [None, None] if k.endswith("_ci") else None for k in COMPARISON_KEYS}))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(flatten_cis(row))


def _num(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def fmt_ci(value: Any, ci: Any, spec: str = ".3f") -> str:
    """``"0.433 [0.267, 0.600]"``; just the value when there is no interval."""
    text = _num(value, spec)
    if isinstance(ci, list | tuple) and len(ci) == 2:
        text += f" [{_num(ci[0], spec)}, {_num(ci[1], spec)}]"
    return text


def accuracy_with_ci(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cells for display: ``accuracy`` as ``"0.433 [0.267, 0.600]"`` (other fields unchanged)."""
    return [{**c, "accuracy": fmt_ci(c.get("accuracy"), c.get("accuracy_ci"))} for c in cells]


def fmt_p(p: Any) -> str:
    if p is None:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


COMPARISON_COLUMNS = (
    "strategy",
    "budget",
    "problems",
    "accuracy diff [CI]",
    "p",
    "token ratio",
    "token saving [CI]",
)


def comparison_rows(summary: Summary) -> list[dict[str, str]]:
    """Display rows (strings) of ``summary.comparisons`` for the HTML and console tables."""
    return [
        {
            "strategy": c["strategy"],
            "budget": str(c["budget"]),
            "problems": str(c["problems"]),
            "accuracy diff [CI]": fmt_ci(c["diff"], c["diff_ci"], "+.3f"),
            "p": fmt_p(c["p_value"]),
            "token ratio": fmt_ci(c["token_ratio"], c["token_ratio_ci"], ".2f"),
            "token saving [CI]": fmt_ci(c["token_saving"], c["token_saving_ci"], "+.0%"),
        }
        for c in summary.comparisons
    ]


def how_to_read(summary: Summary) -> str:
    """One sentence on reading the paired-comparison table."""
    st = summary.statistics or statistics_info(None)
    level = f"{st['level']:.0%}"
    return (
        f"Each row is a strategy minus the baseline ({st['baseline']}) on the same problems at the same "
        f"budget: accuracy diff > 0 means the strategy is more accurate, with a {level} interval "
        f"({st['method']}; an interval that excludes 0, or a small two-sided sign-flip p, means the gap is "
        "unlikely to be chance over these problems); token ratio is the strategy's generated tokens / the "
        "baseline's, and token saving = 1 - ratio (positive: the strategy is cheaper)."
    )


def comparisons_table(summary: Summary) -> Any:
    """The paired comparisons as a ``rich.table.Table`` (for the console; the caller prints it)."""
    from rich.table import Table
    from rich.text import Text

    st = summary.statistics or statistics_info(None)
    table = Table(
        title=f"paired comparisons: strategy - baseline ({st['baseline']})",
        caption=f"{st['level']:.0%} CIs: {st['method']}; p: two-sided paired sign-flip test; "
        "token saving > 0: cheaper than the baseline",
    )
    for c in COMPARISON_COLUMNS:
        table.add_column(c, justify="left" if c == "strategy" else "right", no_wrap=True)
    for row in comparison_rows(summary):
        table.add_row(*[Text(row[c]) for c in COMPARISON_COLUMNS])
    return table
