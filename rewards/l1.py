r"""Target-length rewards: L1-Exact and L1-Max (LCPO, Aggarwal & Welleck 2025, arXiv 2503.04697).

The target length n_gold (tokens) comes per prompt from a column (L1 samples one per prompt and states it in
the prompt: "Think for N tokens.") or, for a fixed budget, from the ``target_length`` argument.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rewards.base import Columns, GradedReward


class _L1(GradedReward):
    target_length: int | None = Field(None, ge=1)
    """Target length n_gold in tokens, used where the row has no ``target_column`` value. Default None."""
    target_column: str | None = "target_length"
    """Column with a per-prompt target (L1 samples one per prompt: "Think for N tokens.")."""
    alpha: float = Field(0.0003, ge=0)
    """Penalty per token of deviation (paper: 0.0003)."""

    def targets(self, columns: Columns, n: int) -> list[int]:
        values: list[Any] = [None] * n
        if self.target_column and self.target_column in columns:
            values = self.column(columns, self.target_column, n)
        out = []
        for v in values:
            target = self.target_length if v is None else int(v)
            if target is None:
                raise ValueError(
                    f"{self.__name__}: target_length is required (or a {self.target_column!r} column)"
                )
            out.append(target)
        return out

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


class L1Exact(_L1):
    r"""L1-Exact, LCPO (Aggarwal & Welleck 2025, arXiv 2503.04697, https://arxiv.org/abs/2503.04697).

    r = 1[correct] - alpha * |n_gold - n_y|     (n_y: completion length in tokens, n_gold: target)
    """

    name = "l1_exact"

    def value(self, correct: bool, length: int, target: int) -> float:
        return float(correct) - self.alpha * abs(target - length)


class L1Max(_L1):
    r"""L1-Max, LCPO (Aggarwal & Welleck 2025, arXiv 2503.04697, https://arxiv.org/abs/2503.04697).

    r = 1[correct] * clip(alpha * (n_gold - n_y) + delta, 0, 1)     (a budget: shorter is never worse)
    """

    name = "l1_max"
    delta: float = 0.5
    """Offset so that a correct answer exactly at the budget earns delta (paper: 0.5)."""

    def value(self, correct: bool, length: int, target: int) -> float:
        return float(correct) * min(1.0, max(0.0, self.alpha * (target - length) + self.delta))
