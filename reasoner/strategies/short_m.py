"""short-m@k (Hassid et al. 2025, "Don't Overthink It", https://arxiv.org/abs/2505.17813).

Start k chains of a problem together; once m of them have finished thinking, abort the other k - m and take
a majority vote over the m finishers, ties going to the shortest thinking:

    F       = the first m chains to finish thinking (ordered by thinking length, then sample index)
    answer  = argmax_a sum_{i in F} 1[ans_i == a]          (tie -> the group with the smallest len_i)
    thinking compute = sum_i min(len_i, len_(m))            (len_(m): the m-th shortest thinking length)

"Finished thinking" means: emitted ``</think>``, or ended by itself (EOS / stop string) for models without
think tags (SmolLM2: finished thinking = finished). A chain that emitted ``</think>`` still has to write its
answer: in live mode the m selected finishers keep decoding until they end (EOS or max_tokens) while the
others are aborted at the step at which the m-th finisher appeared; the problem's result is ready when the
m finishers have ended. Chains that hit max_tokens while thinking never finish. When fewer than m chains
finish, nobody is aborted and the vote is over the finishers (over all chains when none finished).

Modes, which agree on answers and token counts for the same traces:

- ``live``: all problems' k chains run in one ``engine.stream``; aborts are real, so wall time drops.
- ``simulated``: generate full chains (or take saved ones: ``simulate``) and replay them: chains not selected
  that ran past len_(m) are cut there and marked ``abort``. Its wall time is that of the full generation.

Tokens: generated includes the aborted chains' partial work; sequential = the longest request of the problem
(the last selected finisher, answer included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from reasoner.engines.base import truncate
from reasoner.prompts import THINK_END, delimiter_ids, find_subsequence
from reasoner.strategies.base import (
    Clock,
    Strategy,
    Task,
    derive,
    finished_thinking_at,
    parallel_tokens,
    sample_all,
)
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract_all, vote
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class ShortMConfig(StrategyConfig):
    k: int = Field(8, ge=1)
    """Chains started per problem (>= 1). Default 8."""
    m: int = Field(1, ge=1)
    """Finishers to wait for and vote over (1 <= m <= k). Default 1."""
    mode: Literal["live", "simulated"] = "live"
    """live: abort through engine.stream; simulated: replay full chains. Default live."""

    @model_validator(mode="after")
    def _m_within_k(self) -> ShortMConfig:
        if self.m > self.k:
            raise ValueError(f"m must be in [1, k={self.k}], got {self.m}")
        return self


def simulate(tokenizer: Any, completions: Sequence[Completion], m: int) -> tuple[list[int], list[Completion]]:
    """Replay full chains as live short-m@k would have run them: (finisher indices in finishing order,
    completions with the aborted ones cut at len_(m))."""
    order = sorted(
        (pos, i) for i, c in enumerate(completions) if (pos := finished_thinking_at(c)) is not None
    )
    selected = [i for _, i in order[:m]]
    if len(selected) < m:
        return selected, list(completions)
    cut = order[m - 1][0]
    keep = set(selected)
    out = [
        c if i in keep or c.num_tokens <= cut else truncate(tokenizer, c, cut)
        for i, c in enumerate(completions)
    ]
    return selected, out


class _Race:
    """Bookkeeping of one live stream over several problems' k chains each."""

    def __init__(self, tokenizer: Any, num_problems: int, k: int, m: int, clock: Clock):
        self.end_ids = delimiter_ids(tokenizer, THINK_END)
        self.k, self.m, self.clock = k, m, clock
        self.ids: list[list[int]] = [[] for _ in range(num_problems * k)]
        self.selected: list[list[int]] = [[] for _ in range(num_problems)]
        self.closed = [False] * num_problems
        self.ready: list[float | None] = [None] * num_problems

    def _finished_thinking(self, i: int, new: int, finished: Completion | None) -> bool:
        ids, n = self.ids[i], len(self.ids[i])
        start = max(0, n - new - len(self.end_ids) + 1)
        if self.end_ids and find_subsequence(ids, self.end_ids, start) >= 0:
            return True
        return finished is not None and finished.finish_reason == "stop"

    def on_event(self, stream: Any, index: int, new_ids: Sequence[int], finished: Completion | None) -> None:
        p = index // self.k
        if not self.closed[p] and index not in self.selected[p]:
            self.ids[index].extend(new_ids)
            if self._finished_thinking(index, len(new_ids), finished):
                self.selected[p].append(index)
                if len(self.selected[p]) == self.m:
                    self.closed[p] = True
                    chosen = set(self.selected[p])
                    stream.abort([j for j in range(p * self.k, (p + 1) * self.k) if j not in chosen])
        self._check_ready(stream, p)

    def _check_ready(self, stream: Any, p: int) -> None:
        if self.ready[p] is None and all(
            stream.completions[j] is not None for j in range(p * self.k, (p + 1) * self.k)
        ):
            self.ready[p] = self.clock.now()


class ShortM(Strategy):
    """short-m@k (see module docstring)."""

    name = "short-m@k"
    Config = ShortMConfig
    config: ShortMConfig

    @property
    def live(self) -> bool:
        return self.config.mode == "live"

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg, tok = self.config, engine.tokenizer
        if cfg.mode == "simulated":
            rows, ready = sample_all(engine, tasks, spec, clock, n=cfg.k)
            replays = [simulate(tok, row, cfg.m) for row in rows]
            return [
                self._result(tok, t, comps, sel, r)
                for t, (sel, comps), r in zip(tasks, replays, ready, strict=True)
            ]
        return self._live(engine, tasks, spec, clock)

    def _live(
        self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock
    ) -> list[StrategyResult]:
        k, tok = self.config.k, engine.tokenizer
        race = _Race(tok, len(tasks), k, self.config.m, clock)
        with engine.stream([t.ids for t in tasks], derive(spec, n=k)) as stream:
            for ev in stream:
                race.on_event(stream, ev.index, ev.new_token_ids, ev.finished)
        results = []
        done = stream.all_completions()
        for p, task in enumerate(tasks):
            comps = done[p * k : (p + 1) * k]
            selected = [i - p * k for i in race.selected[p]]
            finished_at = race.ready[p]
            ready = finished_at if finished_at is not None else clock.now()
            results.append(self._result(tok, task, comps, selected, ready))
        return results

    def _result(
        self, tokenizer: Any, task: Task, comps: Sequence[Completion], selected: list[int], ready: float
    ) -> StrategyResult:
        voters = selected or list(range(len(comps)))
        answers = extract_all([comps[i].text for i in voters])
        ends = [finished_thinking_at(comps[i]) for i in voters]
        ties = [e if e is not None else comps[i].num_tokens for e, i in zip(ends, voters, strict=True)]
        v = vote(answers, tie_keys=ties)
        return StrategyResult(
            answer=v.answer,
            completions=tuple(comps),
            votes=v.votes,
            tokens=parallel_tokens(tokenizer, task, comps),
            wall_s=ready,
            extra={
                "mode": self.config.mode,
                "finishers": list(selected),
                "aborted": [i for i, c in enumerate(comps) if c.finish_reason == "abort"],
                "answers": answers,
                "cutoff": ends[self.config.m - 1] if len(selected) >= self.config.m else None,
            },
        )
