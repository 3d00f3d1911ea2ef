r"""Answers and votes: extraction, forced answers, plurality over verified-equivalent answers.

Answers are extracted under the evaluator's ``lenient`` policy (``reasoner.verify.extract_many``: a marked
answer, else math-verify's own extraction), so a strategy votes for what the evaluator would grade.

``vote(answers, weights, tie_keys)`` groups answers by equivalence (exact string first, then plain numbers
compared exactly, then math-verify through ``reasoner.verify.equivalent_many``: all undecided pairs of one
vote in one parallel batch, cached per pair), sums
each group's weight (1 per answer for majority voting, a confidence for weighted votes) and returns the
heaviest group (answers are first reduced to the value they assert, ``asserted_value``: "34 + 33 = 67" votes
for 67); ties go to the group holding the smallest tie key (first appearance by default; short-m@k
passes lengths, so ties go to the shortest). Answers that are None (nothing extracted) do not vote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from reasoner.prompts import ANSWER_CUE

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_RELATION = re.compile(r"\\(?:neq|ne|leq|geq|le|ge)(?![A-Za-z])|[<>!]=?")
_CACHE: dict[tuple[str, str], bool] = {}
_CACHE_MAX = 100_000


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


def asserted_value(answer: str) -> str:
    """The value an answer asserts: ``"34 + 33 = 67"`` -> ``"67"``, ``"x = 5"`` -> ``"5"`` (the right-hand side
    of the last ``=``, trailing punctuation dropped); inequalities and plain answers are unchanged.
    Votes group these values, so chains that state their arithmetic still vote for their result."""
    if "=" not in answer or _RELATION.search(answer):
        return answer
    rhs = answer.rsplit("=", 1)[1].strip().rstrip(".,;:").strip()
    return rhs or answer


def _plain_number(s: str) -> Decimal | None:
    if not _NUMBER.fullmatch(s):
        return None
    try:
        return Decimal(s)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return None


def _fast(a: str, b: str) -> bool | None:
    """Decide without math-verify: identical strings, or two plain decimal numbers."""
    if a == b:
        return True
    na, nb = _plain_number(a), _plain_number(b)
    return na == nb if na is not None and nb is not None else None


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def prime(answers: Sequence[str | None]) -> None:
    """Decide every pair of distinct answers that needs math-verify in one parallel batch
    (``reasoner.verify.equivalent_many``), so that the grouping below costs one round trip, not one per pair."""
    distinct = list(dict.fromkeys(a for a in answers if a is not None))
    todo = [
        _key(a, b)
        for i, a in enumerate(distinct)
        for b in distinct[i + 1 :]
        if _fast(a, b) is None and _key(a, b) not in _CACHE
    ]
    if not todo:
        return
    from reasoner.verify import equivalent_many

    if len(_CACHE) + len(todo) > _CACHE_MAX:
        _CACHE.clear()
    for key, same in zip(todo, equivalent_many(todo), strict=True):
        _CACHE[key] = bool(same)


def equivalent(a: str, b: str) -> bool:
    """Whether two extracted answers mean the same (symmetric; cached; math-verify when not obvious)."""
    fast = _fast(a, b)
    if fast is not None:
        return fast
    key = _key(a, b)
    if key not in _CACHE:
        prime([a, b])
    return _CACHE[key]


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
    prime(answers)
    weights = [1.0] * len(answers) if weights is None else list(weights)
    tie_keys = list(range(len(answers))) if tie_keys is None else list(tie_keys)
    reps: list[str] = []
    members: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g, rep in enumerate(reps):
            if equivalent(rep, a):
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
