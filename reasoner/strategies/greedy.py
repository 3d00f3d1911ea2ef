"""Greedy decoding: one sample at temperature 0 (argmax at every step); the answer is extracted from it.

The baseline every other strategy is compared with: no search, no vote. ``spec.temperature`` is ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reasoner.strategies.base import Clock, NoConfig, Strategy, Task, parallel_tokens, sample_all
from reasoner.strategies.voting import extract_all
from reasoner.types import SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


def single_results(
    engine: Engine, tasks: list[Task], rows: list[list[Any]], ready: list[float]
) -> list[StrategyResult]:
    """Results of strategies that keep one sample per problem."""
    out = []
    answers = extract_all([row[0].text for row in rows])
    for task, row, t, answer in zip(tasks, rows, ready, answers, strict=True):
        out.append(
            StrategyResult(
                answer=answer,
                completions=tuple(row),
                votes={answer: 1.0} if answer is not None else {},
                tokens=parallel_tokens(engine.tokenizer, task, row),
                wall_s=t,
            )
        )
    return out


class Greedy(Strategy):
    """Greedy decoding (see module docstring)."""

    name = "greedy"
    Config = NoConfig
    config: NoConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        rows, ready = sample_all(engine, tasks, spec, clock, n=1, temperature=0.0)
        return single_results(engine, tasks, rows, ready)
