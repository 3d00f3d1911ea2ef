r"""Length-aware rewards computed per completion (lengths in tokens from ``completion_ids``).

- ``truncation`` (DLER): correct and shorter than the cap, else 0.
- ``difficulty_truncation`` (Difficulty-Aware DLER): the cap tightens with the prompt's pass rate.
- ``soft_overlong`` (DAPO): a linear penalty over the last ``cache_length`` tokens before the cap.
- ``cosine`` (Yeo et al.): correctness scaled by a cosine schedule of the length.

Target-length rewards (L1 / LCPO) are in ``rewards/l1.py``; group-statistics rewards in ``rewards/group.py``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator

from reasoner.length_caps import da_cap
from rewards.base import Columns, GradedReward, GroupReward, RewardFunction


class Truncation(GradedReward):
    r"""DLER's truncation penalty (Liu et al. 2025, arXiv 2510.15110, https://arxiv.org/abs/2510.15110).

    r_i = ``correct_reward`` if correct_i and L_i < cap_i else ``incorrect_reward``

    L_i is the completion length in tokens; a completion that used the whole cap counts as truncated. The cap
    is ``max_length``, or per row the ``cap_column`` value when the batch has one (a dataset column of
    per-problem caps). DLER pairs it with batch-wise advantage normalisation; Difficulty-Aware DLER is
    ``difficulty_truncation``.
    """

    name = "truncation"
    max_length: int = Field(ge=1)
    """Truncation length L in tokens (DLER: 4000)."""
    cap_column: str | None = "max_length"
    """Column with a per-row cap that overrides ``max_length`` where present (None values fall back)."""
    correct_reward: float = 1.0
    """Reward for a correct answer within the cap. Default 1."""
    incorrect_reward: float = 0.0
    """Reward for anything else (wrong, no answer, or truncated). Default 0."""

    def caps(self, columns: Columns, n: int) -> list[int]:
        if not self.cap_column or self.cap_column not in columns:
            return [self.max_length] * n
        return [self.max_length if c is None else int(c) for c in self.column(columns, self.cap_column, n)]

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        n = len(completions)
        rows = zip(
            self.correctness(completions, columns),
            self.lengths(completion_ids, n),
            self.caps(columns, n),
            strict=True,
        )
        return [
            None if ok is None else (self.correct_reward if ok and length < cap else self.incorrect_reward)
            for ok, length, cap in rows
        ]


class DifficultyTruncation(GroupReward):
    r"""Difficulty-Aware DLER (arXiv 2510.15110, https://arxiv.org/abs/2510.15110): truncation with a
    per-prompt cap that tightens as the prompt gets easier.

    p = the prompt's pass rate: the ``pass_rate_column`` value where present and not None (the trainer passes
    each prompt's running rate, ``reasoner.train.difficulty.PassRateTracker``, None until it has seen the
    prompt), else the fraction of correct samples in the prompt's current group. The in-group fallback matters:
    a run that visits few prompts twice (100 steps x 4 prompts of 2,000) would otherwise keep L_max for most
    of its steps and be plain DLER. The mean cap of each batch is logged as ``difficulty/mean_cap``.
    cap(p) = round(L_max - (L_max - L_min) * p)   (``reasoner.length_caps.da_cap``)
    r_i = ``correct_reward`` if correct_i and L_i < cap(p) else ``incorrect_reward``
    """

    name = "difficulty_truncation"
    max_length: int = Field(ge=1)
    """L_max: cap (tokens) for prompts never solved (pass rate 0)."""
    min_length: int = Field(ge=1)
    """L_min: cap (tokens) for prompts always solved (pass rate 1); <= max_length."""
    pass_rate_column: str | None = "pass_rate"
    """Column with each prompt's running pass rate in [0, 1]; missing or None: the in-group rate."""
    correct_reward: float = 1.0
    """Reward for a correct answer within the prompt's cap. Default 1."""
    incorrect_reward: float = 0.0
    """Reward for anything else. Default 0."""

    @model_validator(mode="after")
    def _ordered(self) -> DifficultyTruncation:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must be <= max_length ({self.max_length})")
        return self

    def pass_rates(self, prompts, correct: list[bool | None], columns: Columns) -> list[float]:
        n = len(correct)
        given: list[Any] = [None] * n
        if self.pass_rate_column and self.pass_rate_column in columns:
            given = self.column(columns, self.pass_rate_column, n)
        rates = [0.0] * n
        for group in self.groups(prompts, n, columns):
            known = [bool(correct[i]) for i in group if correct[i] is not None]
            in_group = sum(known) / len(known) if known else 0.0
            for i in group:
                rates[i] = in_group if given[i] is None else float(given[i])
        return rates

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        correct = self.correctness(completions, columns)
        lengths = self.lengths(completion_ids, len(completions))
        caps = [
            da_cap(p, self.max_length, self.min_length) for p in self.pass_rates(prompts, correct, columns)
        ]
        if callable(log := columns.get("log_metric")) and caps:  # TRL's reward-metric hook
            log("difficulty/mean_cap", sum(caps) / len(caps))
        return [
            None if ok is None else (self.correct_reward if ok and length < cap else self.incorrect_reward)
            for ok, length, cap in zip(correct, lengths, caps, strict=True)
        ]


class SoftOverlong(RewardFunction):
    r"""DAPO's soft overlong punishment (Yu et al. 2025, arXiv 2503.14476, https://arxiv.org/abs/2503.14476,
    eq. 13). Length only; add it to a correctness reward.

    r = 0                                    if L <= L_max - L_cache
        ((L_max - L_cache) - L) / L_cache    if L_max - L_cache < L <= L_max
        -1                                   if L > L_max
    """

    name = "soft_overlong"
    max_length: int = Field(ge=1)
    """L_max in tokens (DAPO: 20480)."""
    cache_length: int = Field(ge=0)
    """L_cache: length of the soft-penalty interval before L_max (DAPO: 4096); 0 gives a hard cut."""

    @model_validator(mode="after")
    def _within(self) -> SoftOverlong:
        if self.cache_length > self.max_length:
            raise ValueError(f"cache_length ({self.cache_length}) must be <= max_length ({self.max_length})")
        return self

    def penalty(self, length: int) -> float:
        start = self.max_length - self.cache_length
        if length <= start:
            return 0.0
        if length > self.max_length:
            return -1.0
        return (start - length) / self.cache_length

    def score(self, prompts, completions: list[Any], completion_ids, columns) -> list[float | None]:
        return [self.penalty(length) for length in self.lengths(completion_ids, len(completions))]


class Cosine(GradedReward):
    r"""Cosine length-scaled reward (Yeo et al. 2025, "Demystifying Long Chain-of-Thought Reasoning in
    LLMs", arXiv 2502.03373, https://arxiv.org/abs/2502.03373, section 4).

    CosFn(t, T, r_0, r_T) = r_T + (r_0 - r_T) / 2 * (1 + cos(pi * t / T))
    r = CosFn(L, L_max, ``correct_at_zero``, ``correct_at_max``)   if correct
        CosFn(L, L_max, ``wrong_at_zero``, ``wrong_at_max``)       if wrong
        ``exceed_reward``                                          if L >= L_max
    Defaults are the paper's: correct 2 -> 1 (shorter is better), wrong -10 -> 0 (a longer wrong answer is
    penalised less, to keep exploring), exceeding -10.
    """

    name = "cosine"
    max_length: int = Field(ge=1)
    """L_max in tokens (the generation cap)."""
    correct_at_zero: float = 2.0
    """r_0 for correct answers: the reward at length 0. Default 2."""
    correct_at_max: float = 1.0
    """r_L for correct answers: the reward just below L_max. Default 1."""
    wrong_at_zero: float = -10.0
    """r_0 for wrong answers. Default -10."""
    wrong_at_max: float = 0.0
    """r_L for wrong answers. Default 0."""
    exceed_reward: float = -10.0
    """Reward when the completion reaches L_max tokens (truncated). Default -10."""

    def value(self, correct: bool, length: int) -> float:
        if length >= self.max_length:
            return self.exceed_reward
        r0, r_end = (
            (self.correct_at_zero, self.correct_at_max)
            if correct
            else (self.wrong_at_zero, self.wrong_at_max)
        )
        return r_end + 0.5 * (r0 - r_end) * (1.0 + math.cos(math.pi * length / self.max_length))

    def score(self, prompts, completions: list[Any], completion_ids, columns: Columns) -> list[float | None]:
        lengths = self.lengths(completion_ids, len(completions))
        correct = self.correctness(completions, columns)
        return [None if ok is None else self.value(ok, n) for ok, n in zip(correct, lengths, strict=True)]
