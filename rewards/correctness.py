r"""Correctness and format rewards.

- ``accuracy``: r = 1 if the final answer is correct else 0 (RLVR, as in DeepSeek-R1, arXiv 2501.12948).
- ``format``: r = 1 if the completion has the thinking/answer structure, else 0 (DeepSeek-R1's format reward).
"""

from __future__ import annotations

from typing import Any

from reasoner.verify import answer_region, extract_answer, last_boxed
from rewards.base import Columns, GradedReward, RewardFunction, completion_text

THINK_START, THINK_END = "<think>", "</think>"


class Accuracy(GradedReward):
    r"""Verifiable correctness reward (DeepSeek-R1, arXiv 2501.12948, https://arxiv.org/abs/2501.12948).

    r = ``correct_reward`` if ``grade(gold, completion).correct`` else ``incorrect_reward``; None when the
    row has no gold answer. A missing answer, an unparsable one or a verifier timeout count as incorrect.
    """

    name = "accuracy"
    correct_reward: float = 1.0
    """Reward for a correct answer. Default 1."""
    incorrect_reward: float = 0.0
    """Reward for anything else. Default 0."""

    def score(self, prompts, completions, completion_ids, columns: Columns) -> list[float | None]:
        return [
            None if ok is None else (self.correct_reward if ok else self.incorrect_reward)
            for ok in self.correctness(completions, columns)
        ]


def has_structure(text: str, *, require_think: bool, require_boxed: bool) -> bool:
    r"""Whether ``text`` is ``[<think>] thinking </think> answer`` with an extractable answer.

    With ``require_think``: exactly one ``</think>``, at most one ``<think>`` and it comes first (chat
    templates such as DeepSeek-R1's put the opening tag in the prompt, so it may be absent), non-empty
    thinking, and text after ``</think>``. With ``require_boxed`` the answer part must hold a ``\boxed{}``.
    """
    if require_think:
        if text.count(THINK_END) != 1 or text.count(THINK_START) > 1:
            return False
        head, _, _ = text.partition(THINK_END)
        if THINK_START in head and not head.lstrip().startswith(THINK_START):
            return False
        if not head.replace(THINK_START, "").strip():
            return False
    elif THINK_START in text and THINK_END not in text:
        return False
    region = answer_region(text)
    if not region or not region.strip():
        return False
    return last_boxed(region) is not None if require_boxed else extract_answer(text) is not None


class Format(RewardFunction):
    r"""Structure reward (DeepSeek-R1's format reward, arXiv 2501.12948, https://arxiv.org/abs/2501.12948).

    r = ``reward`` if the completion is ``[<think>] thinking </think> answer`` with an extractable final
    answer (a ``\boxed{}`` one when ``require_boxed``), else 0. See ``has_structure`` for the exact rules.
    Correctness is not checked.
    """

    name = "format"
    require_think: bool = True
    """Require a closed thinking span before the answer. Default True."""
    require_boxed: bool = True
    r"""Require the answer in ``\boxed{}``. Default True."""
    reward: float = 1.0
    """Reward for a well-formed completion (others get 0). Default 1."""

    def score(self, prompts, completions: list[Any], completion_ids, columns) -> list[float | None]:
        flags = (
            has_structure(
                completion_text(c), require_think=self.require_think, require_boxed=self.require_boxed
            )
            for c in completions
        )
        return [self.reward if ok else 0.0 for ok in flags]


__all__ = ["Accuracy", "Format", "has_structure"]
