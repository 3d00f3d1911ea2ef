"""Fractured sampling (Liao et al. 2025, https://arxiv.org/abs/2505.12992; github.com/BaohaoLiao/frac-cot).

Sample n reasoning trajectories; cut each one's thinking at H depths and at every cut force m answers from
that prefix, without regenerating it:

    L_j            = thinking length of trajectory j (tokens before </think>; all of it without think tags)
    cut_{j,i}      = floor(i * L_j / H),   i = 1..H          (i = H: the whole thinking)
    prefix_{j,i}   = thinking_j[:cut_{j,i}] + "</think>" + ANSWER_CUE     ("</think>" only if a span is open)
    a_{j,i,l}      ~ p(. | prompt + prefix_{j,i}),   l = 1..m            -> n * H * m answers
    answer         = plurality vote over all n*H*m answers (ties: first appearance)

The n*H cut requests go to the engine as one batched ``generate`` over prompt + prefix token ids, each with
``n = m`` samples, so vLLM's prefix caching serves the shared trajectory prefixes. ``extra`` keeps the
analysis: ``depth_answers`` (depth i -> its n*m answers, trajectory-major), ``cuts`` (trajectory j -> its H cut
positions) and ``trajectory_answers`` (what each full trajectory answered by itself).

Tokens: thinking = the trajectories' reasoning (up to and including ``</think>``; all of it without think
tags), answer = trajectory tails after ``</think>`` plus every forced answer; prefilled counts every cut
request's prompt + prefix + cue; sequential = the longest trajectory + the longest forced answer (two phases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from reasoner.strategies.base import (
    Clock,
    Ledger,
    Strategy,
    Task,
    answer_cue_ids,
    derive,
    sample_all,
    span_open,
    thinking_prefix,
)
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract_all, forced_answer, vote
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class FracturedConfig(StrategyConfig):
    n: int = Field(4, ge=1)
    """Reasoning trajectories per problem (>= 1). Default 4."""
    H: int = Field(4, ge=1)
    """Truncation depths per trajectory: cuts at i*L/H, i = 1..H (>= 1). Default 4."""
    m: int = Field(1, ge=1)
    """Answers sampled at each cut (>= 1). Default 1."""
    answer_tokens: int = Field(16, ge=1)
    """Max tokens of each forced answer, after the answer cue (>= 1). Default 16."""


@dataclass(frozen=True)
class _Cut:
    task: int
    trajectory: int
    depth: int
    position: int


class Fractured(Strategy):
    """Fractured sampling (see module docstring)."""

    name = "fractured"
    Config = FracturedConfig
    config: FracturedConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg, tok = self.config, engine.tokenizer
        trajectories, _ = sample_all(engine, tasks, spec, clock, n=cfg.n)
        prompts: list[list[int]] = []
        cuts: list[_Cut] = []
        for p, (task, row) in enumerate(zip(tasks, trajectories, strict=True)):
            for j, c in enumerate(row):
                think = thinking_prefix(tok, c)
                cue = answer_cue_ids(tok, span_open(tok, think, task.span_open))
                for i in range(1, cfg.H + 1):
                    at = i * len(think) // cfg.H
                    prompts.append([*task.ids, *think[:at], *cue])
                    cuts.append(_Cut(p, j, i, at))
        start = clock.now()
        answered = engine.generate(prompts, derive(spec, n=cfg.m, max_tokens=cfg.answer_tokens))
        per = cfg.n * cfg.H
        results = []
        for p, task in enumerate(tasks):
            mine = slice(p * per, (p + 1) * per)
            results.append(self._result(tok, task, trajectories[p], cuts[mine], answered[mine], start))
        return results

    def _result(
        self,
        tokenizer: Any,
        task: Task,
        trajectories: list[Completion],
        cuts: list[_Cut],
        answered: list[list[Completion]],
        start: float,
    ) -> StrategyResult:
        cfg = self.config
        ledger = Ledger()
        for c in trajectories:
            ledger.add(c, c.think_end if c.think_end is not None else c.num_tokens)
        flat = [c for row in answered for c in row]
        for c in flat:
            ledger.add(c, 0)
        depth_answers: list[list[str | None]] = [[] for _ in range(cfg.H)]
        positions: list[list[int]] = [[] for _ in range(cfg.n)]
        answers: list[str | None] = []
        for cut, row in zip(cuts, answered, strict=True):
            found = [forced_answer(c.text) for c in row]
            depth_answers[cut.depth - 1].extend(found)
            positions[cut.trajectory].append(cut.position)
            answers.extend(found)
        v = vote(answers)
        longest = max(c.num_tokens for c in trajectories) + max((c.num_tokens for c in flat), default=0)
        return StrategyResult(
            answer=v.answer,
            completions=tuple(trajectories) + tuple(flat),
            votes=v.votes,
            tokens=ledger.count(longest),
            wall_s=Clock.ready(start, flat),
            extra={
                "depth_answers": depth_answers,
                "cuts": positions,
                "trajectory_answers": extract_all([c.text for c in trajectories]),
            },
        )
