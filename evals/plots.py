"""The run report's plots (matplotlib, Agg backend): accuracy vs generated tokens (Pareto view), accuracy vs
budget, and length histograms of correct vs wrong answers. Each reads a ``Summary`` (``evals.cells``; and
``evals.rows.Row``s): data only."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from evals.cells import Cell, Summary
from evals.metrics import PER_SAMPLE, base_name
from evals.rows import Row

MARKERS = "osD^vP*X"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(summary: Summary) -> dict[str, list[Cell]]:
    out: dict[str, list[Cell]] = defaultdict(list)
    for c in summary.cells:
        out[c.strategy].append(c)
    return out


def plot_pareto(summary: Summary, path: Path) -> None:
    """Accuracy vs mean generated tokens per problem: one line per strategy through its budgets."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, (name, cells) in enumerate(_series(summary).items()):
        xs, ys = [c.generated for c in cells], [c.accuracy for c in cells]
        (line,) = ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], alpha=0.85, label=name)
        _whiskers(ax, xs, cells, line.get_color())
        for c in cells:  # budget labels, above or below the point by strategy so neighbours do not collide
            ax.annotate(
                str(c.budget),
                (c.generated, c.accuracy),
                textcoords="offset points",
                xytext=(5, 5 if i % 2 == 0 else -11),
                fontsize=7,
                color=line.get_color(),
            )
    front = summary.pareto
    if front:
        fx, fy = [p["generated"] for p in front], [p["accuracy"] for p in front]
        ax.step(fx, fy, where="post", color="k", linestyle="--", linewidth=1, alpha=0.5)
        ax.scatter(
            fx, fy, s=160, facecolors="none", edgecolors="k", linewidths=1.2, zorder=3, label="Pareto front"
        )
    _log_x(ax, base=10)
    ax.set(
        xlabel="mean generated tokens per problem (log scale)",
        ylabel="accuracy",
        title=f"Accuracy vs tokens (labels: budget; bars: {_ci_label(summary)})",
    )
    _finish(fig, ax, path)


def plot_accuracy_vs_budget(summary: Summary, path: Path) -> None:
    """Accuracy against the token budget, one line per strategy (legend: budget-averaged accuracy)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, (name, cells) in enumerate(_series(summary).items()):
        auc = summary.strategies[name]["auc_norm"]
        (line,) = ax.plot(
            [c.budget for c in cells],
            [c.accuracy for c in cells],
            marker=MARKERS[i % len(MARKERS)],
            alpha=0.85,
            label=f"{name} (AUC {auc:.3f})",
        )
        _whiskers(ax, [c.budget for c in cells], cells, line.get_color())
    budgets = sorted({c.budget for c in summary.cells})
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set(xlabel="token budget", ylabel="accuracy", title=f"Accuracy vs budget (bars: {_ci_label(summary)})")
    _finish(fig, ax, path)


def _ci_label(summary: Summary) -> str:
    return f"{summary.statistics.get('level', 0.95):.0%} CI over problems"


def _whiskers(ax, xs: Sequence[float], cells: Sequence[Cell], color: str) -> None:
    """Vertical error bars from each cell's ``accuracy_ci`` (cells with an undefined bound are skipped)."""
    keep = [(x, c, lo, hi) for x, c in zip(xs, cells, strict=True) for lo, hi in [c.accuracy_ci]
            if lo is not None and hi is not None]  # fmt: skip
    if not keep:
        return
    ys = [c.accuracy for _, c, _, _ in keep]
    lo = [max(0.0, y - low) for y, (_, _, low, _) in zip(ys, keep, strict=True)]
    hi = [max(0.0, high - y) for y, (_, _, _, high) in zip(ys, keep, strict=True)]
    ax.errorbar(
        [x for x, *_ in keep], ys, yerr=[lo, hi], fmt="none", ecolor=color, elinewidth=1, capsize=3, alpha=0.5
    )


def _log_x(ax, base: int) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log", base=base)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="both", labelsize=8)


def _finish(fig, ax, path: Path) -> None:
    hi = max([line.get_ydata().max() for line in ax.get_lines() if len(line.get_ydata())] + [0.1])
    ax.set_ylim(-0.02, min(1.02, hi * 1.1 + 0.02))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def _lengths(rows: Sequence[Row], strategy: str) -> tuple[list[int], list[int], str]:
    if base_name(strategy) in PER_SAMPLE:
        samples = [s for r in rows for s in r.samples]
        return (
            [s.tokens for s in samples if s.correct],
            [s.tokens for s in samples if not s.correct],
            "tokens per sample",
        )
    ok = [r.tokens.generated for r in rows if r.correct]
    return ok, [r.tokens.generated for r in rows if not r.correct], "generated tokens per problem"


def plot_lengths(rows: Sequence[Row], summary: Summary, path: Path) -> None:
    """Histograms of lengths of correct vs wrong answers, one panel per strategy, at its largest budget."""
    plt = _pyplot()
    series = _series(summary)
    cols = min(3, len(series))
    nrows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), squeeze=False)
    # strict=False by design: the grid has nrows * cols >= len(series) axes; the extra ones stay empty
    for ax, (name, cells) in zip(axes.flat, series.items(), strict=False):
        budget = max(c.budget for c in cells)
        mine = [r for r in rows if r.strategy == name and r.budget == budget]
        ok, bad, xlabel = _lengths(mine, name)
        top = max(ok + bad + [1])
        bins = [top * i / 24 for i in range(25)]
        ax.hist(
            [bad, ok],
            bins=bins,
            stacked=True,
            color=["tab:red", "tab:green"],
            label=[f"wrong ({len(bad)})", f"correct ({len(ok)})"],
        )
        if base_name(name) in PER_SAMPLE:
            ax.axvline(budget, color="0.4", linestyle=":", linewidth=1)
        ax.set_title(f"{name} @ {budget}", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.suptitle("Lengths of correct vs wrong answers (largest budget)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
