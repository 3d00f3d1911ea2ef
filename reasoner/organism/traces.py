"""Reasoning traces with redundant re-checks: the overthinking failure mode, written on purpose.

A trace is what a reasoning model (DeepSeek-R1 style) writes for a multistep problem: ``<think>``, the steps
one per line, then ``N`` redundant re-checks ("Wait, let me double-check 12 * 3. 12 * 3 = 36. Yes."), one
step or the whole chain again, ``</think>``, and the answer in ``\\boxed{}``. ``N`` is uniform on
``0..max_rechecks``. Each re-check, with probability ``p_flip``, "finds" an error that is not there
("Hmm, no: 12 * 3 = 38. Then 38 - 4 = 34.") and carries the wrong value to the end, so the answer is
wrong; later re-checks only revisit steps after the false correction (they never restate a wrong fact as
checked). P(wrong | N) = 1 - (1 - p_flip)^N rises with length: longer traces are more often wrong, as the
seed papers observed for real reasoning models (short-m@k, arXiv 2505.17813; DLER, arXiv 2510.15110).
The minimal trace (N = 0) is the shortest correct solution in the same format.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reasoner.organism.problems import Step
from reasoner.prompts import THINK_END, THINK_START

RECHECK = "Wait, let me double-check"
"""The phrase that opens every redundant re-check."""


@dataclass(frozen=True)
class TraceConfig:
    """How traces are written."""

    max_rechecks: int = 8
    """Re-checks per trace are uniform on 0..max_rechecks. Default 8."""
    p_full: float = 0.35
    """Probability that a re-check redoes the whole chain rather than one step. Default 0.35."""
    p_flip: float = 0.07
    """Per re-check probability of a false correction that makes the answer wrong. Default 0.07."""

    def __post_init__(self) -> None:
        if self.max_rechecks < 0:
            raise ValueError(f"max_rechecks must be >= 0, got {self.max_rechecks}")
        for name in ("p_full", "p_flip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


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
    return f"{THINK_START}\n" + "\n".join(lines) + f"\n{THINK_END}\nThe answer is \\boxed{{{answer}}}."


def minimal_trace(steps: list[Step]) -> str:
    """The shortest correct trace: the steps, no re-checks."""
    return _finish([s.line() for s in steps], steps[-1].result)


def _wrong(rng: random.Random, value: int) -> int:
    deltas = [d for d in (-3, -2, -1, 1, 2, 3) if value + d >= 0]
    return value + rng.choice(deltas)


def write_trace(steps: list[Step], rng: random.Random, config: TraceConfig | None = None) -> Trace:
    """A trace for ``steps`` with a random number of re-checks and possibly a false correction."""
    config = config or TraceConfig()
    lines = [s.line() for s in steps]
    values = [s.result for s in steps]  # the values the trace currently believes
    planned = rng.randint(0, config.max_rechecks)
    flipped_at: int | None = None  # index of the falsely corrected step
    rechecks = 0
    for _ in range(planned):
        first = 0 if flipped_at is None else flipped_at + 1
        if first >= len(steps):  # the last step was falsely corrected: nothing left to re-check
            break
        rechecks += 1
        full = flipped_at is None and rng.random() < config.p_full
        if full:
            body = ". ".join(_believed_step(steps, values, i).line() for i in range(len(steps)))
            lines.append(f"{RECHECK} everything. {body}. Yes.")
            continue
        i = rng.randint(first, len(steps) - 1)
        step = _believed_step(steps, values, i)
        if flipped_at is None and rng.random() < config.p_flip:
            values[i] = _wrong(rng, step.result)
            tail = _carry(steps, values, i)
            lines.append(
                f"{RECHECK} {step.left} {step.op} {step.operand}. Hmm, no: {step.line(values[i])}.{tail}"
            )
            flipped_at = i
        else:
            lines.append(f"{RECHECK} {step.left} {step.op} {step.operand}. {step.line()}. Yes.")
    return Trace(_finish(lines, values[-1]), values[-1], rechecks, flipped_at is not None)


def _believed_step(steps: list[Step], values: list[int], i: int) -> Step:
    """Step ``i`` as the trace currently sees it (its left operand is the believed previous value)."""
    left = steps[0].left if i == 0 else values[i - 1]
    return Step(left, steps[i].op, steps[i].operand)


def _carry(steps: list[Step], values: list[int], i: int) -> str:
    """Redo the steps after ``i`` from the (wrong) value of step ``i``; updates ``values`` in place."""
    parts = []
    for j in range(i + 1, len(steps)):
        step = _believed_step(steps, values, j)
        values[j] = step.result
        parts.append(f" Then {step.line()}.")
    return "".join(parts)
