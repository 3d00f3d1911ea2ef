r"""Rewards computed from statistics of each prompt's group of samples (lengths in tokens).

All of them are invariant to the order of samples within a group. Groups come from ``GroupReward.groups``
(a prompt-id column, else ``num_generations`` blocks, else runs of identical prompts).

- ``kimi``: Kimi k1.5's length reward from the group's min and max length.
- ``arora_zanette``: correctness times 1 - alpha * sigmoid(z-score of the length among correct samples).
- ``shorter_better``: distance to the shortest correct sample (the "sample optimal length").
- ``grpo_lead``: exp(-alpha z) for correct samples, a penalty for incorrect ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from rewards.base import Columns, GroupReward

GroupFn = Callable[[list[bool], list[int]], list[float]]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _per_group(reward: GroupReward, prompts, completions, completion_ids, columns, fn: GroupFn) -> list:
    """Apply ``fn(correct, lengths)`` to each group; rows without a gold answer get None."""
    n = len(completions)
    correct = reward.correctness(completions, columns)
    lengths = reward.lengths(completion_ids, n)
    out: list[float | None] = [None] * n
    for group in reward.groups(prompts, n, columns):
        members = [i for i in group if correct[i] is not None]
        if not members:
            continue
        values = fn([bool(correct[i]) for i in members], [lengths[i] for i in members])
        for i, value in zip(members, values, strict=True):
            out[i] = value
    return out


class KimiLength(GroupReward):
    r"""Kimi k1.5 length reward (Kimi Team 2025, arXiv 2501.12599, https://arxiv.org/abs/2501.12599, sec. 2.3.3).

    lambda_i = 0.5 - (L_i - min_len) / (max_len - min_len)    (min/max over the group; 0 when all equal)
    r_i = lambda_i if correct_i else min(0, lambda_i)
    Add it to the accuracy reward (the paper weights it and warms it up over training).
    """

    name = "kimi"

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        return _per_group(self, prompts, completions, completion_ids, columns, kimi_group)


def kimi_group(correct: list[bool], lengths: list[int]) -> list[float]:
    lo, hi = min(lengths), max(lengths)
    lambdas = [0.0 if hi == lo else 0.5 - (n - lo) / (hi - lo) for n in lengths]
    return [lam if ok else min(0.0, lam) for ok, lam in zip(correct, lambdas, strict=True)]


class AroraZanette(GroupReward):
    r"""Efficient-reasoning reward (Arora & Zanette 2025, "Training Language Models to Reason Efficiently",
    arXiv 2502.04463, https://arxiv.org/abs/2502.04463).

    z_i = (L_i - mean_c) / (std_c + eps)    (mean and std of the lengths of the group's *correct* samples)
    r_i = 1[correct_i] * (1 - alpha * sigmoid(z_i))
    Incorrect samples get 0; among correct ones, shorter relative to the prompt's typical correct length
    earns more. alpha in [0, 1) trades accuracy for length (paper: 0.05 to 0.4).
    """

    name = "arora_zanette"
    alpha: float = Field(0.1, ge=0, lt=1)
    """Strength of the length penalty, in [0, 1). Default 0.1."""
    eps: float = Field(1e-6, gt=0)
    """Added to the std (a single correct sample, or equal lengths, give z = 0). Default 1e-6."""

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        return _per_group(self, prompts, completions, completion_ids, columns, self.group)

    def group(self, correct: list[bool], lengths: list[int]) -> list[float]:
        right = [n for ok, n in zip(correct, lengths, strict=True) if ok]
        if not right:
            return [0.0] * len(lengths)
        mean, std = _mean_std(right)
        return [
            (1.0 - self.alpha / (1.0 + math.exp(-(n - mean) / (std + self.eps)))) if ok else 0.0
            for ok, n in zip(correct, lengths, strict=True)
        ]


class ShorterBetter(GroupReward):
    r"""ShorterBetter (Yi, Wang & Li 2025, arXiv 2504.21370, https://arxiv.org/abs/2504.21370).

    SOL = min{L_j : correct_j} if any sample is correct, else mean_j L_j    (sample optimal length)
    r_i = alpha * 1[correct_i] - beta * |L_i - SOL|
    """

    name = "shorter_better"
    alpha: float = 2.0
    """Correctness weight (paper: 1 or 2). Default 2."""
    beta: float = Field(0.001, ge=0)
    """Penalty per token of distance to the sample optimal length (>= 0). Default 0.001."""

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        return _per_group(self, prompts, completions, completion_ids, columns, self.group)

    def group(self, correct: list[bool], lengths: list[int]) -> list[float]:
        right = [n for ok, n in zip(correct, lengths, strict=True) if ok]
        sol = min(right) if right else sum(lengths) / len(lengths)
        return [self.alpha * ok - self.beta * abs(n - sol) for ok, n in zip(correct, lengths, strict=True)]


class GrpoLead(GroupReward):
    r"""GRPO-LEAD length-dependent accuracy reward (Zhang & Zuo 2025, arXiv 2504.09696,
    https://arxiv.org/abs/2504.09696).

    z_i = (L_i - mean_c) / (std_c + eps)    (over the group's correct samples)
    r_i = exp(-alpha * z_i) if correct_i else ``incorrect_reward`` (the paper's explicit penalty, -1)
    """

    name = "grpo_lead"
    alpha: float = Field(0.1, ge=0)
    """Length sensitivity (>= 0). Default 0.1."""
    incorrect_reward: float = -1.0
    """Reward for an incorrect answer (the paper's explicit penalty). Default -1."""
    eps: float = Field(1e-6, gt=0)
    """Added to the std of the correct lengths. Default 1e-6."""

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        return _per_group(self, prompts, completions, completion_ids, columns, self.group)

    def group(self, correct: list[bool], lengths: list[int]) -> list[float]:
        right = [n for ok, n in zip(correct, lengths, strict=True) if ok]
        if not right:
            return [self.incorrect_reward] * len(lengths)
        mean, std = _mean_std(right)
        return [
            math.exp(-self.alpha * (n - mean) / (std + self.eps)) if ok else self.incorrect_reward
            for ok, n in zip(correct, lengths, strict=True)
        ]
