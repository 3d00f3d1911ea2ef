"""Truncation reuse for budget sweeps: an engine proxy that records and replays.

``SweepEngine`` is an engine proxy that records every finished batch of requests and answers a later request
for the same prompts and sampling parameters with a smaller ``max_tokens`` B by replaying the recorded tokens
cut at B (finish reason ``length`` where the recording ran longer). Engines sample request j with its own seed
from (``spec.seed``, j, prompt), so the first B tokens of a max-budget run are exactly what a run with
``max_tokens = B`` produces: one generation at the largest budget answers every "stop at B" budget of
per-sample strategies (greedy, sample, majority, best-of-n, short-m@k simulated); identical requests of different
strategies (majority@4 and short-1@4 share their 4 chains) are generated once (a recording made without
logprobs cannot serve a request that reads them, e.g. best-of-n after majority: that request runs and its
recording, with logprobs, replaces the other); and strategies that force an answer (budget forcing: thinking
capped at B, then ``</think>`` + answer cue) replay the capped thinking and only generate the forced answer
from ``prompt + prefix`` (continue_from). Strategies whose requests do not repeat simply run per budget.
Replayed completions keep their recorded wall time, scaled by the fraction of tokens kept, so per-problem wall
times estimate separate runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reasoner.engines.base import Engine, ListSession, Session, StreamEvent, cut_at_stop
from reasoner.prompts import THINK_END, delimiter_ids, think_end_index
from reasoner.types import Completion, FinishReason, SampleSpec


def truncate(
    tokenizer: Any, c: Completion, n: int, reason: FinishReason, stop: Sequence[str] = ()
) -> Completion:
    """``c`` cut to its first ``n`` tokens with finish ``reason``, as a run stopped there would return it."""
    if n >= c.num_tokens and reason == c.finish_reason:
        return c
    ids = c.token_ids[:n]
    return Completion(
        token_ids=ids,
        text=cut_at_stop(tokenizer.decode(list(ids), skip_special_tokens=True), stop)[0],
        logprobs=c.logprobs[:n] if c.logprobs is not None else None,
        top_logprobs=c.top_logprobs[:n] if c.top_logprobs is not None else None,
        finish_reason=reason,
        prompt_tokens=c.prompt_tokens,
        think_end=think_end_index(ids, delimiter_ids(tokenizer, THINK_END)),
        elapsed_s=c.elapsed_s * n / max(c.num_tokens, 1),
        entropies=c.entropies[:n] if c.entropies is not None else None,
    )


def covers(c: Completion, max_tokens: int) -> bool:
    """Whether a recorded completion determines the request's outcome at ``max_tokens``."""
    return c.finish_reason == "stop" or c.num_tokens >= max_tokens


def serves(record: Sequence[Completion], spec: SampleSpec) -> bool:
    """Whether a recording answers a request: it covers ``spec.max_tokens`` and, when the request reads
    logprobs, it has them."""
    has_logprobs = all(c.logprobs is not None for c in record)
    return all(covers(c, spec.max_tokens) for c in record) and (has_logprobs or not spec.logprobs)


def _key(prompts: Sequence[Sequence[int]], spec: SampleSpec, entropies: bool) -> tuple:
    """Requests that differ only in ``max_tokens`` or ``logprobs`` share a recording (logprobs do not change
    the samples; ``SweepEngine.start`` checks that a recording has the logprobs a request reads)."""
    fields = dataclasses.replace(spec, max_tokens=1, logprobs=True)
    return (tuple(tuple(p) for p in prompts), fields, entropies)


class SweepEngine(Engine):
    """Engine proxy that records finished request batches and replays them truncated (module docstring).

    ``spent`` counts tokens the wrapped engine generated, ``served`` tokens replayed; ``spent_by`` splits
    ``spent`` by owner (``set_owners`` maps rendered prompts to problem ids). ``reuse=False`` turns replay
    off (separate runs, for comparisons). ``clear()`` forgets recordings (between work units).
    """

    def __init__(self, engine: Engine, *, reuse: bool = True):
        self.inner, self.reuse = engine, reuse
        self.tokenizer, self.name, self.model_name = engine.tokenizer, engine.name, engine.model_name
        self.spent = self.served = 0
        self.spent_by: dict[str, int] = {}
        self._records: dict[tuple, list[Completion]] = {}
        self._owners: list[tuple[tuple[int, ...], str]] = []

    def clear(self) -> None:
        self._records.clear()

    def set_owners(self, owners: Mapping[str, Sequence[int]]) -> None:
        """Problem id -> its rendered prompt ids; requests whose prompt starts with them count for it."""
        self._owners = sorted(((tuple(ids), pid) for pid, ids in owners.items()), key=lambda o: -len(o[0]))

    def owner(self, prompt: Sequence[int]) -> str:
        for ids, pid in self._owners:
            if tuple(prompt[: len(ids)]) == ids:
                return pid
        return ""

    def take_spent(self) -> dict[str, int]:
        """Spent tokens per owner since the last call."""
        out, self.spent_by = self.spent_by, {}
        return out

    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        key = _key(prompts, spec, entropies)
        record = self._records.get(key) if self.reuse else None
        if record is not None and serves(record, spec):
            return ReplaySession(self, record, spec)
        return RecordingSession(
            self, self.inner.start(prompts, spec, entropies=entropies), key, prompts, spec
        )

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        self.clear()
        self.inner.load_weights(named_tensors)

    def close(self) -> None:
        self.inner.close()

    def _record(self, key: tuple, completions: list[Completion]) -> None:
        self._records[key] = completions


class RecordingSession(Session):
    """A real session; counts what it generates and records the batch once every request has ended."""

    def __init__(self, owner: SweepEngine, session: Session, key: tuple, prompts: Sequence, spec: SampleSpec):
        self.e, self.inner, self.key, self.n = owner, session, key, spec.n
        self.who = [owner.owner(p) for p in prompts]
        self.done: dict[int, Completion] = {}
        self.total = len(prompts) * spec.n

    def _count(self, index: int, tokens: int) -> None:
        self.e.spent += tokens
        who = self.who[index // self.n]
        self.e.spent_by[who] = self.e.spent_by.get(who, 0) + tokens

    def step(self) -> list[StreamEvent]:
        events = self.inner.step()
        for ev in events:
            self._count(ev.index, len(ev.new_token_ids))
            if ev.finished is not None:
                self.done[ev.index] = ev.finished
        self._maybe_record()
        return events

    def abort(self, indices: Iterable[int]) -> list[Completion | None]:
        indices = list(indices)
        out = self.inner.abort(indices)
        for i, c in zip(indices, out, strict=True):
            if c is not None:
                self.done[i] = c
        self._maybe_record()
        return out

    def _maybe_record(self) -> None:
        if len(self.done) == self.total:  # a session only runs when no recording covered it: replace
            self.e._record(self.key, [self.done[i] for i in range(self.total)])

    def has_unfinished(self) -> bool:
        return self.inner.has_unfinished()

    def close(self) -> None:
        self.inner.close()


class ReplaySession(ListSession):
    """Replays recorded completions one token per step, cut at ``spec.max_tokens``; aborts keep the prefix."""

    def __init__(self, owner: SweepEngine, record: list[Completion], spec: SampleSpec):
        self.e, self.spec, self.t0 = owner, spec, time.perf_counter()
        self.plans = [self._plan(c) for c in record]
        self.pos = [0] * len(record)
        self.live = list(range(len(record)))

    def _plan(self, c: Completion) -> Completion:
        if not self.spec.logprobs and c.logprobs is not None:
            c = dataclasses.replace(c, logprobs=None)  # the shape a live run without logprobs returns
        if c.finish_reason == "stop" and c.num_tokens <= self.spec.max_tokens:
            return c
        return truncate(self.e.tokenizer, c, self.spec.max_tokens, "length", self.spec.stop)

    def step(self) -> list[StreamEvent]:
        events, still = [], []
        for i in self.live:
            plan, p = self.plans[i], self.pos[i]
            self.pos[i] = p + 1
            done = plan if p + 1 >= plan.num_tokens else None
            lps = plan.logprobs[p : p + 1] if plan.logprobs is not None else None
            top = plan.top_logprobs[p : p + 1] if plan.top_logprobs is not None else None
            events.append(StreamEvent(i, plan.token_ids[p : p + 1], done, lps, top))
            if done is None:
                still.append(i)
        self.e.served += len(events)
        self.live = still
        return events

    def _aborted(self, index: int) -> Completion:
        return truncate(self.e.tokenizer, self.plans[index], self.pos[index], "abort", self.spec.stop)
