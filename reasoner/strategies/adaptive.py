"""Predicted-difficulty allocation: ``adaptive:majority`` and ``adaptive:short-m@k``.

Over a batch of N problems (Zhu et al. 2025, https://arxiv.org/abs/2509.12886; adaptive self-consistency
budgets, Aggarwal et al. 2023, https://arxiv.org/abs/2305.11860):

1. a linear probe on each prompt's last-token hidden state predicts its pass rate p_hat_i
   (``reasoner.strategies.difficulty``; the features come from ``reasoner.engines.hidden``, a transformers
   forward pass of the prompt, whatever engine generates);
2. the batch's budget, total = round(mean * N) samples, is spread by ``rule``: ``difficulty`` /
   ``uncertainty`` (``allocate``): k_i = min_k + a share of the rest proportional to w_i = 1 - p_hat or
   p_hat (1 - p_hat), capped at max_k, integer-rounded so that sum k_i = total exactly; ``marginal``
   (``allocate_marginal``): samples go one or two at a time to the largest expected gain in majority accuracy;
3. the wrapped strategy runs with k = k_i on each problem (problems with the same k share engine calls).

Tokens are the wrapped strategy's (``reasoner.strategies.base``): generated, prefilled, thinking and answer per
problem, sequential = its longest chain; ``wall_s`` counts from the start of the batch, and the groups of equal
k run one after the other. ``extra`` adds ``k`` and ``predicted_pass``. With one problem (``reasoner decode``)
the batch is that problem: k = round(mean), within [min_k, max_k].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reasoner.strategies.base import Clock, Strategy, Task
from reasoner.strategies.difficulty import LinearProbe, Rule, allocate_by, probe_path
from reasoner.strategies.majority import Majority, MajorityConfig
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.short_m import ShortM, ShortMConfig
from reasoner.types import SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class AdaptiveConfig(StrategyConfig):
    mean: float = Field(4.0, gt=0)
    """Total sample budget as mean samples per problem (> 0); a batch of N spends round(mean * N). Default 4."""
    min_k: int = Field(1, ge=1)
    """Fewest samples a problem gets (>= 1). Default 1."""
    max_k: int = Field(16, ge=1)
    """Most samples a problem gets (>= min_k). Default 16."""
    rule: Rule = "difficulty"
    """How the budget above min_k follows p_hat: difficulty (proportional to 1 - p_hat), uncertainty
    (proportional to p_hat (1 - p_hat)) or marginal (greedy on the expected gain of majority accuracy per
    sample). Default difficulty."""
    probe: str = ""
    """Path of the probe JSON; empty: ``<model dir>/difficulty_probe.json`` (``reasoner probe fit``). Default
    empty."""

    @model_validator(mode="after")
    def _range(self) -> AdaptiveConfig:
        if self.max_k < self.min_k:
            raise ValueError(f"max_k must be >= min_k={self.min_k}, got {self.max_k}")
        if not self.min_k <= self.mean <= self.max_k:
            raise ValueError(f"mean must be in [min_k={self.min_k}, max_k={self.max_k}], got {self.mean}")
        return self


class AdaptiveShortMConfig(AdaptiveConfig):
    m: int = Field(1, ge=1)
    """Finishers to wait for and vote over (1 <= m <= min_k). Default 1."""
    mode: Literal["live", "simulated"] = "live"
    """short-m@k's mode: live aborts through engine.stream, simulated replays full chains. Default live."""

    @model_validator(mode="after")
    def _m_within(self) -> AdaptiveShortMConfig:
        if self.m > self.min_k:
            raise ValueError(f"m must be <= min_k={self.min_k}, got {self.m}")
        return self


_PROBES: dict[str, LinearProbe] = {}


def load_probe(path: str) -> LinearProbe:
    """The probe at ``path``, read once per process (eval sweeps build the strategy per work unit)."""
    if path not in _PROBES:
        _PROBES[path] = LinearProbe.load(path)
    return _PROBES[path]


def predicted_pass_rates(engine: Engine, probe: str, prompts: Sequence[Sequence[int]]) -> list[float]:
    """The probe's pass rates for ``prompts`` (token ids) of ``engine``'s model; ``probe``: its path, or empty
    for the file next to the model (``probe_path``)."""
    from reasoner.engines.hidden import prompt_features

    linear = load_probe(str(probe_path(engine.model_name, probe)))
    return linear.predict(prompt_features(engine.model_name, prompts, [linear.layer])[0])


class _Adaptive(Strategy):
    """Shared by the adaptive wrappers (module docstring); subclasses build the inner strategy for a k."""

    Config: ClassVar[type[StrategyConfig]] = AdaptiveConfig
    config: AdaptiveConfig

    def inner(self, k: int) -> Strategy:
        raise NotImplementedError

    @property
    def live(self) -> bool:
        return self.inner(self.config.max_k).live

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg = self.config
        passes = predicted_pass_rates(engine, cfg.probe, [t.ids for t in tasks])
        total = round(cfg.mean * len(tasks))
        ks = allocate_by(passes, cfg.rule, total, cfg.min_k, cfg.max_k)
        out: list[StrategyResult | None] = [None] * len(tasks)
        for k in sorted(set(ks)):
            idx = [i for i, ki in enumerate(ks) if ki == k]
            results = self.inner(k)._run(engine, [tasks[i] for i in idx], spec, clock)
            for i, r in zip(idx, results, strict=True):
                out[i] = replace(r, extra={**r.extra, "k": k, "predicted_pass": round(passes[i], 4)})
        return [r for r in out if r is not None]


class AdaptiveMajority(_Adaptive):
    """majority@k_i with k_i from predicted difficulty (module docstring)."""

    name = "adaptive:majority"
    Config = AdaptiveConfig

    def inner(self, k: int) -> Strategy:
        return Majority(MajorityConfig(k=k))


class AdaptiveShortM(_Adaptive):
    """short-m@k_i with k_i from predicted difficulty (module docstring)."""

    name = "adaptive:short-m@k"
    Config = AdaptiveShortMConfig
    config: AdaptiveShortMConfig

    def inner(self, k: int) -> Strategy:
        cfg: Any = self.config
        return ShortM(ShortMConfig(k=k, m=cfg.m, mode=cfg.mode))
