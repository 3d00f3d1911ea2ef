r"""Answer verification: extraction, gold normalisation, and math-verify equivalence with hard timeouts.

``grade(gold, response, mode=...)`` finds the response's final answer under one of two extraction policies
(``GRADER_MODES``; only text after the last ``</think>`` counts):

- ``lenient`` (the evaluation default): the last ``\boxed{}``, then "final answer is / answer is / Answer:",
  then ``#### N``; without any of them, math-verify's own LaTeX + expression extraction of the answer region
  (``math_verify.parse(region)``, default configs), run in the worker pool under the hard timeout;
- ``strict`` (the reward default): only those explicitly marked answers; otherwise ``no_answer``.

Never a bare "last number in the text": it misreads ``\frac13`` as 13 and scores digits inside words
("AZYUK2A" for 2). ``extract_answer(text)`` is the strict extraction, pure (no pool); ``extract_many(texts,
mode)`` extracts in batches without golds (votes); ``mathverify_many`` is plain math-verify on whole responses,
for audits. The gold is normalised (``normalize_gold``: GSM8K ``#### 1,234``, AMC floats, OlympiadBench lists,
Minerva solutions, MATH LaTeX) and equivalence is decided by math-verify
(https://github.com/huggingface/Math-Verify), always called gold-first as ``verify(gold=..., target=...)``
because it is not symmetric. Verification runs in a process pool (``get_pool()``, see ``pool.py``; math-verify
is imported only in its workers) with a hard timeout per call, so it works off the main thread (threads, Ray
actors), survives inputs that hang sympy, and never raises on any response string. Statuses: ``ok``
(compared), ``no_answer`` (nothing extracted), ``unparsable`` (no usable gold, an answer over
``MAX_ANSWER_CHARS``, binary garbage, or nothing math-verify could parse), ``timeout``, ``error`` (the verifier
itself failed: an exception inside math-verify or a worker that died twice; logged and counted,
``error_count()``). A gold the normaliser fails on is a ``ValueError`` naming it.

Cheap paths: identical strings, two plain integers and two equal plain decimals are decided in the parent
(``fast_path=False`` turns this off); in the workers a plain-number answer is built as a sympy number instead of
going through math-verify's LaTeX grammar; results are cached per (gold, answer) so several rewards grading the
same batch pay once.

>>> grade("#### 1,234", "<think>...</think> The total is \\boxed{1234}.")
Verdict(correct=True, extracted='1234', status='ok')
"""

from __future__ import annotations

from collections.abc import Iterable

from reasoner.types import filled
from reasoner.verify.batch import MAX_ANSWER_CHARS, as_text, error_count, fast_equal, run_cached
from reasoner.verify.extract import (
    GRADER_MODES,
    GraderMode,
    answer_region,
    asserted_value,
    check_mode,
    clean_answer,
    extract_answer,
    last_boxed,
    marked_answer,
)
from reasoner.verify.gold import normalize_gold
from reasoner.verify.grading import extract_many, grade, grade_many, mathverify_many
from reasoner.verify.pool import DEFAULT_TIMEOUT_S, VerifierPool, get_pool, shutdown_pool

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "GRADER_MODES",
    "MAX_ANSWER_CHARS",
    "GraderMode",
    "VerifierPool",
    "answer_region",
    "answers_equivalent",
    "asserted_value",
    "check_mode",
    "clean_answer",
    "equivalent_many",
    "error_count",
    "extract_answer",
    "extract_many",
    "get_pool",
    "grade",
    "grade_many",
    "last_boxed",
    "marked_answer",
    "mathverify_many",
    "normalize_gold",
    "shutdown_pool",
]


def equivalent_many(
    pairs: Iterable[tuple[str | None, str | None]],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    pool: VerifierPool | None = None,
) -> list[bool]:
    """``answers_equivalent`` over many pairs in one parallel batch."""
    pairs = list(pairs)
    out: list[bool | None] = [None] * len(pairs)
    pending: list[tuple[int, tuple[str, str, str]]] = []
    for i, (a, b) in enumerate(pairs):
        if a is None or b is None:
            out[i] = False
            continue
        ca, cb = asserted_value(clean_answer(as_text(a))), asserted_value(clean_answer(as_text(b)))
        if not ca or not cb or max(len(ca), len(cb)) > MAX_ANSWER_CHARS:
            out[i] = False
        elif (same := fast_equal(ca, cb)) is not None:
            out[i] = same
        else:
            lo, hi = sorted((ca, cb))
            pending.append((i, ("equiv", lo, hi)))
    if pending:
        results = run_cached(pool, [task for _, task in pending], timeout)
        for (i, _), (status, value) in zip(pending, results, strict=True):
            out[i] = status == "ok" and bool(value)
    return filled(out, "equivalence results")


def answers_equivalent(
    a: str | None, b: str | None, *, timeout: float = DEFAULT_TIMEOUT_S, pool: VerifierPool | None = None
) -> bool:
    """Whether two extracted answers are the same value, for grouping votes (majority voting).

    Symmetric: true when math-verify accepts either one as the gold for the other. Identical strings and equal
    plain integers are decided without a round trip; a timeout or an unparsable answer counts as different.
    """
    return equivalent_many([(a, b)], timeout=timeout, pool=pool)[0]
