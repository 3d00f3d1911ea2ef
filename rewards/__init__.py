"""Reward functions with TRL's calling convention, and the ``REWARDS`` registry (name -> factory).

Every reward is ``fn(prompts, completions, completion_ids, **columns) -> list[float | None]`` (see
``rewards.base``), a picklable frozen dataclass built by a small factory; formulas and paper links are in each
class docstring. Lengths are tokens from ``completion_ids``; correctness comes from ``reasoner.verify``.

>>> from rewards import REWARDS
>>> fn = REWARDS["truncation"](max_length=4000)
>>> fn(prompts=["q"], completions=["\\\\boxed{4}"], completion_ids=[[1, 2, 3]], answer=["4"])
[1.0]
"""

from __future__ import annotations

from collections.abc import Callable

from rewards.base import GradedReward, GroupReward, RewardFunction, completion_text
from rewards.correctness import Accuracy, Format, accuracy, format_reward
from rewards.group import (
    AroraZanette,
    GrpoLead,
    KimiLength,
    ShorterBetter,
    arora_zanette,
    grpo_lead,
    kimi,
    shorter_better,
)
from rewards.l1 import L1Exact, L1Max, l1_exact, l1_max
from rewards.length import (
    Cosine,
    DifficultyTruncation,
    SoftOverlong,
    Truncation,
    cosine,
    difficulty_truncation,
    soft_overlong,
    truncation,
)

REWARDS: dict[str, Callable[..., RewardFunction]] = {
    "accuracy": accuracy,
    "format": format_reward,
    "truncation": truncation,
    "difficulty_truncation": difficulty_truncation,
    "soft_overlong": soft_overlong,
    "cosine": cosine,
    "kimi": kimi,
    "l1_exact": l1_exact,
    "l1_max": l1_max,
    "arora_zanette": arora_zanette,
    "shorter_better": shorter_better,
    "grpo_lead": grpo_lead,
}
"""Reward name (as written in recipes) -> factory taking the reward's parameters as keywords."""

__all__ = [
    "REWARDS",
    "Accuracy",
    "AroraZanette",
    "Cosine",
    "DifficultyTruncation",
    "Format",
    "GradedReward",
    "GroupReward",
    "GrpoLead",
    "KimiLength",
    "L1Exact",
    "L1Max",
    "RewardFunction",
    "ShorterBetter",
    "SoftOverlong",
    "Truncation",
    "completion_text",
]
