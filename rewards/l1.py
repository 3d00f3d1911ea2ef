r"""Target-length rewards: L1-Exact and L1-Max (LCPO, Aggarwal & Welleck 2025, arXiv 2503.04697).

The target length n_gold (tokens) comes per prompt from a column (L1 samples one per prompt and states it in
the prompt: "Think for N tokens.") or, for a fixed budget, from the ``target_length`` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewards.base import Columns, GradedReward, check, check_length, check_numbers, is_number


@dataclass(frozen=True, kw_only=True)
class _L1(GradedReward):
    target_length: int | None = None
    """Target length n_gold in tokens, used where the row has no ``target_column`` value."""
    target_column: str | None = "target_length"
    """Column with a per-prompt target (L1 samples one per prompt: "Think for N tokens.")."""
    alpha: float = 0.0003
    """Penalty per token of deviation (paper: 0.0003)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target_length is not None:
            check_length(self, "target_length")
        check(is_number(self.alpha) and self.alpha >= 0, self.__name__, "alpha", ">= 0", self.alpha)

    def targets(self, columns: Columns, n: int) -> list[int]:
        values: list[Any] = [None] * n
        if self.target_column and self.target_column in columns:
            values = self.column(columns, self.target_column, n)
        out = [self.target_length if v is None else int(v) for v in values]
        if any(t is None for t in out):
            raise ValueError(
                f"{self.__name__}: target_length is required (or a {self.target_column!r} column)"
            )
        return out  # type: ignore[return-value]

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        n = len(completions)
        rows = zip(
            self.correctness(completions, columns),
            self.lengths(completion_ids, n),
            self.targets(columns, n),
            strict=True,
        )
        return [None if ok is None else self.value(ok, length, t) for ok, length, t in rows]

    def value(self, correct: bool, length: int, target: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class L1Exact(_L1):
    r"""L1-Exact, LCPO (Aggarwal & Welleck 2025, arXiv 2503.04697, https://arxiv.org/abs/2503.04697).

    r = 1[correct] - alpha * |n_gold - n_y|     (n_y: completion length in tokens, n_gold: target)
    """

    __name__ = "l1_exact"

    def value(self, correct: bool, length: int, target: int) -> float:
        return float(correct) - self.alpha * abs(target - length)


@dataclass(frozen=True, kw_only=True)
class L1Max(_L1):
    r"""L1-Max, LCPO (Aggarwal & Welleck 2025, arXiv 2503.04697, https://arxiv.org/abs/2503.04697).

    r = 1[correct] * clip(alpha * (n_gold - n_y) + delta, 0, 1)     (a budget: shorter is never worse)
    """

    __name__ = "l1_max"
    delta: float = 0.5
    """Offset so that a correct answer exactly at the budget earns delta (paper: 0.5)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_numbers(self, "delta")

    def value(self, correct: bool, length: int, target: int) -> float:
        return float(correct) * min(1.0, max(0.0, self.alpha * (target - length) + self.delta))


def l1_exact(
    target_length: int | None = None,
    *,
    alpha: float = 0.0003,
    target_column: str | None = "target_length",
    answer_column: str = "answer",
    timeout: float = 5.0,
    benchmark: str | None = None,
) -> L1Exact:
    """L1-Exact: accuracy minus alpha * |target - length| (target from ``target_column`` or the argument)."""
    return L1Exact(
        target_length=target_length,
        alpha=alpha,
        target_column=target_column,
        answer_column=answer_column,
        timeout=timeout,
        benchmark=benchmark,
    )


def l1_max(
    target_length: int | None = None,
    *,
    alpha: float = 0.0003,
    delta: float = 0.5,
    target_column: str | None = "target_length",
    answer_column: str = "answer",
    timeout: float = 5.0,
    benchmark: str | None = None,
) -> L1Max:
    """L1-Max: accuracy times clip(alpha * (target - length) + delta, 0, 1)."""
    return L1Max(
        target_length=target_length,
        alpha=alpha,
        delta=delta,
        target_column=target_column,
        answer_column=answer_column,
        timeout=timeout,
        benchmark=benchmark,
    )
