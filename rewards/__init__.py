"""Reward functions with TRL's calling convention, and the ``REWARDS`` registry (name -> class).

Every reward is ``fn(prompts, completions, completion_ids, **columns) -> list[float | None]`` (see
``rewards.base``), a frozen pydantic model whose fields are its parameters (typed, with defaults and attribute
docstrings; formulas and paper links are in each class docstring). Lengths are tokens from ``completion_ids``;
correctness comes from ``reasoner.verify``. Recipes name a reward and give its parameters
(``{name: truncation, params: {max_length: 4000}}``); the composition root passes ``REWARDS`` to
``reasoner.config.load_recipe``, which validates ``params`` against the named class.

>>> from rewards import REWARDS
>>> fn = REWARDS["truncation"](max_length=4000)
>>> fn(prompts=["q"], completions=["\\\\boxed{4}"], completion_ids=[[1, 2, 3]], answer=["4"])
[1.0]
"""

from __future__ import annotations

from rewards.base import GradedReward, GroupReward, RewardFunction, completion_text
from rewards.correctness import Accuracy, Format
from rewards.group import AroraZanette, GrpoLead, KimiLength, ShorterBetter
from rewards.l1 import L1Exact, L1Max
from rewards.length import Cosine, DifficultyTruncation, SoftOverlong, Truncation

REWARDS: dict[str, type[RewardFunction]] = {
    cls.name: cls
    for cls in (
        Accuracy,
        Format,
        Truncation,
        DifficultyTruncation,
        SoftOverlong,
        Cosine,
        KimiLength,
        L1Exact,
        L1Max,
        AroraZanette,
        ShorterBetter,
        GrpoLead,
    )
}
"""Reward name (as written in recipes, ``cls.name``) -> class; its fields are the reward's parameters."""

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
