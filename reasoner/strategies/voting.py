r"""Answers and votes: extraction, forced answers, plurality over verified-equivalent answers.

Answers are extracted under the evaluator's ``lenient`` policy (``reasoner.verify.extract_many``: a marked
answer, else math-verify's own extraction), so a strategy votes for what the evaluator would grade.

``vote(answers, weights, tie_keys)`` groups answers by the verifier's equivalence (one path for the strategies,
the report's maj@k and the grader: ``reasoner.verify.equivalent_many``, its cheap paths for identical strings
and plain numbers, math-verify for the rest; all pairs of one vote in one parallel batch, cached), sums
each group's weight (1 per answer for majority voting, a confidence for weighted votes) and returns the
heaviest group (answers are first reduced to the value they assert, ``reasoner.verify.asserted_value``:
"34 + 33 = 67" votes for 67); ties go to the group holding the smallest tie key (first appearance by default; short-m@k
passes lengths, so ties go to the shortest). Answers that are None (nothing extracted) do not vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasoner.prompts import ANSWER_CUE
from reasoner.verify.extract import asserted_value


def extract_all(texts: Sequence[str]) -> list[str | None]:
    """The final answers of many responses under the evaluator's ``lenient`` policy, in one verifier round
    trip (``reasoner.verify.extract_many``), so that a strategy's vote and the evaluator's grade agree."""
    from reasoner.verify import extract_many

    return extract_many(list(texts), mode="lenient")


def extract_rows(rows: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """``extract_all`` over rows of texts (one row per problem), in one round trip for all of them."""
    flat = extract_all([text for row in rows for text in row])
    out, at = [], 0
    for row in rows:
        out.append(flat[at : at + len(row)])
        at += len(row)
    return out


def extract(text: str) -> str | None:
    """The final answer in one response (``extract_all`` of one text; prefer ``extract_all`` for many)."""
    return extract_all([text])[0]


def forced_answer(continuation: str) -> str | None:
    r"""The answer in a continuation that followed ``ANSWER_CUE`` (which opens ``\boxed{``): the box is
    closed at its matching brace; a box still open when the continuation ended is closed at the end of its
    first line."""
    if not ANSWER_CUE.endswith("{"):
        return extract(ANSWER_CUE + continuation)
    depth = 1
    for i, ch in enumerate(continuation):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return extract(ANSWER_CUE + continuation[: i + 1])
    line = continuation.split("\n", 1)[0].strip()
    return extract(ANSWER_CUE + line + "}") if line else None


def _equivalence(answers: Sequence[str | None]) -> dict[tuple[str, str], bool]:
    """Every pair of distinct answers -> whether they are the same value, decided by the verifier's own
    equivalence (``reasoner.verify.equivalent_many``: the grader's cheap paths and cache, math-verify for the
    rest) in one parallel batch, so that grouping a vote costs one round trip, not one per pair."""
    distinct = list(dict.fromkeys(a for a in answers if a is not None))
    pairs = [(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    if not pairs:
        return {}
    from reasoner.verify import equivalent_many

    return dict(zip(pairs, equivalent_many(pairs), strict=True))


@dataclass(frozen=True)
class Vote:
    """The outcome of a vote: the winning answer, each group's weight, and who voted for what."""

    answer: str | None
    """Representative (first-seen asserted value) of the winning group; None when nobody answered."""
    votes: dict[str, float]
    """Group representative -> summed weight, in order of first appearance."""
    groups: tuple[tuple[int, ...], ...]
    """Indices (into the answers given) of each group's members, aligned with ``votes``."""

    @property
    def winners(self) -> tuple[int, ...]:
        """Indices of the answers in the winning group."""
        keys = list(self.votes)
        return self.groups[keys.index(self.answer)] if self.answer is not None else ()


def vote(
    answers: Sequence[str | None],
    weights: Sequence[float] | None = None,
    tie_keys: Sequence[float] | None = None,
) -> Vote:
    """Plurality (or weighted plurality) over equivalence groups; see the module docstring."""
    answers = [asserted_value(a) if a is not None else None for a in answers]
    same = _equivalence(answers)
    weights = [1.0] * len(answers) if weights is None else list(weights)
    tie_keys = list(range(len(answers))) if tie_keys is None else list(tie_keys)
    reps: list[str] = []
    members: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g, rep in enumerate(reps):
            if rep == a or same.get((rep, a), same.get((a, rep), False)):
                members[g].append(i)
                break
        else:
            reps.append(a)
            members.append([i])
    if not reps:
        return Vote(None, {}, ())
    totals = [sum(weights[i] for i in m) for m in members]
    best = max(totals)
    tied = [g for g, t in enumerate(totals) if abs(t - best) <= 1e-9 * max(1.0, abs(best))]
    win = min(tied, key=lambda g: (min(tie_keys[i] for i in members[g]), g))
    return Vote(reps[win], dict(zip(reps, totals, strict=True)), tuple(tuple(m) for m in members))
