r"""Grading and extraction in batches, under the grader's two extraction policies (``GRADER_MODES``).

``grade_many`` / ``extract_many`` take each response's explicitly marked final answer (``marked_answer``: last
``\boxed{}``, then "final answer is ...", then ``#### N``, after the last ``</think>``). Without one, the
``lenient`` mode (the evaluation default) hands the answer region to math-verify's own LaTeX + expression
extraction (``math_verify.parse(region)``, https://github.com/huggingface/Math-Verify) in the pool's workers,
under the same hard timeout, and so does an unboxed marked answer with no digit and no math (a bare letter or word,
which math-verify does not read: the lenient grade agrees with math-verify / lighteval there); the ``strict``
mode (the reward default) keeps marked letters and words and reports ``no_answer`` for the rest. For answers found
by math-verify, ``Verdict.extracted`` is its string form (``parse(region)[1]``, e.g. ``\frac{1}{3}``).
``mathverify_many`` is plain math-verify on the whole response, for audits of the grader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeGuard

from reasoner.types import Verdict, VerdictStatus, filled
from reasoner.verify.batch import (
    FAILED_STATUSES,
    MAX_ANSWER_CHARS,
    as_text,
    fast_equal,
    is_garbage,
    run_cached,
    safe_gold,
)
from reasoner.verify.extract import (
    GraderMode,
    answer_region,
    check_mode,
    last_boxed,
    marked_answer,
    unglue_digits,
)
from reasoner.verify.pool import DEFAULT_TIMEOUT_S, Result, VerifierPool

_MAY_HOLD_MATH = re.compile(r"[\d$\\\[]")
r"""Every extraction pattern of math-verify needs a digit, ``$``, ``\`` or ``[`` (numbers, math delimiters,
``\frac``/``\boxed``, `` [x] ``): a region without one holds nothing it would extract, and skips the pool."""


def _may_hold_math(region: str | None) -> TypeGuard[str]:
    return region is not None and _MAY_HOLD_MATH.search(region) is not None


def _marked(region: str | None, mode: GraderMode) -> str | None:
    """The marked answer of a region under ``mode``. In ``lenient`` mode an unboxed marked answer with no digit
    and no math (a bare letter or word: "Answer: C", "the answer is yes") does not count: math-verify's extraction,
    which lighteval's math tasks use, reads no such answer, and the lenient grade must agree with it, so the
    region goes to that extraction instead. ``strict`` mode (rewards) keeps it: it was marked."""
    if not region:
        return None
    answer = marked_answer(region)
    if mode == "lenient" and answer is not None and not _may_hold_math(answer) and last_boxed(region) is None:
        return None
    return answer


def _verdict(answer: str, result: Result) -> Verdict:
    """The verdict on a marked answer from a ``grade`` task's result."""
    status, value = result
    if status == "ok":
        return Verdict(correct=bool(value), extracted=answer, status="ok")
    return Verdict(correct=False, extracted=answer, status=_failed_status(status))


def _failed_status(status: str) -> VerdictStatus:
    """The verdict status of a task result that is not ``ok``: the verifier's own failures are ``error``."""
    if status in FAILED_STATUSES:
        return "error"
    return "timeout" if status == "timeout" else "unparsable"


def _text_verdict(result: Result) -> Verdict:
    """The verdict from a ``grade_text`` or ``mv_direct`` task's result (see ``pool.Result``)."""
    status, value = result
    correct, extracted = value if isinstance(value, tuple) else (False, None)
    if status == "ok":
        if extracted is not None and (len(extracted) > MAX_ANSWER_CHARS or is_garbage(extracted)):
            return Verdict(correct=False, extracted=extracted, status="unparsable")
        return Verdict(correct=bool(correct), extracted=extracted, status="ok")
    if status == "no_answer":
        return Verdict(correct=False, extracted=None, status="no_answer")
    if status in ("timeout", *FAILED_STATUSES):
        return Verdict(correct=False, extracted=None, status=_failed_status(status))
    return Verdict(correct=False, extracted=extracted, status="unparsable")


def _check_batch(where: str, golds: list, responses: list, timeout: float) -> None:
    if len(golds) != len(responses):
        raise ValueError(f"{where}: golds ({len(golds)}) and responses ({len(responses)}) differ in length")
    if not timeout > 0:
        raise ValueError(f"{where}: timeout must be > 0 seconds, got {timeout!r}")


def _marked_verdict(gold_text: str, answer: str, fast_path: bool) -> Verdict | None:
    """The verdict on a marked answer when the parent can decide it, else None (math-verify decides)."""
    if not gold_text or max(len(answer), len(gold_text)) > MAX_ANSWER_CHARS or is_garbage(answer):
        return Verdict(correct=False, extracted=answer, status="unparsable")
    if fast_path and (same := fast_equal(gold_text, answer)) is not None:
        return Verdict(correct=same, extracted=answer, status="ok")
    return None


def grade_many(
    golds: Sequence[Any],
    responses: Sequence[Any],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    benchmark: str | None = None,
    fast_path: bool = True,
    pool: VerifierPool | None = None,
    mode: GraderMode = "lenient",
) -> list[Verdict]:
    """Grade ``responses[i]`` against ``golds[i]`` for all i, in parallel through the pool.

    ``mode`` is the extraction policy (``lenient``: math-verify's own extraction when no answer is marked;
    ``strict``: marked answers only; see the module docstring). ``timeout`` is the hard limit per response
    (seconds); ``benchmark`` picks the gold format (see ``normalize_gold``); ``fast_path=False`` sends even
    plain integers to math-verify (for benchmarks).
    """
    check_mode(mode, "grade_many")
    golds, responses = list(golds), list(responses)
    _check_batch("grade_many", golds, responses, timeout)
    verdicts: list[Verdict | None] = [None] * len(golds)
    marked: list[tuple[int, str, str]] = []  # (index, gold, marked answer) for "grade" tasks
    texts: list[tuple[int, str, str]] = []  # (index, gold, answer region) for "grade_text" tasks
    for i, (gold, response) in enumerate(zip(golds, responses, strict=True)):
        gold_text = safe_gold(gold, benchmark)
        region = answer_region(as_text(response))
        answer = _marked(region, mode)
        if answer is not None:
            verdicts[i] = _marked_verdict(gold_text, answer, fast_path)
            if verdicts[i] is None:
                marked.append((i, gold_text, answer))
        elif mode == "lenient" and _may_hold_math(region):
            if gold_text:
                texts.append((i, gold_text, unglue_digits(region)))
            else:
                verdicts[i] = Verdict(correct=False, extracted=None, status="unparsable")
        else:
            verdicts[i] = Verdict(correct=False, extracted=None, status="no_answer")
    tasks = [("grade", g, a) for _, g, a in marked] + [("grade_text", g, r) for _, g, r in texts]
    results = run_cached(pool, tasks, timeout) if tasks else []
    for (i, _, answer), result in zip(marked, results[: len(marked)], strict=True):
        verdicts[i] = _verdict(answer, result)
    for (i, _, _), result in zip(texts, results[len(marked) :], strict=True):
        verdicts[i] = _text_verdict(result)
    return filled(verdicts, "verdicts")


def grade(
    gold: Any,
    response: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    benchmark: str | None = None,
    fast_path: bool = True,
    pool: VerifierPool | None = None,
    mode: GraderMode = "lenient",
) -> Verdict:
    """Grade one response against its gold answer (see ``grade_many``). Never raises on the strings."""
    return grade_many(
        [gold], [response], timeout=timeout, benchmark=benchmark, fast_path=fast_path, pool=pool, mode=mode
    )[0]


def extract_many(
    texts: Sequence[str | None],
    mode: GraderMode = "lenient",
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    pool: VerifierPool | None = None,
) -> list[str | None]:
    r"""The final answer of each response under ``mode``, for callers without golds (votes, ``decode``).

    Marked answers are found in the parent; in ``lenient`` mode the rest go to math-verify's own extraction
    in one pool batch (its string form, e.g. ``\frac{1}{3}``; None when it finds nothing or times out).
    ``strict`` mode never uses the pool: it is ``extract_answer`` on each text. Non-strings give None.
    """
    check_mode(mode, "extract_many")
    if not timeout > 0:
        raise ValueError(f"extract_many: timeout must be > 0 seconds, got {timeout!r}")
    out: list[str | None] = []
    pending: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        region = answer_region(as_text(text)) if isinstance(text, str) else None
        answer = _marked(region, mode)
        out.append(answer)
        if answer is None and mode == "lenient" and _may_hold_math(region):
            pending.append((i, region))
    if pending:
        tasks = [("extract", unglue_digits(region), "") for _, region in pending]
        results = run_cached(pool, tasks, timeout)
        for (i, _), (status, value) in zip(pending, results, strict=True):
            out[i] = value if status == "ok" and isinstance(value, str) else None
    return out


def mathverify_many(
    golds: Sequence[Any],
    responses: Sequence[Any],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    benchmark: str | None = None,
    pool: VerifierPool | None = None,
) -> list[Verdict]:
    r"""Plain math-verify on whole responses, for auditing the grader (``reasoner report --audit``).

    Per pair: ``verify(gold=parse("\boxed{" + gold + "}"), target=parse(response))`` with math-verify's default
    extraction configs on the *whole* response (thinking included, no answer markers preferred), run in the
    pool's workers under the same hard ``timeout``. The gold is normalised first (``normalize_gold``, as for
    ``grade``). Statuses and ``extracted`` (math-verify's string form) are as for ``grade``.
    """
    golds, responses = list(golds), list(responses)
    _check_batch("mathverify_many", golds, responses, timeout)
    verdicts: list[Verdict | None] = [None] * len(golds)
    pending: list[tuple[int, str, str]] = []
    for i, (gold, response) in enumerate(zip(golds, responses, strict=True)):
        gold_text, text = safe_gold(gold, benchmark), as_text(response)
        if not gold_text:
            verdicts[i] = Verdict(correct=False, extracted=None, status="unparsable")
        elif not _may_hold_math(text):
            verdicts[i] = Verdict(correct=False, extracted=None, status="no_answer")
        else:
            pending.append((i, gold_text, text))
    if pending:
        results = run_cached(pool, [("mv_direct", g, t) for _, g, t in pending], timeout)
        for (i, _, _), result in zip(pending, results, strict=True):
            verdicts[i] = _text_verdict(result)
    return filled(verdicts, "verdicts")
