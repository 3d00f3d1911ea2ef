"""Token-budget evaluation metrics: pure functions over per-sample results (DESIGN section 7).

Conventions. A *group* is the list of per-sample outcomes for one problem (``n`` samples). Accuracy-style
metrics average over problems first within a problem, then across problems, so every problem weighs the
same whatever its ``n``. Token counts are integers (model tokens, never characters); budgets are in
tokens too.

- ``accuracy``            avg@n = (1/P) sum_p c_p / n_p
- ``pass_at_k``           unbiased pass@k = 1 - C(n-c, k) / C(n, k)       (Chen et al. 2021, arXiv 2107.03374)
- ``maj_at_k``            the majority strategy's vote over k extracted answers, scored by the winner's verdict
                          (self-consistency, Wang et al. 2022, arXiv 2203.11171)
- ``mean_token_counts``   mean of each ``TokenCount`` field (thinking, answer, generated, ...)
- ``tokens_per_correct``  sum_i t_i / sum_i 1[correct_i]
- ``accuracy_per_1k_tokens``  1000 * sum_i 1[correct_i] / sum_i t_i
- ``auc_accuracy_vs_budget``  trapezoid area under accuracy(budget), optionally / (B_max - B_min)
- ``pareto_front``        non-dominated (tokens, accuracy) points: fewer tokens, higher accuracy
- ``wall_time_stats``     total / mean / median / p90 / max of per-item wall seconds

Which strategies these per-sample metrics apply to: ``PER_SAMPLE`` (by ``base_name`` of a strategy label).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from reasoner.types import TokenCount

__all__ = [
    "PER_SAMPLE",
    "accuracy",
    "accuracy_per_1k_tokens",
    "auc_accuracy_vs_budget",
    "base_name",
    "maj_at_k",
    "mean_maj_at_k",
    "mean_pass_at_k",
    "mean_token_counts",
    "pareto_front",
    "pass_at_k",
    "tokens_per_correct",
    "wall_time_stats",
]


def _as_groups(correct: Sequence[bool] | Sequence[Sequence[bool]]) -> list[list[bool]]:
    """Per-problem groups; a flat sequence of booleans means one sample per problem."""
    groups = [[bool(x)] if isinstance(x, bool | np.bool_ | int) else [bool(y) for y in x] for x in correct]
    if not groups:
        raise ValueError("need at least one problem")
    if any(len(g) == 0 for g in groups):
        raise ValueError("every problem needs at least one sample")
    return groups


def accuracy(correct: Sequence[bool] | Sequence[Sequence[bool]]) -> float:
    """Average accuracy over samples, avg@n: ``(1/P) * sum_p (c_p / n_p)``.

    ``correct`` holds, per problem, the correctness of each of its ``n_p`` samples (``c_p`` of them
    correct); a flat list of booleans is one sample per problem. With equal ``n`` this is the expected
    pass@1, the number reasoning papers report as "avg@n" or "pass@1 (n samples)".
    """
    return float(np.mean([sum(g) / len(g) for g in _as_groups(correct)]))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021, arXiv 2107.03374).

    pass@k = 1 - C(n-c, k) / C(n, k): the probability that a uniformly drawn k-subset of the n samples
    holds at least one correct one. Evaluated in the paper's numerically stable product form
    ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms a large binomial. Equals 1 when ``n - c < k``.
    """
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """Mean over problems of ``pass_at_k(n_p, c_p, k)``; every problem needs ``n_p >= k`` samples."""
    return float(np.mean([pass_at_k(len(g), sum(g), k) for g in _as_groups(correct)]))


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int | None = None) -> bool:
    """maj@k for one problem: is the plurality answer of the first ``k`` samples correct?

    ``answers`` are the extracted answers in sample order (``None``: none extracted) and ``correct`` each
    sample's verdict. The vote is the majority strategy's own (``reasoner.strategies.voting.vote``: answers
    grouped by verified equivalence, so "1/2" and "0.5" vote together; ties go to the group seen first), and
    the verdict is that of the winning group's first sample. No answer among the k samples counts as wrong.
    ``k=None`` uses all. Self-consistency: Wang et al. 2022, arXiv 2203.11171.
    """
    from reasoner.strategies.voting import vote

    if len(answers) != len(correct):
        raise ValueError(
            f"need one verdict per answer, got {len(answers)} answers and {len(correct)} verdicts"
        )
    if k is not None:
        if not (1 <= k <= len(answers)):
            raise ValueError(f"need 1 <= k <= {len(answers)}, got k={k}")
        answers, correct = answers[:k], correct[:k]
    winners = vote(answers).winners
    return bool(correct[winners[0]]) if winners else False


def mean_maj_at_k(
    answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]], k: int | None = None
) -> float:
    """Mean over problems of ``maj_at_k``: ``(1/P) * sum_p 1[plurality of p's first k answers correct]``."""
    if len(answers) != len(correct) or not answers:
        raise ValueError("need one verdict list per problem, and at least one problem")
    return float(np.mean([maj_at_k(a, c, k) for a, c in zip(answers, correct, strict=True)]))


def mean_token_counts(counts: Sequence[TokenCount]) -> dict[str, float]:
    """Mean of every ``TokenCount`` field over items: ``{"thinking": ..., "answer": ..., ...}``."""
    if not counts:
        raise ValueError("need at least one TokenCount")
    return {f.name: float(np.mean([getattr(c, f.name) for c in counts])) for f in fields(TokenCount)}


def _paired(correct: Sequence[bool], tokens: Sequence[int]) -> tuple[int, int]:
    if len(correct) != len(tokens) or not correct:
        raise ValueError(f"need equal, non-empty lengths, got {len(correct)} and {len(tokens)}")
    if any(t < 0 for t in tokens):
        raise ValueError("token counts must be >= 0")
    return sum(bool(c) for c in correct), int(sum(tokens))


def tokens_per_correct(correct: Sequence[bool], tokens: Sequence[int]) -> float:
    """Tokens spent per correct answer: ``sum_i t_i / sum_i 1[correct_i]`` (all samples' tokens count).

    ``inf`` when nothing is correct (and tokens were spent); 0 when nothing was spent.
    """
    n_correct, total = _paired(correct, tokens)
    if total == 0:
        return 0.0
    return total / n_correct if n_correct else math.inf


def accuracy_per_1k_tokens(correct: Sequence[bool], tokens: Sequence[int]) -> float:
    """Accuracy per thousand tokens: ``acc / (mean_tokens / 1000) = 1000 * sum_i 1[correct_i] / sum_i t_i``.

    Equals ``1000 / tokens_per_correct``. Raises when no tokens were spent (undefined).
    """
    n_correct, total = _paired(correct, tokens)
    if total == 0:
        raise ValueError("accuracy per token is undefined when no tokens were spent")
    return 1000.0 * n_correct / total


def auc_accuracy_vs_budget(
    budgets: Sequence[float], accuracies: Sequence[float], *, normalize: bool = False
) -> float:
    """Area under the accuracy-vs-token-budget curve by the trapezoid rule.

    AUC = sum_j (B_{j+1} - B_j) * (a_j + a_{j+1}) / 2 over budgets sorted ascending. With
    ``normalize=True`` the area is divided by ``B_max - B_min``: the budget-averaged accuracy, in
    [0, 1] and comparable across budget grids with the same range; a single budget then returns its
    accuracy. Budgets must be distinct.
    """
    if len(budgets) != len(accuracies) or not budgets:
        raise ValueError(f"need equal, non-empty lengths, got {len(budgets)} and {len(accuracies)}")
    if len(set(budgets)) != len(budgets):
        raise ValueError(f"budgets must be distinct, got {list(budgets)}")
    order = np.argsort(np.asarray(budgets, dtype=float))
    b = np.asarray(budgets, dtype=float)[order]
    a = np.asarray(accuracies, dtype=float)[order]
    area = float(np.sum(np.diff(b) * (a[1:] + a[:-1]) / 2.0))
    if not normalize:
        return area
    span = float(b[-1] - b[0])
    return float(a[0]) if span == 0 else area / span


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated ``(tokens, accuracy)`` points, sorted by tokens ascending.

    Point p dominates q when ``p.tokens <= q.tokens`` and ``p.acc >= q.acc`` with at least one strict:
    it is no more expensive and no less accurate. Exact duplicates of a front point are all kept
    (neither dominates the other). Sweep after sorting by (tokens asc, accuracy desc): O(P log P).
    """
    pts = [(float(t), float(a)) for t, a in points]
    order = sorted(range(len(pts)), key=lambda i: (pts[i][0], -pts[i][1], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if pts[i][1] > best:
            front.append(i)
            best = pts[i][1]
        elif front and pts[front[-1]] == pts[i]:
            front.append(i)
    return front


def wall_time_stats(wall_s: Sequence[float]) -> dict[str, float]:
    """Aggregates of per-item wall seconds: total, mean, median, p90 (linear interpolation), max."""
    if not wall_s:
        raise ValueError("need at least one wall time")
    w = np.asarray(wall_s, dtype=float)
    return {
        "total": float(w.sum()),
        "mean": float(w.mean()),
        "median": float(np.median(w)),
        "p90": float(np.percentile(w, 90)),
        "max": float(w.max()),
    }


PER_SAMPLE = frozenset({"greedy", "sample", "majority", "best-of-n"})
"""Strategies whose completions are independent full samples (pass@k / maj@k apply)."""


def base_name(label: str) -> str:
    """A strategy label's name without its parameters: ``majority:k=8`` -> ``majority``."""
    return label.partition(":")[0]
