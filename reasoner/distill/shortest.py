"""Shortest-correct distillation: sample N answers per problem, keep the shortest verified-correct one.

The cheapest way to a short chain-of-thought training set (rejection sampling with a length preference, as in
the "shortest correct" SFT baselines of the concise-reasoning literature, e.g. Munkhbat et al. 2025, arXiv
2502.20122): for problem p with samples y_1..y_N, lengths L_j in tokens and correctness c_j (``reasoner.verify``
against the gold answer),

    keep(p) = argmin_{j : c_j and y_j finished} L_j      (ties: the lowest sample index)

and problems without a correct, finished sample are skipped (counted). Truncated samples (finish reason
``length``) are never kept: training on them would teach the model not to stop. Lengths are model tokens.

``select`` picks another correct, finished sample, for the baselines a shortest-correct set is judged
against (SFT on random- and longest-correct samples of the same problems): ``longest`` (argmax L_j, ties: the
lowest index) or ``random`` (uniform among them, seeded per problem by ``seed`` and the problem id, so a resumed
run picks the same). ``shortest`` is the default.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from reasoner.distill.data import RecordLog, sample_and_record, sft_row
from reasoner.prompts import ANSWER_INSTRUCTION
from reasoner.types import Problem, SampleSpec

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger(__name__)

__all__ = [
    "SELECTS",
    "correct_index",
    "distill_shortest",
    "select_record",
    "shortest_correct_index",
    "shortest_rows",
    "shortest_stats",
]

Select = Literal["shortest", "longest", "random"]
SELECTS: tuple[Select, ...] = ("shortest", "longest", "random")
"""Which correct, finished sample a problem keeps (module docstring)."""


def correct_index(
    lengths: Sequence[int],
    correct: Sequence[bool],
    finished: Sequence[bool] | None = None,
    select: Select = "shortest",
    rng: random.Random | None = None,
) -> int | None:
    """Index of the ``select`` sample among those correct (and finished, when given): the shortest or longest
    (ties -> lowest index), or a uniform ``rng`` choice (``random``: ``rng`` required); None when there is none."""
    if len(lengths) != len(correct) or (finished is not None and len(finished) != len(lengths)):
        raise ValueError("lengths, correct and finished must have the same length")
    if select not in SELECTS:
        raise ValueError(f"select must be one of {', '.join(SELECTS)}, got {select!r}")
    if select == "random" and rng is None:
        raise ValueError("select='random' needs an rng")
    done = finished if finished is not None else [True] * len(lengths)
    candidates = [j for j in range(len(lengths)) if correct[j] and done[j]]
    if not candidates:
        return None
    if select == "random":
        assert rng is not None  # checked above
        return rng.choice(candidates)
    sign = 1 if select == "shortest" else -1
    return min(candidates, key=lambda j: (sign * lengths[j], j))


def shortest_correct_index(
    lengths: Sequence[int], correct: Sequence[bool], finished: Sequence[bool] | None = None
) -> int | None:
    """Index of the shortest sample that is correct (and finished, when given); ties -> lowest index."""
    return correct_index(lengths, correct, finished)


def select_record(
    problem: Problem,
    completions: Sequence[Any],
    verdicts: Sequence[Any],
    select: Select = "shortest",
    seed: int = 0,
) -> dict[str, Any]:
    """One problem's record: the ``select`` correct finished completion (``kept``, its text and tokens) and every
    sample's tokens, correctness and finish (``random``: seeded by ``seed`` and the problem id)."""
    lengths = [c.num_tokens for c in completions]
    correct = [bool(v.correct) for v in verdicts]
    finished = [c.finish_reason == "stop" for c in completions]
    rng = random.Random(f"{seed}/{problem.id}") if select == "random" else None
    best = correct_index(lengths, correct, finished, select, rng)
    return {
        "id": problem.id,
        "question": problem.question,
        "answer": problem.answer,
        "kept": best is not None,
        "completion": None if best is None else completions[best].text,
        "num_tokens": None if best is None else lengths[best],
        "sample_tokens": lengths,
        "sample_correct": correct,
        "sample_finished": finished,
    }


def distill_shortest(
    engine: Engine | None,
    problems: Sequence[Problem],
    spec: SampleSpec,
    records: RecordLog,
    *,
    instruction: str | None = ANSWER_INSTRUCTION,
    system: str | None = None,
    batch_size: int = 8,
    on_done: Callable[[int], None] | None = None,
    select: Select = "shortest",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run shortest-correct selection (or ``select``'s, module docstring) over ``problems`` not yet in
    ``records``; return all records.

    ``engine`` is a ``reasoner.engines`` engine (None allowed when every problem is already in ``records``); ``spec.n`` samples per problem; ``batch_size`` problems per
    generate call (each batch is appended to ``records`` when graded, so an interrupted run resumes).
    ``on_done(k)`` is called after each batch with the number of problems it finished (progress bars).
    """

    def make(batch, groups, verdicts):
        return [
            select_record(p, g, list(v), select, seed)
            for p, g, v in zip(batch, groups, verdicts, strict=True)
        ]

    return sample_and_record("shortest-correct", engine, problems, spec, records, make, instruction=instruction,
                             system=system, batch_size=batch_size, on_done=on_done)  # fmt: skip


def shortest_rows(
    records: Sequence[Mapping[str, Any]],
    *,
    instruction: str | None = ANSWER_INSTRUCTION,
    system: str | None = None,
) -> list[dict[str, Any]]:
    """SFT rows (prompt-completion) for the problems that kept a sample."""
    rows = []
    for r in records:
        if r["kept"]:
            row = sft_row(r["question"], r["completion"], instruction=instruction, system=system)
            rows.append(row | {"id": r["id"], "question": r["question"], "answer": r["answer"],
                               "num_tokens": r["num_tokens"]})  # fmt: skip
    return rows


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def shortest_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts and mean lengths (tokens): all samples, correct samples, kept (shortest correct) samples."""
    lengths = [n for r in records for n in r["sample_tokens"]]
    correct = [
        n for r in records for n, ok in zip(r["sample_tokens"], r["sample_correct"], strict=True) if ok
    ]
    kept = [r["num_tokens"] for r in records if r["kept"]]
    samples = len(lengths)
    return {
        "method": "shortest-correct",
        "problems": len(records),
        "samples": samples,
        "correct_samples": len(correct),
        "sample_accuracy": round(len(correct) / samples, 4) if samples else None,
        "truncated_samples": sum(not f for r in records for f in r["sample_finished"]),
        "kept": len(kept),
        "skipped_no_correct": len(records) - len(kept),
        "mean_tokens_all": _mean(lengths),
        "mean_tokens_correct": _mean(correct),
        "mean_tokens_kept": _mean(kept),
    }
