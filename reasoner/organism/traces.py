"""Reasoning traces with redundant re-checks: the overthinking failure mode, written on purpose.

A trace is what a reasoning model (DeepSeek-R1 style) writes for a multistep problem: ``<think>``, the steps
one per line ("Second: multiply by 3. 12 * 3 = 36", the question's step then its equation), then ``N`` redundant
re-checks ("Wait, let me double-check the second step: 12 * 3 = 36. Yes."), one step or the whole chain again,
``</think>``, and the answer in ``\\boxed{}``. ``N`` is uniform on ``0..max_rechecks``. Each re-check, with
probability ``p_flip``, "finds" an error that is not there ("Hmm, no: 12 * 3 = 38. Then the third step: 38 - 4 =
34.") and carries the wrong value to the end, so the answer is
wrong; later re-checks only revisit steps after the false correction (they never restate a wrong fact as
checked). P(wrong | N) = 1 - (1 - p_flip)^N rises with length: longer traces are more often wrong, as the
seed papers observed for real reasoning models (short-m@k, arXiv 2505.17813; DLER, arXiv 2510.15110).
The minimal trace (N = 0) is the shortest correct solution in the same format.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reasoner.organism.problems import LABELS, Step, verb
from reasoner.prompts import THINK_END, THINK_START

RECHECK = "Wait, let me double-check"
"""The phrase that opens every redundant re-check."""


@dataclass(frozen=True)
class TraceConfig:
    """How traces are written."""

    max_rechecks: int = 6
    """Re-checks per trace are uniform on 0..max_rechecks. Default 6."""
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


def _numbered(i: int, step: Step) -> str:
    """``"Step B: multiply by 3. 12 * 3 = 36"``: the question's step ``i`` verbatim, then its equation."""
    return f"Step {LABELS[i]}: {verb(step.op, step.operand)}. {step.line()}"


def minimal_trace(steps: list[Step]) -> str:
    """The shortest correct trace: the labelled steps, no re-checks."""
    return _finish([_numbered(i, s) for i, s in enumerate(steps)], steps[-1].result)


def _wrong(rng: random.Random, value: int) -> int:
    deltas = [d for d in (-3, -2, -1, 1, 2, 3) if value + d >= 0]
    return value + rng.choice(deltas)


def write_trace(steps: list[Step], rng: random.Random, config: TraceConfig | None = None) -> Trace:
    """A trace for ``steps`` with a random number of re-checks and possibly a false correction.

    A re-check starts at a step (the first with probability ``p_full``, else uniform among those it may
    revisit) and redoes the chain from there to the end, so its last equation states the value the trace now
    believes; the boxed answer repeats it."""
    config = config or TraceConfig()
    lines = [_numbered(i, s) for i, s in enumerate(steps)]
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
        i = first if full else rng.randint(first, len(steps) - 1)
        if flipped_at is None and rng.random() < config.p_flip:
            values[i] = _wrong(rng, _believed_step(steps, values, i).result)
            flipped_at = i
            lines.append(f"{RECHECK} step {LABELS[i]}. Hmm, no: {_redo(steps, values, i, values[i])}.")
        else:
            lines.append(f"{RECHECK} {_redo(steps, values, i)}. Yes.")
    return Trace(_finish(lines, values[-1]), values[-1], rechecks, flipped_at is not None)


def _believed_step(steps: list[Step], values: list[int], i: int) -> Step:
    """Step ``i`` as the trace currently sees it (its left operand is the believed previous value)."""
    left = steps[0].left if i == 0 else values[i - 1]
    return Step(left, steps[i].op, steps[i].operand)


def _redo(steps: list[Step], values: list[int], i: int, wrong: int | None = None) -> str:
    """``"step B: 13 - 5 = 8, step C: 8 * 2 = 16"``: steps ``i``.. as the trace believes them (step ``i``
    stating ``wrong`` when given, the later ones carrying it: ``values`` is updated in place)."""
    parts = []
    for j in range(i, len(steps)):
        step = _believed_step(steps, values, j)
        result = wrong if j == i and wrong is not None else step.result
        values[j] = result
        parts.append(
            f"step {LABELS[j]}: {step.line(result)}" if j > i or wrong is None else step.line(result)
        )
    return ", ".join(parts)
