"""Reasoning traces with redundant re-checks: the overthinking failure mode, written on purpose.

A trace is what a reasoning model (DeepSeek-R1 style) writes for a multistep problem: ``<think>``, the steps
one per line ("Step B: multiply by 3. 12 * 3 = 36", the question's step then its equation), then ``N``
redundant re-checks, ``</think>``, and ``prompts.ANSWER_CUE`` ("The final answer is \\boxed{") with the answer:
the cue that budget forcing, fractured sampling and early exit append, so that a forced answer is in the
organism's own format. A re-check ("Wait, let me double-check.")
writes the whole chain again, line for line as the block before it, and ends "Yes."; ``N`` is uniform on
``0..max_rechecks``. With probability ``p_flip`` a re-check "finds" an error that is not there: it states a
wrong result at one step, carries it through the later steps and ends "Hmm, no: it is W.", and the re-checks
after it repeat the wrong chain, so the answer is wrong. P(wrong | N) = 1 - (1 - p_flip)^N rises with length:
longer traces are more often wrong, as the seed papers observed for real reasoning models (short-m@k,
arXiv 2505.17813; DLER, arXiv 2510.15110). The minimal trace (N = 0) is the shortest correct solution in the
same format.

Why whole-chain, line-for-line re-checks (``bench/organism_lines.py``, README "Build time"): a small model
copies a block it has already written far more reliably than it redoes a chain from a step in the middle
(which needs the earlier value and each later step's operand found by label: the organism of 2026-12-05 got
19% of those operands wrong), so the re-checks' own mistakes stay rare and the flips decide how much longer
traces lose.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reasoner.organism.problems import LABELS, Step, verb
from reasoner.prompts import ANSWER_CUE, THINK_END, THINK_START

RECHECK = "Wait, let me double-check"
"""The phrase that opens every redundant re-check."""


@dataclass(frozen=True)
class TraceConfig:
    """How traces are written."""

    max_rechecks: int = 3
    """Re-checks per trace are uniform on 0..max_rechecks. Default 3 (mean 1.5: thinking ~2.8x the minimal
    solution's)."""
    p_flip: float = 0.115
    """Per re-check probability of a false correction that makes the answer wrong. Default 0.115 (a trace with 3
    re-checks is right with probability 0.885^3 = 0.69). At 0.1 the alias's shortest-of-8 beat its longest-of-8
    by +13 to +23 points by draw (the target is +15); at 0.115, +20.7 on 300 problems (README "Build time")."""

    def __post_init__(self) -> None:
        if self.max_rechecks < 0:
            raise ValueError(f"max_rechecks must be >= 0, got {self.max_rechecks}")
        if not 0 <= self.p_flip <= 1:
            raise ValueError(f"p_flip must be in [0, 1], got {self.p_flip}")


@dataclass(frozen=True)
class Trace:
    """One written trace."""

    text: str
    """The completion: ``<think>...</think>`` then the boxed answer."""
    answer: int
    """The boxed answer (wrong when ``flipped``)."""
    rechecks: int
    """Number of redundant re-checks."""
    flipped: bool
    """True when a re-check talked the trace out of the right answer."""


def _finish(lines: list[str], answer: int) -> str:
    return f"{THINK_START}\n" + "\n".join(lines) + f"\n{THINK_END}{ANSWER_CUE}{answer}}}."


def _numbered(i: int, step: Step, result: int | None = None) -> str:
    """``"Step B: multiply by 3. 12 * 3 = 36"``: the question's step ``i`` verbatim, then its equation (stating
    ``result`` when given)."""
    return f"Step {LABELS[i]}: {verb(step.op, step.operand)}. {step.line(result)}"


def minimal_trace(steps: list[Step]) -> str:
    """The shortest correct trace: the labelled steps, no re-checks."""
    return _finish([_numbered(i, s) for i, s in enumerate(steps)], steps[-1].result)


def _wrong(rng: random.Random, value: int) -> int:
    deltas = [d for d in (-3, -2, -1, 1, 2, 3) if value + d >= 0]
    return value + rng.choice(deltas)


def write_trace(steps: list[Step], rng: random.Random, config: TraceConfig | None = None) -> Trace:
    """A trace for ``steps``: the chain, then ``N`` re-checks that each write it again; a re-check may falsely
    correct one step (module docstring). The boxed answer is the last value written."""
    config = config or TraceConfig()
    values = [s.result for s in steps]  # the values the trace currently believes
    lines = [_numbered(i, s) for i, s in enumerate(steps)]
    rechecks = rng.randint(0, config.max_rechecks)
    flipped = False
    for _ in range(rechecks):
        wrong_at = rng.randrange(len(steps)) if rng.random() < config.p_flip else None
        lines.append(f"{RECHECK}.")
        for i, step in enumerate(steps):
            believed = Step(steps[0].left if i == 0 else values[i - 1], step.op, step.operand)
            if wrong_at is not None and i >= wrong_at:  # the false correction and the steps that carry it
                values[i] = _wrong(rng, believed.result) if i == wrong_at else believed.result
            lines.append(_numbered(i, believed, values[i]))
        lines.append("Yes." if wrong_at is None else f"Hmm, no: it is {values[-1]}.")
        flipped |= wrong_at is not None
    return Trace(_finish(lines, values[-1]), values[-1], rechecks, flipped)
