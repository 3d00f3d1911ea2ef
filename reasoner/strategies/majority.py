"""Majority voting (self-consistency; Wang et al. 2022, https://arxiv.org/abs/2203.11171).

Sample k chains independently, extract each one's answer, group answers by verified equivalence and return
the largest group (ties: the answer that appeared first):

    answer = argmax_a  sum_{i=1..k} 1[ans_i == a]

Compute: k full chains (generated = sum of lengths); sequential = the longest chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from reasoner.strategies.base import Clock, Strategy, Task, parallel_tokens, sample_all
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract_rows, vote
from reasoner.types import SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class MajorityConfig(StrategyConfig):
    k: int = Field(8, ge=1)
    """Samples per problem (>= 1). Default 8."""


class Majority(Strategy):
    """majority@k (see module docstring)."""

    name = "majority"
    Config = MajorityConfig
    config: MajorityConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        rows, ready = sample_all(engine, tasks, spec, clock, n=self.config.k)
        out = []
        answer_rows = extract_rows([[c.text for c in row] for row in rows])
        for task, row, t, answers in zip(tasks, rows, ready, answer_rows, strict=True):
            v = vote(answers)
            out.append(
                StrategyResult(
                    answer=v.answer,
                    completions=tuple(row),
                    votes=v.votes,
                    tokens=parallel_tokens(engine.tokenizer, task, row),
                    wall_s=t,
                    extra={"answers": answers},
                )
            )
        return out
