"""The strategy base class and what every strategy shares: prompts, forced answers, token accounting, time.

A strategy turns problems into ``StrategyResult`` s with an engine (DESIGN section 4).
``Strategy.run(engine, problem, spec)`` solves one problem; ``Strategy.run_batch(engine, problems, spec)``
solves many, putting their requests into the same engine calls (on vLLM this is what makes wall time
reasonable); ``run`` is ``run_batch`` of one. ``spec`` gives temperature, top_p, top_k, seed, stop and the
per-request ``max_tokens``; the strategy's own config gives k, m, thresholds. ``spec.n`` is ignored: the
config says how many samples. Sample j of a request uses its own seed from (``spec.seed``, j, prompt)
(engines' rule, ``sample_seed``).

Token accounting (``TokenCount``), the same for every strategy:

- ``generated``: every token of every request, aborted requests' partial work included;
- ``prefilled``: every request's prompt tokens (``Completion.prompt_tokens``); a continuation from
  prompt + prefix counts the whole prefix again, even where vLLM's prefix cache serves it (work requested);
- ``thinking`` / ``answer``: a completion that closes a thinking span splits at ``think_end`` (the ``</think>``
  delimiter counts as thinking). One that never closes it is all thinking when a span is open (the prompt
  ends inside ``<think>``, as DeepSeek-R1-Distill templates do, or the completion opened one) and all answer
  otherwise: models without think tags (SmolLM2) report thinking = 0 for plain samples. Continuations after a
  forced answer cue are answer tokens; strategies that force an end of thinking (budget forcing, fractured,
  early exit) count the reasoning before the cut as thinking, with or without tags;
- ``sequential``: the longest chain a user waits for: the max over parallel requests, the sum over phases
  that run one after the other (as this implementation runs them);
- ``wall_s``: per problem, seconds from the start of ``run_batch`` until that problem's result was ready (its
  last request finished); ``extra["batch_wall_s"]`` is the wall time of the whole batch.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from reasoner.engines.base import truncate
from reasoner.prompts import ANSWER_CUE, THINK_END, THINK_START, delimiter_ids, find_subsequence, render
from reasoner.strategies.params import StrategyConfig
from reasoner.types import Completion, Problem, SampleSpec, StrategyResult, TokenCount

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger(__name__)


class NoConfig(StrategyConfig):
    """This strategy has no parameters of its own (sampling comes from the SampleSpec)."""


@dataclass(frozen=True)
class Task:
    """One problem, rendered: its prompt token ids and whether the prompt leaves a thinking span open."""

    problem: Problem
    ids: tuple[int, ...]
    span_open: bool


class Clock:
    """Seconds since the start of a batch; per-problem ready times from completions' ``elapsed_s``."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    @staticmethod
    def ready(phase_start: float, completions: Sequence[Completion]) -> float:
        """When the last of ``completions`` (submitted at ``phase_start``) finished."""
        return phase_start + max((c.elapsed_s for c in completions), default=0.0)


class Ledger:
    """Accumulates a TokenCount (see the module docstring for what each field counts)."""

    def __init__(self) -> None:
        self.generated = self.prefilled = self.thinking = self.answer = 0

    def add(self, c: Completion, thinking: int) -> None:
        """Count one request; ``thinking`` of its generated tokens were thinking, the rest answer."""
        thinking = max(0, min(thinking, c.num_tokens))
        self.generated += c.num_tokens
        self.prefilled += c.prompt_tokens
        self.thinking += thinking
        self.answer += c.num_tokens - thinking

    def add_split(self, tokenizer: Any, c: Completion, open_before: bool) -> None:
        """Count one request, splitting it with the module's thinking/answer rule."""
        self.add(c, split_tokens(tokenizer, c, open_before)[0])

    def count(self, sequential: int) -> TokenCount:
        return TokenCount(
            generated=self.generated,
            prefilled=self.prefilled,
            thinking=self.thinking,
            answer=self.answer,
            sequential=sequential,
        )


def _rfind(seq: Sequence[int], sub: Sequence[int]) -> int:
    m = len(sub)
    if m == 0:
        return -1
    sub = tuple(sub)
    for i in range(len(seq) - m, -1, -1):
        if seq[i] == sub[0] and tuple(seq[i : i + m]) == sub:
            return i
    return -1


def span_open(tokenizer: Any, ids: Sequence[int], open_before: bool = False) -> bool:
    """Whether a thinking span is open after ``ids`` (last ``<think>`` after the last ``</think>``)."""
    start = _rfind(ids, delimiter_ids(tokenizer, THINK_START))
    end = _rfind(ids, delimiter_ids(tokenizer, THINK_END))
    if start < 0 and end < 0:
        return open_before
    return start > end


def split_tokens(tokenizer: Any, c: Completion, open_before: bool) -> tuple[int, int]:
    """(thinking, answer) tokens of one completion (module docstring rule)."""
    if c.think_end is not None:
        return c.think_end, c.num_tokens - c.think_end
    opened = open_before or find_subsequence(c.token_ids, delimiter_ids(tokenizer, THINK_START)) >= 0
    return (c.num_tokens, 0) if opened else (0, c.num_tokens)


def finished_thinking_at(c: Completion) -> int | None:
    """Tokens a completion needed to finish thinking: ``think_end``, or its length when it ended by itself
    (EOS / stop string, for models without think tags), None when it never finished (length, abort)."""
    if c.think_end is not None:
        return c.think_end
    return c.num_tokens if c.finish_reason == "stop" else None


def strip_special_tail(tokenizer: Any, ids: Sequence[int]) -> list[int]:
    """``ids`` without trailing special tokens (the EOS an ended request carries in its token ids)."""
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    out = list(ids)
    while out and out[-1] in special:
        out.pop()
    return out


def thinking_prefix(tokenizer: Any, c: Completion) -> list[int]:
    """The reasoning of a completion as token ids: up to (not including) ``</think>`` when it closed its
    thinking, else all of it without a trailing EOS. The unit fractured sampling cuts and budget forcing caps."""
    if c.think_end is not None:
        return list(c.token_ids[: c.think_end - len(delimiter_ids(tokenizer, THINK_END))])
    return strip_special_tail(tokenizer, c.token_ids)


def answer_cue_ids(tokenizer: Any, open_span: bool) -> list[int]:
    """What forces an answer: ``</think>`` (only when a thinking span is open; models without think tags get
    no delimiter) followed by ``prompts.ANSWER_CUE``."""
    head = list(delimiter_ids(tokenizer, THINK_END)) if open_span else []
    return head + list(delimiter_ids(tokenizer, ANSWER_CUE))


def derive(spec: SampleSpec, **changes: Any) -> SampleSpec:
    """``spec`` with some fields changed (n, max_tokens, temperature, seed, logprobs, logprobs_k, ...)."""
    return replace(spec, **changes)


def offset_seed(spec: SampleSpec, offset: int) -> int | None:
    """A seed ``offset`` past the spec's (None stays None): independent sample streams per phase."""
    return None if spec.seed is None else spec.seed + offset


def render_tasks(tokenizer: Any, problems: Sequence[Problem]) -> list[Task]:
    tasks = []
    for p in problems:
        ids = tuple(render(tokenizer, p.question))
        tasks.append(Task(p, ids, span_open(tokenizer, ids[-32:])))
    return tasks


class Strategy(ABC):
    """A decoding strategy. Subclasses set ``name`` and ``Config`` (a ``StrategyConfig``) and implement
    ``_run`` over rendered tasks; see the module docstring for the accounting contract."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[StrategyConfig]] = NoConfig

    def __init__(self, config: Any = None):
        self.config: StrategyConfig = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise TypeError(
                f"{self.name}: config must be {self.Config.__name__}, got {type(config).__name__}"
            )

    @property
    def live(self) -> bool:
        """Whether the strategy aborts requests in a stream to save wall time (short-m@k live, DeepConf
        online): its wall time means something only when the engine really generates, not when an eval sweep
        replays a recording (``evals.replay.SweepEngine``), so sweeps run such strategies first."""
        return False

    def run(self, engine: Engine, problem: Problem, spec: SampleSpec) -> StrategyResult:
        """Solve one problem."""
        return self.run_batch(engine, [problem], spec)[0]

    def run_batch(
        self, engine: Engine, problems: Sequence[Problem], spec: SampleSpec
    ) -> list[StrategyResult]:
        """Solve several problems, batching their requests into shared engine calls."""
        if not problems:
            return []
        clock = Clock()
        tasks = render_tasks(engine.tokenizer, problems)
        results = self._run(engine, tasks, spec, clock)
        total = clock.now()
        log.debug("%s: %d problems in %.2fs", self.name, len(problems), total)
        return [replace(r, extra={**r.extra, "batch_wall_s": total}) for r in results]

    @abstractmethod
    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        """One StrategyResult per task, in order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def sample_all(
    engine: Engine,
    tasks: Sequence[Task],
    spec: SampleSpec,
    clock: Clock,
    *,
    entropies: bool = False,
    **changes: Any,
) -> tuple[list[list[Completion]], list[float]]:
    """One batched ``generate`` over all tasks' prompts (``spec`` with ``changes``); returns the completions
    per task and, per task, when its last completion finished (seconds on ``clock``)."""
    start = clock.now()
    rows = engine.generate([t.ids for t in tasks], derive(spec, **changes), entropies=entropies)
    return rows, [Clock.ready(start, row) for row in rows]


def parallel_tokens(tokenizer: Any, task: Task, completions: Sequence[Completion]) -> TokenCount:
    """TokenCount of independent samples of one prompt: sequential = the longest."""
    ledger = Ledger()
    for c in completions:
        ledger.add_split(tokenizer, c, task.span_open)
    return ledger.count(max((c.num_tokens for c in completions), default=0))


def generate_capped(
    engine: Engine, prompts: Sequence[Sequence[int]], caps: Sequence[int], spec: SampleSpec
) -> list[list[Completion]]:
    """Like ``engine.generate`` (``spec.n`` samples per prompt) but prompt i's samples stop after ``caps[i]``
    tokens, in one batched stream: a sample reaching its cap is aborted and reported with finish reason
    ``length``, exactly as if it had run with ``max_tokens = caps[i]``. An event may carry several tokens
    (speculative decoding), so a sample can pass its cap within one step: it is cut back to the cap
    (``engines.base.truncate``), as a run with that ``max_tokens`` would have stopped there."""
    if not prompts:
        return []
    n = spec.n
    counts = [0] * (len(prompts) * n)
    with engine.stream(prompts, derive(spec, max_tokens=max(caps))) as stream:
        for ev in stream:
            counts[ev.index] += len(ev.new_token_ids)
            if ev.finished is None and counts[ev.index] >= caps[ev.index // n]:
                stream.abort([ev.index])
    flat = [
        truncate(engine.tokenizer, c, caps[i // n], "length", spec.stop)
        if c.finish_reason == "abort" or c.num_tokens > caps[i // n]
        else c
        for i, c in enumerate(stream.all_completions())
    ]
    return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
