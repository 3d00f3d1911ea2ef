"""One training batch: generate groups, score them, DAPO dynamic sampling with refill.

``collect_batch`` is what the trainer's ``rollout_func`` runs for the G prompts TRL hands it:

1. generate ``n`` completions per prompt (one rollout-source call for all G prompts);
2. score every completion with the reward functions (TRL's convention, each problem's own columns such as
   its gold ``answer``), sum them with the reward weights;
3. dynamic sampling (DAPO, arXiv 2503.14476; DLER, arXiv 2510.15110): a group whose summed rewards are
   constant (std <= eps, ``reasoner.advantages.dynamic_sampling_mask``) carries no GRPO signal. Its slot is
   refilled by a group for a *new* prompt drawn from the refill stream; rounds repeat until every slot holds
   a signal-carrying group or ``max_rounds`` extra rounds were spent. A slot still empty then gets its
   original group back with ``keep=False`` (the trainer masks its loss), so TRL's batch size holds.

The returned batch lists, per row, the columns the rewards saw (``answer``, ``problem_id``, ...): the trainer
forwards them to TRL, so the gold answers always belong to the prompts that were actually generated.
``ProblemStream`` is the deterministic refill / substitution stream (its position is checkpointed).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reasoner.advantages import dynamic_sampling_mask
from reasoner.types import Completion, Problem

__all__ = ["Group", "ProblemStream", "RolloutBatch", "Scorer", "collect_batch"]


class Scorer:
    """Calls TRL-convention reward functions ``fn(prompts, completions, completion_ids, **columns)``."""

    def __init__(
        self,
        funcs: Sequence[Callable[..., list[float | None]]],
        names: Sequence[str],
        weights: Sequence[float],
        columns: Callable[[Problem], dict[str, Any]] | None = None,
        extra_kwargs: Callable[[], dict[str, Any]] | None = None,
    ):
        if not (len(funcs) == len(names) == len(weights)) or not funcs:
            raise ValueError("need one name and one weight per reward function, and at least one function")
        self.funcs, self.names = list(funcs), list(names)
        self.weights = torch.tensor(list(weights), dtype=torch.float32)
        self.columns = columns or problem_columns
        self.extra_kwargs = extra_kwargs or dict

    def __call__(self, problems: Sequence[Problem], groups: Sequence[Sequence[Completion]]) -> tuple:
        """Return (rewards per function ``(rows, F)``, per-row columns) for the flattened groups."""
        rows = [(p, c) for p, g in zip(problems, groups, strict=True) for c in g]
        per_problem = {id(p): self.columns(p) for p in problems}
        keys = list(next(iter(per_problem.values()), {}))
        columns = {k: [per_problem[id(p)][k] for p, _ in rows] for k in keys}
        prompts = [p.question for p, _ in rows]
        completions = [c.text for _, c in rows]
        completion_ids = [list(c.token_ids) for _, c in rows]
        out = torch.full((len(rows), len(self.funcs)), math.nan)
        extra = self.extra_kwargs()
        for j, (fn, name) in enumerate(zip(self.funcs, self.names, strict=True)):
            values = fn(
                prompts=prompts, completions=completions, completion_ids=completion_ids, **columns, **extra
            )
            if len(values) != len(rows):
                raise ValueError(f"reward {name!r} returned {len(values)} values for {len(rows)} completions")
            out[:, j] = torch.tensor([math.nan if v is None else float(v) for v in values])
        return out, columns

    def combine(self, per_func: torch.Tensor) -> torch.Tensor:
        """Weighted sum over functions (NaN = not applicable); rows where every function is NaN stay NaN."""
        total = (per_func * self.weights.to(per_func.device)).nansum(dim=1)
        return total.masked_fill(torch.isnan(per_func).all(dim=1), math.nan)


def problem_columns(problem: Problem) -> dict[str, Any]:
    """Default per-row reward columns: the gold answer and the problem id."""
    return {"answer": problem.answer, "problem_id": problem.id}


@dataclass
class Group:
    """One prompt's n completions, scored."""

    problem: Problem
    prompt_ids: list[int]
    completions: list[Completion]
    rewards: torch.Tensor
    """``(n, F)`` rewards per function."""
    columns: dict[str, list]
    """Per-row reward columns, n entries each."""
    keep: bool = True
    """False: a constant-reward group kept only to fill the batch (its loss is masked)."""
    version: int = 0
    """Weight version (trainer global step) that sampled the completions."""


@dataclass
class RolloutBatch:
    groups: list[Group]
    observed: list[Group]
    """Every group generated this step (kept, dropped, surplus): all inform the pass-rate tracker."""
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def keep(self) -> torch.Tensor:
        return torch.tensor([g.keep for g in self.groups])

    @property
    def rewards(self) -> torch.Tensor:
        return torch.cat([g.rewards for g in self.groups])

    def column(self, key: str) -> list:
        return [v for g in self.groups for v in g.columns[key]]


class ProblemStream:
    """An endless, deterministic stream over ``problems``: pass k visits them in a permutation seeded by
    (seed, k). ``pos`` (problems handed out so far) is all the state; it is saved with checkpoints."""

    def __init__(self, problems: Sequence[Problem], seed: int = 0, pos: int = 0):
        if not problems:
            raise ValueError("ProblemStream needs at least one problem")
        self.problems, self.seed, self.pos = list(problems), seed, pos
        self._pass = -1
        self._order: list[int] = []

    def _at(self, pos: int) -> Problem:
        k, i = divmod(pos, len(self.problems))
        if k != self._pass:
            self._order = list(range(len(self.problems)))
            random.Random(self.seed * 1_000_003 + k).shuffle(self._order)
            self._pass = k
        return self.problems[self._order[i]]

    def take(
        self, count: int, exclude: set[str] | None = None, allow: Callable[[Problem], bool] | None = None
    ) -> list[Problem]:
        """Up to ``count`` problems not in ``exclude`` and ``allow``-ed, scanning at most one full pass."""
        exclude = set(exclude or ())
        out: list[Problem] = []
        for _ in range(len(self.problems)):
            if len(out) >= count:
                break
            p = self._at(self.pos)
            self.pos += 1
            if p.id in exclude or (allow is not None and not allow(p)):
                continue
            out.append(p)
            exclude.add(p.id)
        return out


Generate = Callable[[Sequence[Problem], int], tuple[list[list[int]], list[list[Completion]], list[int]]]
"""``generate(problems, round) -> (prompt ids, completion groups, weight version of each group)``."""
Score = Callable[[Sequence[Problem], Sequence[Sequence[Completion]]], tuple[torch.Tensor, dict[str, list]]]


def _run_round(problems, round_, generate: Generate, score: Score, n: int) -> list[Group]:
    prompt_ids, completions, versions = generate(problems, round_)
    rewards, columns = score(problems, completions)
    groups = []
    for i, (p, ids, comps, version) in enumerate(
        zip(problems, prompt_ids, completions, versions, strict=True)
    ):
        if len(comps) != n:
            raise ValueError(f"rollout returned {len(comps)} completions for a prompt, expected {n}")
        rows = slice(i * n, (i + 1) * n)
        cols = {k: v[rows] for k, v in columns.items()}
        groups.append(Group(p, list(ids), list(comps), rewards[rows], cols, version=version))
    return groups


def collect_batch(
    problems: Sequence[Problem],
    *,
    n: int,
    generate: Generate,
    score: Score,
    combine: Callable[[torch.Tensor], torch.Tensor],
    refill: Callable[[int, set[str]], list[Problem]] | None = None,
    dynamic_sampling: bool = False,
    eps: float = 1e-6,
    max_rounds: int = 0,
    oversample: float = 1.0,
) -> RolloutBatch:
    """Generate, score and (optionally) dynamically resample one batch of ``len(problems)`` groups."""
    first = _run_round(problems, 0, generate, score, n)
    observed = list(first)
    if not dynamic_sampling:
        return RolloutBatch(
            first,
            observed,
            {"refill_rounds": 0.0, "frac_zero_std_groups": math.nan, "generated_groups": float(len(first))},
        )

    def signal(groups: list[Group]) -> list[bool]:
        if not groups:
            return []
        return dynamic_sampling_mask(combine(torch.cat([g.rewards for g in groups])), n, eps).tolist()

    ok = signal(first)
    slots: list[Group | None] = [g if good else None for g, good in zip(first, ok, strict=True)]
    rounds = 0
    while refill is not None and None in slots and rounds < max_rounds:
        missing = slots.count(None)
        exclude = {g.problem.id for g in observed}
        new = refill(math.ceil(missing * oversample), exclude)
        if not new:
            break
        rounds += 1
        fresh = _run_round(new, rounds, generate, score, n)
        observed.extend(fresh)
        for g, good in zip(fresh, signal(fresh), strict=True):
            if good and None in slots:
                slots[slots.index(None)] = g
    groups: list[Group] = []
    for i, slot in enumerate(slots):
        if slot is None:
            first[i].keep = False
            slot = first[i]
        groups.append(slot)
    stats = {
        "refill_rounds": float(rounds),
        "frac_zero_std_groups": 1.0 - sum(ok) / len(ok),
        "generated_groups": float(len(observed)),
    }
    return RolloutBatch(groups, observed, stats)
