"""Synthetic multi-step arithmetic problems for the overthinking organism (stdlib only, deterministic).

A problem is a start value and 2-5 labelled operations applied in order ("Start with 7. Step A: add 5. Step B:
multiply by 3. Step C: subtract 4. What is the result?"); level L has L + 1 operations. Operands are 2-5 and
every intermediate value stays in [0, 40]: about 370 distinct facts, which a ~1M-parameter model learns in a
few minutes of a 2-core CPU (with operands 2-9 and values up to 99, ~1,800 facts, five minutes of training
left it at ~75% per fact), so the difficulty comes from chaining them and from the trace's re-checks. Problems
are a pure function of (split, seed, level, index), so a larger ``n`` extends a smaller one; ``train`` and
``test`` are disjoint by construction (a hash of the question text decides its side).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from reasoner.types import Problem

LEVELS = (1, 2, 3, 4)
"""Difficulty levels; level L chains L + 1 operations (2-5)."""
MAX_VALUE = 40
"""Every intermediate value stays in [0, MAX_VALUE]."""
OPERANDS = range(2, 6)
"""Operands of the operations."""
STARTS = (2, 20)
"""Start values are uniform on this closed range."""
HELD_OUT_BUCKETS = 10
"""One question in this many (by a hash of its text) belongs to the test split, the others to train."""
LABELS = "ABCDE"
"""Labels of the steps, in order (the most a problem has is ``max(LEVELS) + 1``)."""
_VERBS = {"+": "add {b}", "-": "subtract {b}", "*": "multiply by {b}"}


@dataclass(frozen=True)
class Step:
    """One operation: ``left op operand = result``."""

    left: int
    op: str
    operand: int

    @property
    def result(self) -> int:
        return apply(self.left, self.op, self.operand)

    def line(self, result: int | None = None) -> str:
        """``"12 * 3 = 36"`` (or with a stated, possibly wrong, ``result``)."""
        return f"{self.left} {self.op} {self.operand} = {self.result if result is None else result}"


def apply(left: int, op: str, operand: int) -> int:
    """``left op operand`` for op in + - *."""
    if op == "+":
        return left + operand
    if op == "-":
        return left - operand
    if op == "*":
        return left * operand
    raise ValueError(f"unknown operation {op!r}")


def random_step(rng: random.Random, value: int) -> Step:
    """A random operation on ``value`` whose result stays in [0, ``MAX_VALUE``] (multiplication weighted up)."""
    options = [("+", b) for b in OPERANDS if value + b <= MAX_VALUE]
    options += [("-", b) for b in OPERANDS if value - b >= 0]
    muls = [("*", b) for b in OPERANDS if value * b <= MAX_VALUE and value > 1]
    # Multiplication is rarer among the options; weight it up so chains use all three operations.
    op, b = rng.choice(options + muls * 3 if muls else options)
    return Step(value, op, b)


def chain(start: int, ops: Sequence[tuple[str, int]]) -> list[Step]:
    """The steps of applying ``ops`` to ``start`` left to right."""
    steps, value = [], start
    for op, b in ops:
        steps.append(Step(value, op, b))
        value = steps[-1].result
    return steps


def verb(op: str, operand: int) -> str:
    """``"multiply by 3"``: how the question states an operation."""
    return _VERBS[op].format(b=operand)


def question_text(start: int, steps: Sequence[Step]) -> str:
    """``"Start with 7. Step A: add 5. Step B: multiply by 3. Step C: subtract 4. What is the result?"``.

    The steps are labelled as the trace's lines and re-checks are (``Step B: multiply by 3. 12 * 3 = 36``), so
    a line finds its operation by its label (a lookup a small transformer learns fast) rather than by counting
    the ones before it; letters, not numbers, so that a label is never confused with an operand."""
    body = " ".join(f"Step {LABELS[i]}: {verb(s.op, s.operand)}." for i, s in enumerate(steps))
    return f"Start with {start}. {body} What is the result?"


def held_out(question: str) -> bool:
    """Whether ``question`` belongs to the held-out side: crc32 of its text is 0 mod ``HELD_OUT_BUCKETS``."""
    return zlib.crc32(question.encode()) % HELD_OUT_BUCKETS == 0


def make_problem(split: str, seed: int, level: int, index: int) -> Problem:
    """Problem ``index`` of ``level`` in ``split`` for ``seed`` (a pure function of these four).

    ``test`` problems are drawn until ``held_out(question)``, ``train`` problems until not, so the two
    splits never share a question (1 in ``HELD_OUT_BUCKETS`` questions is held out); other split names
    draw freely.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    rng = random.Random(zlib.crc32(f"multistep/{split}/{seed}/{level}/{index}".encode()))
    while True:
        value = rng.randint(*STARTS)
        start, steps = value, []
        for _ in range(level + 1):
            steps.append(random_step(rng, value))
            value = steps[-1].result
        question = question_text(start, steps)
        if split not in ("train", "test") or held_out(question) == (split == "test"):
            break
    ops = [[s.op, s.operand] for s in steps]
    meta = dict(benchmark="multistep", split=split, level=level, seed=seed, index=index, start=start, ops=ops)
    pid = f"multistep-{split}-s{seed}-L{level}-{index}"
    return Problem(pid, question, str(value), meta)


def steps_of(problem: Problem) -> list[Step]:
    """The solution steps of a multistep problem (from its ``meta``)."""
    return chain(problem.meta["start"], [(op, b) for op, b in problem.meta["ops"]])


def check_levels(n: int, levels: Sequence[int], known: Sequence[int]) -> tuple[int, ...]:
    """Validate a generated benchmark's ``n`` and ``levels`` (distinct values from ``known``); the levels.

    Shared by the generators that cycle problem i through ``levels[i % len(levels)]`` (``multistep``,
    ``evals.arith``); errors name the argument and the value.
    """
    levels = tuple(levels)
    unknown = sorted(set(levels) - set(known))
    if not levels or unknown or len(set(levels)) != len(levels):
        raise ValueError(f"levels must be distinct values from {sorted(known)}, got {list(levels)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return levels


def generate_multistep(
    n: int = 50, seed: int = 0, levels: Sequence[int] = LEVELS, split: str = "test"
) -> list[Problem]:
    """``n`` problems cycling through ``levels`` (problem i has level ``levels[i % len(levels)]``).

    Deterministic in (n, seed, levels, split); ids (``multistep-<split>-s<seed>-L<level>-<index>``) do not
    depend on ``n``. ``train`` and ``test`` never share a question (``make_problem``); within a split a
    question can repeat (level 1 has a few thousand distinct questions).
    """
    levels = check_levels(n, levels, LEVELS)
    return [make_problem(split, seed, levels[i % len(levels)], i // len(levels)) for i in range(n)]
