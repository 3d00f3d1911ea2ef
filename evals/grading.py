"""Grading an evaluation's results into ``samples.jsonl`` rows (``evals.runner``) and grading them again
(``evals.regrade``): every completion, then each row's final answer, each in one verifier batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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
) -> list[dict]:
    """Build the JSONL rows of graded results (``mode``: the grader's extraction policy, ``reasoner.verify``).
    Each completion's text is kept in its row, so that a finished run can be re-graded (``reasoner regrade``)
    and audited (``reasoner report --audit``)."""
    rows = []
    for label, budget, p, r, spent, measured in raw:
        rows.append(
            {
                "problem_id": p.id,
                "strategy": label,
                "budget": budget,
                "seed": seed,
                "answer": r.answer,
                "gold": p.answer,
                "tokens": dataclasses.asdict(r.tokens),
                "spent": spent,
                "wall_s": round(r.wall_s, 4),
                "measured_s": round(measured, 4),
                "samples": [
                    {"tokens": c.num_tokens, "finish": c.finish_reason, "text": c.text} for c in r.completions
                ],
            }
        )
    grade_samples(rows, mode)
    grade_finals(rows, mode, rederive=mode != "lenient")
    return rows


def grade_samples(rows: list[dict], mode: GraderMode) -> None:
    """Grade every completion of ``rows`` in one verifier batch; each sample gets answer, verdict, status."""
    from reasoner.verify import grade_many

    samples = [(r, i) for r in rows for i in range(len(r["samples"]))]
    golds = [r["gold"] for r, _ in samples]
    verdicts = grade_many(golds, [r["samples"][i]["text"] for r, i in samples], mode=mode)
    for (row, i), v in zip(samples, verdicts, strict=True):
        s = row["samples"][i]
        row["samples"][i] = sample_record(s["tokens"], s["finish"], s["text"], v)


def derived_answer(row: dict) -> str | None:
    """The final answer of a ``REVOTE`` strategy from its graded completions (greedy, sample: the one
    completion's; majority: the strategy's own vote, ``reasoner.strategies.voting.vote``); others keep theirs."""
    name = row["strategy"].partition(":")[0]
    answers = [s["answer"] for s in row["samples"]]
    if name in ("greedy", "sample"):
        return answers[0] if answers else None
    if name == "majority":
        from reasoner.strategies.voting import vote

        return vote(answers).answer
    return row["answer"]


def grade_finals(rows: list[dict], mode: GraderMode, *, rederive: bool) -> None:
    r"""Grade each row's final answer (as ``\boxed{answer}``) in one batch, after deriving it again from the
    graded completions when ``rederive`` (``derived_answer``); sets answer, correct, status, grader."""
    from reasoner.verify import grade_many

    answers = [derived_answer(r) if rederive else r["answer"] for r in rows]
    boxed = [None if a is None else "\\boxed{" + a + "}" for a in answers]
    for row, answer, v in zip(
        rows, answers, grade_many([r["gold"] for r in rows], boxed, mode=mode), strict=True
    ):
        row.update(answer=answer, correct=bool(v.correct) if answer is not None else False, status=v.status)
        row["grader"] = mode


def sample_record(tokens: int, finish: str, text: str, verdict: Verdict) -> dict[str, Any]:
    """One completion of a row: its length, finish reason, text and verdict."""
    return {
        "tokens": tokens,
        "finish": finish,
        "answer": verdict.extracted,
        "correct": verdict.correct,
        "status": verdict.status,
        "text": text,
    }
