"""Sampling: one sample at the spec's temperature / top_p / top_k; the answer is extracted from it.

Its accuracy over many problems (or seeds) is avg@1, the per-sample accuracy other strategies improve on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.strategies.base import Clock, NoConfig, Strategy, Task, sample_all
from reasoner.strategies.greedy import single_results
from reasoner.types import SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class Sample(Strategy):
    """One sample (see module docstring)."""

    name = "sample"
    Config = NoConfig
    config: NoConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        rows, ready = sample_all(engine, tasks, spec, clock, n=1)
        return single_results(engine, tasks, rows, ready)
