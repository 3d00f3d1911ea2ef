"""The plain verdict lines at the end of `reasoner eval`: drawn from the summary's numbers, largest shared budget;
budget forcing at each thinking cap against the baseline's largest budget."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from evals.console import verdict_lines
from evals.sweep import StrategyEntry


def _cell(strategy: str, budget: int, accuracy: float, wall_s: float, generated: float = 100.0) -> Any:
    return SimpleNamespace(
        strategy=strategy, budget=budget, accuracy=accuracy, wall_s=wall_s, generated=generated
    )


def _summary(cells: list, comparisons: list) -> Any:
    return SimpleNamespace(cells=cells, comparisons=comparisons)


def takes_budget(label: str) -> bool:
    return StrategyEntry.parse(label, 1).takes_budget


def _comp(strategy: str, budget: int, diff: float, ratio: float | None) -> dict:
    return {
        "strategy": strategy,
        "baseline": "majority:k=8",
        "budget": budget,
        "diff": diff,
        "diff_ci": [diff - 0.1, diff + 0.1],
        "p_value": 0.5,
        "token_ratio": ratio,
    }


def test_verdict_lines_use_the_largest_shared_budget_and_the_measured_ratios():
    summary = _summary(
        [
            _cell("majority:k=8", 128, 0.5, 2.0),
            _cell("majority:k=8", 256, 0.8, 4.0),
            _cell("short-m@k:k=8,m=3", 128, 0.6, 1.0),
            _cell("short-m@k:k=8,m=3", 256, 0.9, 2.0),
        ],
        [_comp("short-m@k:k=8,m=3", 128, 0.1, 0.7), _comp("short-m@k:k=8,m=3", 256, 0.1, 0.5)],
    )
    head, line = verdict_lines(summary, takes_budget)
    assert "against majority:k=8" in head
    assert line.strip().startswith("short-m@k:k=8,m=3 @ 256 tokens: accuracy 0.900 vs 0.800 (diff +0.100")
    assert line.endswith("0.50x tokens, 0.50x wall")


def test_budget_forcing_is_shown_at_each_cap_against_the_baselines_largest_budget():
    summary = _summary(
        [
            _cell("majority:k=8", 64, 0.0, 1.0, generated=512),
            _cell("majority:k=8", 256, 0.8, 4.0, generated=1000),
            _cell("budget-forcing", 64, 0.7, 0.5, generated=80),
            _cell("budget-forcing", 256, 0.6, 1.0, generated=150),
        ],
        [_comp("budget-forcing", 64, 0.7, 0.16), _comp("budget-forcing", 256, -0.2, 0.15)],
    )
    head, cap64, cap256 = verdict_lines(summary, takes_budget)
    assert cap64.strip() == (
        "budget-forcing @ thinking cap 64: accuracy 0.700 vs 0.800 (majority:k=8 @ 256), 0.08x tokens, 0.12x wall"
    )
    assert cap256.strip().startswith("budget-forcing @ thinking cap 256: accuracy 0.600 vs 0.800")


def test_no_comparisons_no_verdict():
    assert verdict_lines(_summary([_cell("greedy", 64, 0.1, 1.0)], []), takes_budget) == []
