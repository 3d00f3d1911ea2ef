"""Grading an evaluation's results into ``samples.jsonl`` rows (``evals.rows.Row``, written by ``evals.runner``)
and grading them again (``evals.regrade``): every completion, then each row's final answer, each in one verifier batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from evals.rows import Row, SampleRecord
from reasoner.types import Problem, StrategyResult, Verdict

if TYPE_CHECKING:
    from reasoner.verify.extract import GraderMode

REVOTE = frozenset({"greedy", "sample", "majority"})
"""Strategies whose final answer is a function of their completions' answers alone (their one answer, or a
plain vote). Strategies extract answers with the ``lenient`` policy; graded in another mode (``--grader
strict``, ``reasoner regrade``), these strategies' answers are derived again from the graded completions."""


def grade_rows(
    raw: Iterable[tuple[str, int, Problem, StrategyResult, int, float]],
    seed: int,
    mode: GraderMode = "lenient",
) -> list[Row]:
    """Build the graded rows of results (``mode``: the grader's extraction policy, ``reasoner.verify``).
    Each completion's text is kept in its row, so that a finished run can be re-graded (``reasoner regrade``)
    and audited (``reasoner report --audit``). Rows are built with the strategy's answer, then every
    completion and every final answer is graded (``grade_samples``, ``grade_finals``)."""
    rows = [
        Row(
            problem_id=p.id,
            strategy=label,
            budget=budget,
            seed=seed,
            answer=r.answer,
            gold=p.answer,
            tokens=r.tokens,
            spent=spent,
            wall_s=round(r.wall_s, 4),
            measured_s=round(measured, 4),
            samples=tuple(
                SampleRecord(
                    tokens=c.num_tokens, finish=c.finish_reason, answer=None, correct=False, text=c.text
                )
                for c in r.completions
            ),
            correct=False,
        )
        for label, budget, p, r, spent, measured in raw
    ]
    return grade_finals(grade_samples(rows, mode), mode, rederive=mode != "lenient")


def grade_samples(rows: Sequence[Row], mode: GraderMode) -> list[Row]:
    """``rows`` with every completion graded again in one verifier batch (answer, verdict, status)."""
    from reasoner.verify import grade_many

    samples = [(r, s) for r in rows for s in r.samples]
    for r, s in samples:
        if s.text is None:
            raise ValueError(f"{r.cell} {r.problem_id} seed {r.seed}: a completion without its text")
    verdicts = iter(grade_many([r.gold for r, _ in samples], [s.text or "" for _, s in samples], mode=mode))

    def graded(s: SampleRecord) -> SampleRecord:
        return sample_record(s.tokens, s.finish, s.text or "", next(verdicts))

    return [row.model_copy(update={"samples": tuple(map(graded, row.samples))}) for row in rows]


def derived_answer(row: Row) -> str | None:
    """The final answer of a ``REVOTE`` strategy from its graded completions (greedy, sample: the one
    completion's; majority: the strategy's own vote, ``reasoner.strategies.voting.vote``); others keep theirs."""
    name = row.strategy.partition(":")[0]
    answers = [s.answer for s in row.samples]
    if name in ("greedy", "sample"):
        return answers[0] if answers else None
    if name == "majority":
        from reasoner.strategies.voting import vote

        return vote(answers).answer
    return row.answer


def grade_finals(rows: Sequence[Row], mode: GraderMode, *, rederive: bool) -> list[Row]:
    r"""``rows`` with each final answer graded (as ``\boxed{answer}``) in one batch, after deriving it again
    from the graded completions when ``rederive`` (``derived_answer``); sets answer, correct, status, grader."""
    from reasoner.verify import grade_many

    answers = [derived_answer(r) if rederive else r.answer for r in rows]
    boxed = [None if a is None else "\\boxed{" + a + "}" for a in answers]
    verdicts = grade_many([r.gold for r in rows], boxed, mode=mode)
    return [
        row.model_copy(
            update={
                "answer": answer,
                "correct": bool(v.correct) if answer is not None else False,
                "status": v.status,
                "grader": mode,
            }
        )
        for row, answer, v in zip(rows, answers, verdicts, strict=True)
    ]


def sample_record(tokens: int, finish: str, text: str, verdict: Verdict) -> SampleRecord:
    """One completion of a row: its length, finish reason, text and verdict."""
    return SampleRecord(
        tokens=tokens,
        finish=finish,
        answer=verdict.extracted,
        correct=verdict.correct,
        status=verdict.status,
        text=text,
    )
