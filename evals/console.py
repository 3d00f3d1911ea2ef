"""Console output of ``reasoner eval|report|regrade``: the summary table (rich), comparisons, plain lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from evals.cells import Cell, Summary, load_summary

__all__ = ["load_summary", "print_line", "print_summary", "verdict_lines"]


def print_line(text: str) -> None:
    from rich.console import Console

    Console().print(text, markup=False, highlight=False, soft_wrap=True)


_SHORT = {
    "accuracy": "acc [CI]",
    "sample_acc": "smp acc",
    "generated": "gen",
    "sequential": "seq",
    "truncated": "trunc",
    "tokens_per_correct": "tok/ok",
    "acc_per_1k": "acc/1k",
    "wall_s": "wall s",
    "pareto": "front",
}


def print_summary(summary: Summary, out: Path) -> None:
    """The summary table (rich; accuracy with its CI), the paired comparisons with the baseline, AUC per
    strategy, the sweep cost and where the files are."""
    from rich.console import Console
    from rich.table import Table

    from evals.report import _fmt, display_cells, table_columns
    from evals.summary_stats import accuracy_with_ci, comparisons_table

    console = Console(width=max(Console().width, 150))
    cells = display_cells(summary)
    cols = [c for c in table_columns(cells) if c not in ("thinking", "answer")]
    passes = [c for c in cols if c.startswith("pass@")]
    cols = [c for c in cols if c not in passes[1:-1]]  # pass@1 and the largest k
    table = Table(title=f"reasoner eval: {out}", show_lines=False)
    for c in cols:
        justify: Literal["left", "right"] = "left" if c == "strategy" else "right"
        table.add_column(_SHORT.get(c, c), justify=justify, no_wrap=c in ("strategy", "accuracy"))
    for cell in accuracy_with_ci(cells):
        table.add_row(*[_fmt(cell.get(c), c) for c in cols])
    need = console.measure(table, options=console.options.update_width(1000)).maximum
    console = Console(width=max(console.width, need))  # wide enough that no number wraps
    console.print(table)
    if summary.comparisons:
        console.print(comparisons_table(summary))
    aucs = ", ".join(f"{s} {v['auc_norm']:.3f}" for s, v in summary.strategies.items())
    cost = summary.cost
    lines = [
        f"budget-averaged accuracy (AUC / range): {aucs}",
        f"sweep cost: {cost['spent_tokens']} tokens generated vs {cost['separate_tokens']} for separate runs "
        f"per budget (ratio {_fmt(cost['ratio'])})",
        f"files: {out}/summary.json, summary.csv"
        + (", comparisons.csv" if (out / "comparisons.csv").exists() else "")
        + (", report.html" if (out / "report.html").exists() else ""),
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)


def verdict_lines(summary: Summary, takes_budget: Callable[[str], bool]) -> list[str]:
    """A few plain sentences drawn from the measured numbers, each strategy against the baseline:

    - at the largest budget it shares with the baseline: accuracy against the baseline's (paired difference,
      95% CI, p), generated tokens and per-problem wall time as multiples of the baseline's;
    - a strategy whose budget is a setting of the method (budget forcing's thinking cap) at each budget,
      against the baseline at its largest budget (not at that max_tokens, where the baseline is cut short):
      accuracy, tokens and wall time; unpaired across budgets, so without CI.

    ``takes_budget(label)``: whether the strategy's budget is such a setting (the composition root passes
    ``evals.sweep.StrategyEntry.parse(label, 1).takes_budget``; this module does not import the strategies).
    Empty without comparisons."""
    comps = summary.comparisons
    if not comps:
        return []
    cells = {(c.strategy, c.budget): c for c in summary.cells}
    baseline = comps[0]["baseline"]
    top = max(b for s, b in cells if s == baseline)
    base = cells[(baseline, top)]
    lines = [f"verdict (against {baseline} on the same problems):"]
    largest: dict[str, dict] = {}
    for comp in comps:
        if comp["budget"] >= largest.get(comp["strategy"], {"budget": -1})["budget"]:
            largest[comp["strategy"]] = comp
    capped = []
    for name, comp in largest.items():
        if takes_budget(name):
            capped.append(name)
            continue
        mine, theirs = cells[(name, comp["budget"])], cells[(baseline, comp["budget"])]
        lo, hi = comp["diff_ci"]
        lines.append(
            f"  {name} @ {comp['budget']} tokens: accuracy {mine.accuracy:.3f} vs {theirs.accuracy:.3f} "
            f"(diff {comp['diff']:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}], p {comp['p_value']:.2g}), "
            f"{_times(comp['token_ratio'])} tokens, {_ratio(mine, theirs, 'wall_s')} wall"
        )
    for name in capped:
        for budget in sorted(b for s, b in cells if s == name):
            mine = cells[(name, budget)]
            lines.append(
                f"  {name} @ thinking cap {budget}: accuracy {mine.accuracy:.3f} vs {base.accuracy:.3f} "
                f"({baseline} @ {top}), {_ratio(mine, base, 'generated')} tokens, {_ratio(mine, base, 'wall_s')} wall"
            )
    return lines


def _ratio(mine: Cell, base: Cell, key: str) -> str:
    return _times(getattr(mine, key) / getattr(base, key) if getattr(base, key) else None)


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"
