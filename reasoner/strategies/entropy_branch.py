"""Entropy-gated branching (EAGer, https://arxiv.org/abs/2510.11170; EGB, https://arxiv.org/abs/2503.21961).

Decode one path and record the entropy of the next-token distribution at every step,

    H_t = -sum_v p_t(v) log p_t(v)        (nats; raw distribution, before temperature)

Where H_t > threshold the model is unsure which way to go: branch there, i.e. re-sample from the prefix
y_<t (``width`` new continuations, each up to the remaining ``max_tokens - t``), in order of position, at most
``max_branches`` branch points per problem. Branches do not branch again. The answer is a plurality vote over
the main path and all branches (ties: first appearance, so the main path). A problem whose path never crosses
the threshold costs one chain: its unused branches are spent nowhere else, unless a shared ``BranchBudget``
is passed to the strategy (EAGer's budget reallocation): then branch points are drawn from that pool, round
robin over the problems of a batch in order of position, and a problem may take up to the budget's own
per-problem cap.

Entropy is exact over the full vocabulary on the transformers engine and the top-20 estimate
(``engines.base.topk_entropy``, a lower bound) on vLLM, so thresholds are not interchangeable between engines.

This implementation branches after the main path finished (one batched generate for all branch points of all
problems), so sequential = main path + the longest branch continuation. Tokens: generated = main + branches;
prefilled counts each branch's prompt + prefix; thinking/answer by the base rule (prefix-aware).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field

from reasoner.strategies.base import (
    Clock,
    Ledger,
    Strategy,
    Task,
    derive,
    generate_capped,
    offset_seed,
    sample_all,
    span_open,
)
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract_all, vote
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class EntropyBranchConfig(StrategyConfig):
    threshold: float = Field(2.5, gt=0)
    """Entropy (nats) above which a step becomes a branch point (> 0). Default 2.5."""
    max_branches: int = Field(4, ge=0)
    """Cap on branch points per problem (>= 0). Default 4."""
    width: int = Field(1, ge=1)
    """New continuations sampled at each branch point (>= 1). Default 1."""
    min_gap: int = Field(1, ge=1)
    """Minimum distance in tokens between two branch points of a path (>= 1). Default 1."""


class BranchBudget:
    """A pool of branch points shared by problems (and by successive batches); thread-safe."""

    def __init__(self, total: int, per_problem: int):
        if total < 0 or per_problem < 0:
            raise ValueError(
                f"BranchBudget needs total >= 0 and per_problem >= 0, got {total}, {per_problem}"
            )
        self.remaining, self.per_problem = total, per_problem
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Grant up to ``wanted`` branch points (fewer when the pool runs dry)."""
        with self._lock:
            granted = max(0, min(wanted, self.remaining))
            self.remaining -= granted
            return granted


def branch_points(entropies: list[float] | tuple[float, ...], threshold: float, min_gap: int) -> list[int]:
    """Positions t with H_t > threshold, at least ``min_gap`` apart (the earliest wins)."""
    points: list[int] = []
    for t, h in enumerate(entropies):
        if h > threshold and (not points or t - points[-1] >= min_gap):
            points.append(t)
    return points


class EntropyBranch(Strategy):
    """Entropy-gated branching (see module docstring)."""

    name = "entropy-branch"
    Config = EntropyBranchConfig
    config: EntropyBranchConfig

    def __init__(self, config: EntropyBranchConfig | None = None, budget: BranchBudget | None = None):
        super().__init__(config)
        self.budget = budget

    def _allocate(self, candidates: list[list[int]]) -> list[list[int]]:
        cap = self.config.max_branches
        if self.budget is None:
            return [c[:cap] for c in candidates]
        cap = self.budget.per_problem
        chosen: list[list[int]] = [[] for _ in candidates]
        for rnd in range(cap):
            for p, cands in enumerate(candidates):
                if rnd < len(cands) and self.budget.take(1):
                    chosen[p].append(cands[rnd])
        return chosen

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg, tok = self.config, engine.tokenizer
        rows, ready = sample_all(engine, tasks, spec, clock, n=1, entropies=True)
        mains = [row[0] for row in rows]
        candidates = [
            [t for t in branch_points(m.entropies or (), cfg.threshold, cfg.min_gap) if t < spec.max_tokens]
            for m in mains
        ]
        chosen = self._allocate(candidates)
        prompts = [
            [*t.ids, *m.token_ids[:p]] for t, m, pts in zip(tasks, mains, chosen, strict=True) for p in pts
        ]
        caps = [spec.max_tokens - p for pts in chosen for p in pts]  # each path stays within max_tokens
        start = clock.now()
        branch_spec = derive(spec, n=cfg.width, seed=offset_seed(spec, 1))
        branches = generate_capped(engine, prompts, caps, branch_spec)
        out, at = [], 0
        for p, (task, main, pts) in enumerate(zip(tasks, mains, chosen, strict=True)):
            mine = branches[at : at + len(pts)]
            at += len(pts)
            wall = Clock.ready(start, [c for row in mine for c in row]) if pts else ready[p]
            out.append(self._result(tok, task, main, pts, mine, wall, len(candidates[p])))
        return out

    def _result(
        self,
        tok: Any,
        task: Task,
        main: Completion,
        points: list[int],
        branches: list[list[Completion]],
        wall: float,
        n_candidates: int,
    ) -> StrategyResult:
        ledger = Ledger()
        ledger.add_split(tok, main, task.span_open)
        texts = [main.text]
        flat: list[Completion] = []
        for t, row in zip(points, branches, strict=True):
            prefix = main.token_ids[:t]
            opened = span_open(tok, prefix, task.span_open)
            head = tok.decode(list(prefix), skip_special_tokens=True)
            for c in row:
                ledger.add_split(tok, c, opened)
                texts.append(head + c.text)
                flat.append(c)
        answers = extract_all(texts)
        v = vote(answers)
        longest = main.num_tokens + max((c.num_tokens for c in flat), default=0)
        return StrategyResult(
            answer=v.answer,
            completions=(main, *flat),
            votes=v.votes,
            tokens=ledger.count(longest),
            wall_s=wall,
            extra={
                "branch_points": list(points),
                "candidates": n_candidates,
                "answers": answers,
                "max_entropy": max(main.entropies or (0.0,)),
            },
        )
