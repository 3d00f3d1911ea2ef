"""The plain verdict lines at the end of `reasoner eval`: drawn from the summary's numbers, largest shared budget."""

from __future__ import annotations

from evals.console import verdict_lines


def _cell(strategy: str, budget: int, accuracy: float, wall_s: float) -> dict:
    return {"strategy": strategy, "budget": budget, "accuracy": accuracy, "wall_s": wall_s}


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
    summary = {
        "cells": [
            _cell("majority:k=8", 128, 0.5, 2.0),
            _cell("majority:k=8", 256, 0.8, 4.0),
            _cell("short-m@k:k=8,m=3", 128, 0.6, 1.0),
            _cell("short-m@k:k=8,m=3", 256, 0.9, 2.0),
        ],
        "comparisons": [_comp("short-m@k:k=8,m=3", 128, 0.1, 0.7), _comp("short-m@k:k=8,m=3", 256, 0.1, 0.5)],
    }
    head, line = verdict_lines(summary)
    assert "against majority:k=8" in head
    assert line.strip().startswith("short-m@k:k=8,m=3 @ 256: accuracy 0.900 vs 0.800 (diff +0.100")
    assert line.endswith("0.50x tokens, 0.50x wall")


def test_no_comparisons_no_verdict():
    assert verdict_lines({"cells": [_cell("greedy", 64, 0.1, 1.0)], "comparisons": []}) == []
