"""Decoding strategies (DESIGN section 4): one file per strategy, one explicit registry.

``STRATEGIES`` maps a name to its class; ``build_strategy(name, {"k": "8", "m": "3"})`` validates ``key=value``
strings into the strategy's config (a frozen pydantic model, ``StrategyConfig``) and raises ``ValueError`` naming the bad key or value and listing
the valid keys. ``strategy_help(name)`` lists a strategy's parameters (type, default, docstring).

Every strategy has ``run(engine, problem, spec) -> StrategyResult`` and ``run_batch(engine, problems, spec)``;
the token-accounting rules shared by all of them are in ``reasoner.strategies.base``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reasoner.strategies.adaptive import (
    AdaptiveConfig,
    AdaptiveMajority,
    AdaptiveShortM,
    AdaptiveShortMConfig,
)
from reasoner.strategies.base import Strategy
from reasoner.strategies.best_of_n import BestOfN, BestOfNConfig
from reasoner.strategies.budget_forcing import BudgetForcing, BudgetForcingConfig
from reasoner.strategies.deepconf import DeepConf, DeepConfConfig
from reasoner.strategies.early_exit import EarlyExit, EarlyExitConfig
from reasoner.strategies.entropy_branch import BranchBudget, EntropyBranch, EntropyBranchConfig
from reasoner.strategies.fractured import Fractured, FracturedConfig
from reasoner.strategies.greedy import Greedy
from reasoner.strategies.majority import Majority, MajorityConfig
from reasoner.strategies.params import FieldHelp, StrategyConfig, config_help, parse_config
from reasoner.strategies.sample import Sample
from reasoner.strategies.short_m import ShortM, ShortMConfig, simulate

STRATEGIES: dict[str, type[Strategy]] = {
    "greedy": Greedy,
    "sample": Sample,
    "majority": Majority,
    "best-of-n": BestOfN,
    "short-m@k": ShortM,
    "fractured": Fractured,
    "entropy-branch": EntropyBranch,
    "budget-forcing": BudgetForcing,
    "early-exit": EarlyExit,
    "deepconf": DeepConf,
    "adaptive:majority": AdaptiveMajority,
    "adaptive:short-m@k": AdaptiveShortM,
}
"""Strategy name -> class (the name ``reasoner decode --strategy`` takes)."""


def _lookup(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def build_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Build strategy ``name`` with its config parsed from ``params`` (``key -> value`` strings, e.g. from
    ``--param k=8``). Raises ``ValueError`` for an unknown name, key, or a bad value."""
    cls = _lookup(name)
    return cls(parse_config(cls.Config, dict(params or {}), name))


def strategy_help(name: str) -> list[FieldHelp]:
    """The parameters of strategy ``name``: name, type, default and docstring of each config field."""
    return config_help(_lookup(name).Config)


__all__ = [
    "STRATEGIES",
    "AdaptiveConfig",
    "AdaptiveMajority",
    "AdaptiveShortM",
    "AdaptiveShortMConfig",
    "BestOfN",
    "BestOfNConfig",
    "BranchBudget",
    "BudgetForcing",
    "BudgetForcingConfig",
    "DeepConf",
    "DeepConfConfig",
    "EarlyExit",
    "EarlyExitConfig",
    "EntropyBranch",
    "EntropyBranchConfig",
    "FieldHelp",
    "Fractured",
    "FracturedConfig",
    "Greedy",
    "Majority",
    "MajorityConfig",
    "Sample",
    "ShortM",
    "ShortMConfig",
    "Strategy",
    "StrategyConfig",
    "build_strategy",
    "simulate",
    "strategy_help",
]
