"""Early exit at confident trial answers (DEER, Yang et al. 2025, https://arxiv.org/abs/2504.15895).

Decode the reasoning; at every transition point (a marker such as "Wait", "Alternatively" or a blank line
between steps, at least ``min_gap`` tokens after the previous probe) pause and probe a trial answer: continue
greedily from prefix + "</think>" + ANSWER_CUE for ``probe_tokens`` tokens. With p_1..p_n the probabilities of
the trial answer's tokens (up to the closing brace),

    conf = mean_i p_i   (or min_i p_i)         exit when conf >= threshold: the trial answer is the answer

otherwise resume the reasoning. A chain that ends by itself (or at max_tokens) answers with its own answer,
else with its last trial answer. For a word marker the probe starts before the word (DEER replaces "Wait" by
the answer cue); for a whitespace marker after it. "</think>" is appended only when a thinking span is open.

Pausing is a real abort of the request at the marker (``engine.stream``); resuming is a new request from
prompt + reasoning so far (prefix-cached on vLLM), all problems of a batch advancing in rounds.
Tokens: thinking = reasoning tokens (all segments; tails after ``</think>`` are answer), answer = probe tokens;
prefilled counts each resumed segment's and each probe's prompt + prefix; sequential = all segments + all
probes (they run one after the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from reasoner.engines.base import truncate
from reasoner.strategies.base import (
    Clock,
    Ledger,
    Strategy,
    Task,
    answer_cue_ids,
    derive,
    offset_seed,
    span_open,
)
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract, forced_answer
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class EarlyExitConfig(StrategyConfig):
    threshold: float = Field(0.9, gt=0, le=1)
    """Exit when the trial answer's confidence (a probability) reaches this, in (0, 1]. Default 0.9."""
    confidence: Literal["mean", "min"] = "mean"
    """Trial-answer confidence: mean or min probability of its tokens. Default mean."""
    probe_tokens: int = Field(12, ge=1)
    """Max tokens of a trial answer after the cue (>= 1). Default 12."""
    markers: str = "Wait|Alternatively|\\n\\n"
    """Transition markers, separated by "|"; backslash escapes (\\n) are read. Default Wait|Alternatively|\\n\\n."""
    min_gap: int = Field(32, ge=1)
    """Minimum reasoning tokens between two probes (>= 1). Default 32."""
    max_probes: int = Field(8, ge=0)
    """Maximum probes per problem (>= 0). Default 8."""

    @field_validator("markers")
    @classmethod
    def _some_marker(cls, markers: str) -> str:
        if not _split_markers(markers):
            raise ValueError(f"markers must be a non-empty |-separated list, got {markers!r}")
        return markers

    @property
    def marker_list(self) -> list[str]:
        return _split_markers(self.markers)


def _split_markers(markers: str) -> list[str]:
    """The ``|``-separated markers with backslash escapes (``\\n``) read."""
    text = markers.encode("latin-1", "backslashreplace").decode("unicode_escape")
    return [m for m in text.split("|") if m]


@dataclass
class _State:
    task: Task
    ids: list[int] = field(default_factory=list)
    since_probe: int = 0
    segments: list[Completion] = field(default_factory=list)
    probes: list[Completion] = field(default_factory=list)
    trials: list[tuple[int, str | None, float]] = field(default_factory=list)
    """(reasoning position, trial answer, confidence) per probe."""
    paused_at: list[int] | None = None
    """Probe prefix when the last segment paused at a marker."""
    answer: str | None = None
    done: bool = False
    ready: float = 0.0


def trial_confidence(tok: Any, c: Completion, how: str) -> tuple[str | None, float]:
    """The trial answer of a probe and its confidence (0 when the box never closed)."""
    depth, n = 1, 0
    for n in range(1, c.num_tokens + 1):
        text = tok.decode(list(c.token_ids[:n]), skip_special_tokens=True)
        depth = 1 + text.count("{") - text.count("}")
        if depth <= 0:
            break
    probs = [math.exp(lp) for lp in c.require_logprobs("early-exit trial confidence")[:n]]
    if depth > 0 or not probs:
        return forced_answer(c.text), 0.0
    return forced_answer(c.text), (min(probs) if how == "min" else sum(probs) / len(probs))


class EarlyExit(Strategy):
    """DEER-style early exit (see module docstring)."""

    name = "early-exit"
    Config = EarlyExitConfig
    config: EarlyExitConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        states = [_State(t) for t in tasks]
        for rnd in range(self.config.max_probes + 1):
            active = [s for s in states if not s.done]
            if not active:
                break
            self._segment(engine, active, spec, clock, rnd)
            self._probe(engine, [s for s in active if s.paused_at is not None], clock)
        return [self._result(engine.tokenizer, s) for s in states]

    def _trigger(self, tok: Any, ids: list[int], new: int) -> int | None:
        """Probe prefix length when the last ``new`` tokens completed a marker, else None."""
        window = ids[-(new + 8) :]
        now = tok.decode(window, skip_special_tokens=True)
        before = tok.decode(window[:-new], skip_special_tokens=True)
        for mk in self.config.marker_list:
            if now.count(mk) > before.count(mk):
                if not mk.strip():
                    return len(ids)
                cut = next((j for j in range(len(ids) - 1, -1, -1) if mk in tok.decode(ids[j:])), len(ids))
                return cut
        return None

    def _segment(
        self, engine: Engine, active: list[_State], spec: SampleSpec, clock: Clock, rnd: int
    ) -> None:
        """Run every active chain until its next marker (paused), its end, or max_tokens."""
        tok = engine.tokenizer
        caps = [spec.max_tokens - len(s.ids) for s in active]
        seen: list[list[int]] = [list(s.ids) for s in active]
        for s in active:
            s.paused_at = None
        start = clock.now()
        seg_spec = derive(spec, n=1, max_tokens=max(caps), seed=offset_seed(spec, rnd))
        ends: dict[int, int] = {}  # chain -> tokens of seen[i] when it was stopped (marker or cap)
        with engine.stream([[*s.task.ids, *s.ids] for s in active], seg_spec) as stream:
            for ev in stream:
                i, s = ev.index, active[ev.index]
                # token by token: a step may carry several tokens (speculative decoding), and plain decoding
                # would have stopped at the first marker or at the cap; a finishing token stops nothing
                for j, t in enumerate(ev.new_token_ids):
                    seen[i].append(t)
                    if i in ends or (ev.finished is not None and j == len(ev.new_token_ids) - 1):
                        continue
                    if self._stops(s, seen[i], caps[i], tok):
                        ends[i] = len(seen[i])
                if i in ends and ev.finished is None and len(seen[i]) - len(ev.new_token_ids) < ends[i]:
                    stream.abort([i])
        done = stream.all_completions()
        for i, s in enumerate(active):
            c, paused = done[i], s.paused_at is not None
            if (
                i in ends
                and c.num_tokens > ends[i] - len(s.ids)
                or (c.finish_reason == "abort" and not paused)
            ):
                c = truncate(tok, c, ends[i] - len(s.ids), "abort" if paused else "length", spec.stop)
            s.segments.append(c)
            s.ids.extend(c.token_ids)
            s.since_probe += c.num_tokens
            s.ready = Clock.ready(start, [c])
            if not paused:
                s.done = True

    def _stops(self, s: _State, seen: list[int], cap: int, tok: Any) -> bool:
        """Whether chain ``s`` stops after the last token of ``seen``: at its cap (``max_tokens``), or at a
        marker when a probe is due (then ``s.paused_at`` is the probe's prefix)."""
        made = len(seen) - len(s.ids)
        if made >= cap:
            return True
        if len(s.probes) < self.config.max_probes and s.since_probe + made >= self.config.min_gap:
            cut = self._trigger(tok, seen, 1)
            if cut is not None:
                s.paused_at = seen[:cut]
                return True
        return False

    def _probe(self, engine: Engine, paused: list[_State], clock: Clock) -> None:
        """Trial answers for the paused chains (greedy, one batched generate); exit the confident ones."""
        if not paused:
            return
        cfg, tok = self.config, engine.tokenizer
        prompts = []
        for s in paused:
            prefix = s.paused_at or []
            prompts.append(
                [*s.task.ids, *prefix, *answer_cue_ids(tok, span_open(tok, prefix, s.task.span_open))]
            )
        start = clock.now()
        spec = SampleSpec(n=1, max_tokens=cfg.probe_tokens, temperature=0.0, logprobs=True)
        for s, (c,) in zip(paused, engine.generate(prompts, spec), strict=True):
            answer, conf = trial_confidence(tok, c, cfg.confidence)
            s.probes.append(c)
            s.trials.append((len(s.paused_at or []), answer, conf))
            s.since_probe = 0
            s.ready = Clock.ready(start, [c])
            if answer is not None and conf >= cfg.threshold:
                s.answer, s.done = answer, True
            elif len(s.probes) >= cfg.max_probes:
                s.paused_at = None  # no more probes: the next segment runs to the end

    def _result(self, tok: Any, s: _State) -> StrategyResult:
        ledger = Ledger()
        for c in s.segments:
            ledger.add(c, c.think_end if c.think_end is not None else c.num_tokens)
        for c in s.probes:
            ledger.add(c, 0)
        exited = s.answer is not None
        answer = s.answer
        if not exited:
            answer = extract(tok.decode(s.ids, skip_special_tokens=True))
            if answer is None and s.trials:
                answer = s.trials[-1][1]
        sequential = sum(c.num_tokens for c in s.segments) + sum(c.num_tokens for c in s.probes)
        return StrategyResult(
            answer=answer,
            completions=(*s.segments, *s.probes),
            votes={answer: 1.0} if answer is not None else {},
            tokens=ledger.count(sequential),
            wall_s=s.ready,
            extra={"exited_early": exited, "trials": list(s.trials), "reasoning_tokens": len(s.ids)},
        )
