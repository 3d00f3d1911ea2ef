r"""Answer verification: extraction, gold normalisation, and math-verify equivalence with hard timeouts.

``grade(gold, response)`` extracts the response's final answer (``extract_answer``: last ``\boxed{}``, then
"final answer is ...", then ``#### N``, then a trailing number; only text after ``</think>`` counts), normalises
the gold (``normalize_gold``: GSM8K ``#### 1,234``, AMC floats, OlympiadBench lists, Minerva solutions, MATH
LaTeX) and decides equivalence with math-verify (https://github.com/huggingface/Math-Verify), always called
gold-first as ``verify(gold=..., target=...)`` because it is not symmetric. Verification runs in a process pool
(``get_pool()``, see ``pool.py``) with a hard timeout per call, so it works off the main thread (threads, Ray
actors), survives inputs that hang sympy, and never raises on any response string. Statuses: ``ok`` (compared),
``no_answer`` (nothing extracted), ``unparsable`` (no usable gold, an answer over ``MAX_ANSWER_CHARS``, binary
garbage, or nothing math-verify could parse), ``timeout``.

Cheap paths: identical strings, two plain integers and two equal plain decimals are decided in the parent
(``fast_path=False`` turns this off); in the workers a plain-number answer is built as a sympy number instead of
going through math-verify's LaTeX grammar; results are cached per (gold, answer) so several rewards grading the
same batch pay once.

>>> grade("#### 1,234", "<think>...</think> The total is \\boxed{1234}.")
Verdict(correct=True, extracted='1234', status='ok')
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from reasoner.types import Verdict
from reasoner.verify.extract import answer_region, clean_answer, extract_answer, last_boxed
from reasoner.verify.gold import normalize_gold
from reasoner.verify.pool import DEFAULT_TIMEOUT_S, Result, VerifierPool, get_pool, shutdown_pool

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_ANSWER_CHARS",
    "VerifierPool",
    "answer_region",
    "answers_equivalent",
    "clean_answer",
    "equivalent_many",
    "extract_answer",
    "get_pool",
    "grade",
    "grade_many",
    "last_boxed",
    "normalize_gold",
    "shutdown_pool",
]

MAX_ANSWER_CHARS = 2000
"""Answers (or golds) longer than this are ``unparsable`` without a call to math-verify, as are answers with
control characters or undecodable bytes (binary garbage)."""
_INT_RE = re.compile(r"^-?\d{1,40}$")
_DECIMAL_RE = re.compile(r"^-?\d{1,40}(?:\.\d{1,40})?$")
_CACHE_SIZE = 8192


class _ResultCache:
    """A small thread-safe LRU of (kind, a, b) -> Result, so several rewards grading one batch pay once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str, str], Result] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Result | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, str, str], value: Result) -> None:
        if value[0] not in ("ok", "unparsable"):
            return  # a timeout may pass with a longer limit; do not remember it
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


_cache = _ResultCache(_CACHE_SIZE)


def _as_text(value: Any) -> str:
    """Any input as a str that can cross a pipe and be logged (lone surrogates replaced)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates -> U+FFFD
        text = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    return text


def _is_garbage(answer: str) -> bool:
    """Control characters or U+FFFD (undecodable bytes) never occur in a real answer."""
    return any(ch == "\ufffd" or (ch < " " and ch not in "\t\n\r") or "\x7f" <= ch <= "\x9f" for ch in answer)


def _fast_equal(a: str, b: str) -> bool | None:
    """Decide without math-verify when that is safe: identical strings, two plain integers, or two plain
    decimals of equal value (unequal decimals go to math-verify, which compares with a tolerance)."""
    if a == b:
        return True
    if _INT_RE.match(a) and _INT_RE.match(b):
        return int(a) == int(b)
    if _DECIMAL_RE.match(a) and _DECIMAL_RE.match(b) and Fraction(a) == Fraction(b):
        return True
    return None


def _safe_gold(gold: Any, benchmark: str | None) -> str:
    if benchmark is not None:
        normalize_gold("", benchmark)  # unknown benchmark names raise here, before any input is looked at
    try:
        return _as_text(normalize_gold(gold, benchmark))
    except Exception:  # a malformed gold is "unparsable", never an exception
        return ""


def _run_cached(pool: VerifierPool | None, tasks: list[tuple[str, str, str]], timeout: float) -> list[Result]:
    """Results for tasks, from the cache where possible, the rest through the pool in one batch."""
    results: list[Result | None] = [_cache.get(t) for t in tasks]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        fresh = (pool or get_pool()).run([tasks[i] for i in todo], timeout=timeout)
        for i, result in zip(todo, fresh, strict=True):
            _cache.put(tasks[i], result)
            results[i] = result
    return results  # type: ignore[return-value]


def _verdict(answer: str, result: Result) -> Verdict:
    status, value = result
    if status == "ok":
        return Verdict(correct=bool(value), extracted=answer, status="ok")
    return Verdict(correct=False, extracted=answer, status="timeout" if status == "timeout" else "unparsable")


def grade_many(
    golds: Sequence[Any],
    responses: Sequence[Any],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    benchmark: str | None = None,
    fast_path: bool = True,
    pool: VerifierPool | None = None,
) -> list[Verdict]:
    """Grade ``responses[i]`` against ``golds[i]`` for all i, in parallel through the pool.

    ``timeout`` is the hard limit per response (seconds); ``benchmark`` picks the gold format (see
    ``normalize_gold``); ``fast_path=False`` sends even plain integers to math-verify (for benchmarks).
    """
    golds, responses = list(golds), list(responses)
    if len(golds) != len(responses):
        raise ValueError(
            f"grade_many: golds ({len(golds)}) and responses ({len(responses)}) differ in length"
        )
    if not timeout > 0:
        raise ValueError(f"grade_many: timeout must be > 0 seconds, got {timeout!r}")
    verdicts: list[Verdict | None] = [None] * len(golds)
    pending: list[tuple[int, str, str]] = []
    for i, (gold, response) in enumerate(zip(golds, responses, strict=True)):
        answer = extract_answer(_as_text(response))
        gold_text = _safe_gold(gold, benchmark)
        if answer is None:
            verdicts[i] = Verdict(correct=False, extracted=None, status="no_answer")
        elif not gold_text or max(len(answer), len(gold_text)) > MAX_ANSWER_CHARS or _is_garbage(answer):
            verdicts[i] = Verdict(correct=False, extracted=answer, status="unparsable")
        elif fast_path and (same := _fast_equal(gold_text, answer)) is not None:
            verdicts[i] = Verdict(correct=same, extracted=answer, status="ok")
        else:
            pending.append((i, gold_text, answer))
    if pending:
        tasks = [("grade", gold_text, answer) for _, gold_text, answer in pending]
        for (i, _, answer), result in zip(pending, _run_cached(pool, tasks, timeout), strict=True):
            verdicts[i] = _verdict(answer, result)
    return verdicts  # type: ignore[return-value]


def grade(
    gold: Any,
    response: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    benchmark: str | None = None,
    fast_path: bool = True,
    pool: VerifierPool | None = None,
) -> Verdict:
    """Grade one response against its gold answer (see the module docstring). Never raises on the strings."""
    return grade_many(
        [gold], [response], timeout=timeout, benchmark=benchmark, fast_path=fast_path, pool=pool
    )[0]


def _value_side(answer: str) -> str:
    """The value an answer states: the text after its last ``=`` ("34 + 33 = 67" -> "67", "x = 3" -> "3").

    Without this, math-verify reads "34 + 33 = 69" and "34 + 33 = 77" as two false equations and calls them equal.
    Inequalities (``\\le``, ``<``, ...) and answers without ``=`` are unchanged."""
    if "=" not in answer or any(op in answer for op in ("<=", ">=", "!=", "\\le", "\\ge", "\\ne")):
        return answer
    value = answer.rsplit("=", 1)[1].strip()
    return value or answer


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
        ca, cb = _value_side(clean_answer(_as_text(a))), _value_side(clean_answer(_as_text(b)))
        if not ca or not cb or max(len(ca), len(cb)) > MAX_ANSWER_CHARS:
            out[i] = False
        elif (same := _fast_equal(ca, cb)) is not None:
            out[i] = same
        else:
            pending.append((i, ("equiv", *sorted((ca, cb)))))
    if pending:
        results = _run_cached(pool, [task for _, task in pending], timeout)
        for (i, _), (status, value) in zip(pending, results, strict=True):
            out[i] = status == "ok" and bool(value)
    return out  # type: ignore[return-value]


def answers_equivalent(
    a: str | None, b: str | None, *, timeout: float = DEFAULT_TIMEOUT_S, pool: VerifierPool | None = None
) -> bool:
    """Whether two extracted answers are the same value, for grouping votes (majority voting).

    Symmetric: true when math-verify accepts either one as the gold for the other. Identical strings and equal
    plain integers are decided without a round trip; a timeout or an unparsable answer counts as different.
    """
    return equivalent_many([(a, b)], timeout=timeout, pool=pool)[0]
