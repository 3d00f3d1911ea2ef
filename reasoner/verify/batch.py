"""Parent-side plumbing shared by the grading functions: input sanitising, the exact-equality fast path, and a
result cache in front of the verifier pool (``pool.py``)."""

from __future__ import annotations

import hashlib
import logging
import re
import reprlib
import threading
from collections import OrderedDict
from fractions import Fraction
from typing import Any

from reasoner.types import filled
from reasoner.verify.gold import normalize_gold
from reasoner.verify.pool import Result, VerifierPool, get_pool
from reasoner.verify.worker import Task

MAX_ANSWER_CHARS = 2000
"""Answers (or golds) longer than this are ``unparsable`` without a call to math-verify, as are answers with
control characters or undecodable bytes (binary garbage)."""
_INT_RE = re.compile(r"^-?\d{1,40}$")
_DECIMAL_RE = re.compile(r"^-?\d{1,40}(?:\.\d{1,40})?$")
_CACHE_SIZE = 8192
_KEY_CHARS = 256
"""Task strings longer than this (answer regions, whole responses) are keyed in the cache by a digest."""
_CACHED_STATUSES = ("ok", "no_answer", "unparsable")
FAILED_STATUSES = ("error", "crash")
"""Task results that mean the verifier failed (not the answer): graded as ``error``, logged and counted."""

logger = logging.getLogger(__name__)
_errors = 0
_errors_lock = threading.Lock()


def error_count() -> int:
    """Verifier tasks that failed (an exception in math-verify, a worker dead twice) in this process so far;
    the trainer logs its growth per step (``verify/errors``)."""
    return _errors


def _count_failures(tasks: list[Task], results: list[Result]) -> None:
    global _errors
    failed = [(t, r) for t, r in zip(tasks, results, strict=True) if r[0] in FAILED_STATUSES]
    if not failed:
        return
    with _errors_lock:
        _errors += len(failed)
    (kind, _, _), (status, value) = failed[0]
    logger.warning("verifier: %d of %d tasks failed (first: %s task, %s: %s); graded as status 'error'",
                   len(failed), len(tasks), kind, status, value)  # fmt: skip


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
        if value[0] not in _CACHED_STATUSES:
            return  # a timeout may pass with a longer limit; do not remember it
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


_cache = _ResultCache(_CACHE_SIZE)


def as_text(value: Any) -> str:
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


def is_garbage(answer: str) -> bool:
    """Control characters or U+FFFD (undecodable bytes) never occur in a real answer."""
    return any(ch == "\ufffd" or (ch < " " and ch not in "\t\n\r") or "\x7f" <= ch <= "\x9f" for ch in answer)


def fast_equal(a: str, b: str) -> bool | None:
    """Decide without math-verify when that is safe: identical strings, two plain integers, or two plain
    decimals of equal value (unequal decimals go to math-verify, which compares with a tolerance)."""
    if a == b:
        return True
    if _INT_RE.match(a) and _INT_RE.match(b):
        return int(a) == int(b)
    if _DECIMAL_RE.match(a) and _DECIMAL_RE.match(b) and Fraction(a) == Fraction(b):
        return True
    return None


def safe_gold(gold: Any, benchmark: str | None) -> str:
    """The normalised gold (``normalize_gold``; "" for a missing one, graded ``unparsable``). Unknown benchmarks
    and a gold the normaliser fails on raise ``ValueError`` naming them: a gold is dataset data, not model
    output, and the loaders (``problem_gold``) normalise the same way."""
    if benchmark is not None:
        normalize_gold("", benchmark)  # unknown benchmark names raise here, before any input is looked at
    try:
        return as_text(normalize_gold(gold, benchmark))
    except Exception as err:
        what = f"gold {reprlib.repr(gold)} (benchmark {benchmark!r})"
        raise ValueError(f"{what}: normalisation failed: {type(err).__name__}: {err}") from err


def _key(task: Task) -> tuple[str, str, str]:
    kind, a, b = task
    if len(b) > _KEY_CHARS:
        b = "\x00#" + hashlib.blake2b(b.encode("utf-8"), digest_size=16).hexdigest()
    if len(a) > _KEY_CHARS:
        a = "\x00#" + hashlib.blake2b(a.encode("utf-8"), digest_size=16).hexdigest()
    return (kind, a, b)


def run_cached(pool: VerifierPool | None, tasks: list[Task], timeout: float) -> list[Result]:
    """Results for tasks, from the cache where possible, the rest through the pool in one batch."""
    keys = [_key(t) for t in tasks]
    results: list[Result | None] = [_cache.get(k) for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        fresh = (pool or get_pool()).run([tasks[i] for i in todo], timeout=timeout)
        _count_failures([tasks[i] for i in todo], fresh)
        for i, result in zip(todo, fresh, strict=True):
            _cache.put(keys[i], result)
            results[i] = result
    return filled(results, "verifier results")
