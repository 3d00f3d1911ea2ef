"""Budget forcing (s1, Muennighoff et al. 2025, https://arxiv.org/abs/2501.19393).

Cap the thinking at B tokens; then force the end of thinking and an answer:

    thinking = decode(prompt, max_tokens = B, stop = "</think>")       (at most B generated tokens)
    answer   = decode(prompt + thinking + "</think>" + ANSWER_CUE, max_tokens = answer_tokens)

Optional extension (s1's "Wait"): when the thinking ends by itself (``</think>``, or EOS for models without
think tags) before ``min_thinking`` tokens, drop the end, append ``wait_text`` and continue, at most
``max_waits`` times, still within B in total. ``</think>`` is appended only when a thinking span is open; a
model without think tags whose chain ends by itself within B (and needs no Wait) keeps its own answer and
gets no forced answer phase. Every forced answer follows the cue (so it is short).

Tokens: thinking = every token generated in the thinking rounds (so thinking <= B always; with or without
think tags), answer = forced answer tokens (plus any tail a round produced after ``</think>`` when the stop
string did not fire). "Wait" and the cue are prefilled, not generated. Sequential = sum of the rounds + answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from reasoner.prompts import THINK_END
from reasoner.strategies.base import (
    Clock,
    Ledger,
    Strategy,
    Task,
    answer_cue_ids,
    derive,
    finished_thinking_at,
    generate_capped,
    offset_seed,
    span_open,
    thinking_prefix,
)
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract, forced_answer
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class BudgetForcingConfig(StrategyConfig):
    budget: int = Field(512, ge=1)
    """B: maximum thinking tokens per problem, Wait extensions included (>= 1). Default 512."""
    min_thinking: int = Field(0, ge=0)
    """Thinking that ends before this many tokens gets a Wait extension (>= 0; 0 = never). Default 0."""
    max_waits: int = Field(2, ge=0)
    """Maximum Wait extensions per problem (>= 0). Default 2."""
    wait_text: str = "Wait"
    """Text appended in place of the end of thinking to make the model go on. Default "Wait"."""
    answer_tokens: int = Field(16, ge=1)
    """Max tokens of the forced answer after the cue (>= 1). Default 16."""


@dataclass
class _State:
    task: Task
    ids: list[int] = field(default_factory=list)
    """The reasoning so far (generated tokens and inserted Wait tokens)."""
    generated: int = 0
    waits: int = 0
    done: bool = False
    natural: bool = False
    rounds: list[Completion] = field(default_factory=list)
    ready: float = 0.0


class BudgetForcing(Strategy):
    """Budget forcing (see module docstring)."""

    name = "budget-forcing"
    Config = BudgetForcingConfig
    config: BudgetForcingConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg, tok = self.config, engine.tokenizer
        states = [_State(t) for t in tasks]
        stop = tuple(spec.stop) + (THINK_END,)
        for rnd in range(cfg.max_waits + 1):
            active = [s for s in states if not s.done]
            if not active:
                break
            start = clock.now()
            rows = generate_capped(
                engine,
                [[*s.task.ids, *s.ids] for s in active],
                [cfg.budget - s.generated for s in active],
                derive(spec, n=1, stop=stop, seed=offset_seed(spec, rnd)),
            )
            for s, (c,) in zip(active, rows, strict=True):
                self._absorb(tok, s, c, last=rnd == cfg.max_waits)
                s.ready = Clock.ready(start, [c])
        forced = [s for s in states if not s.natural]
        start = clock.now()
        prompts = [[*s.task.ids, *s.ids, *self._cue(tok, s)] for s in forced]
        answers = engine.generate(prompts, derive(spec, n=1, max_tokens=cfg.answer_tokens)) if forced else []
        by_state = {id(s): row[0] for s, row in zip(forced, answers, strict=True)}
        return [self._result(tok, s, by_state.get(id(s)), start) for s in states]

    @staticmethod
    def _cue(tok: Any, s: _State) -> list[int]:
        return answer_cue_ids(tok, span_open(tok, s.ids, s.task.span_open))

    def _absorb(self, tok: Any, s: _State, c: Completion, last: bool) -> None:
        """Fold one thinking round into the state: Wait extension, natural end, or cap reached."""
        cfg = self.config
        s.rounds.append(c)
        s.generated += c.num_tokens
        s.ids.extend(thinking_prefix(tok, c))
        ended = finished_thinking_at(c) is not None
        room = s.generated < cfg.budget
        if ended and not last and room and s.generated < cfg.min_thinking and s.waits < cfg.max_waits:
            s.ids.extend(tok.encode(cfg.wait_text, add_special_tokens=False))
            s.waits += 1
            return
        s.done = True
        s.natural = ended and c.think_end is None and not span_open(tok, s.ids, s.task.span_open)

    def _result(self, tok: Any, s: _State, answer_c: Completion | None, start: float) -> StrategyResult:
        ledger = Ledger()
        for c in s.rounds:
            ledger.add(c, c.think_end if c.think_end is not None else c.num_tokens)
        sequential = sum(c.num_tokens for c in s.rounds)
        if answer_c is not None:
            ledger.add(answer_c, 0)
            sequential += answer_c.num_tokens
            answer = forced_answer(answer_c.text)
            wall = Clock.ready(start, [answer_c])
        else:
            answer = extract(tok.decode(s.ids, skip_special_tokens=True))
            wall = s.ready
        completions = (*s.rounds, answer_c) if answer_c is not None else tuple(s.rounds)
        return StrategyResult(
            answer=answer,
            completions=completions,
            votes={answer: 1.0} if answer is not None else {},
            tokens=ledger.count(sequential),
            wall_s=wall,
            extra={"waits": s.waits, "forced": answer_c is not None, "thinking_generated": s.generated},
        )
