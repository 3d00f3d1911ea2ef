r"""Gold-answer normalisation: each benchmark's answer format -> one string math-verify can parse.

| benchmark | raw gold | normalised |
|---|---|---|
| GSM8K | solution text ending in ``#### 1,234`` | ``1234`` |
| MATH / MATH-500 | LaTeX (``\frac{1}{2}``, ``\left( 3, \frac{\pi}{2} \right)``) | unchanged (enclosing ``$`` dropped) |
| AIME | ``"204"`` or ``204`` | ``204`` |
| AMC23 | float ``27.0`` | ``27`` (``0.5`` stays ``0.5``) |
| OlympiadBench | list ``["$69$,$84$"]`` | ``69, 84`` |
| Minerva | solution whose last ``\boxed{}`` holds the answer (``4.5e33``) | ``4.5\times10^{33}`` |

``normalize_gold(raw)`` without a benchmark guesses from the shape of ``raw`` and is idempotent, so grading
an already-normalised ``Problem.answer`` again is harmless.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from reasoner.verify.extract import after_hashes, clean_answer, last_boxed

_DOLLAR_SEPARATED_RE = re.compile(r"\$\s*,\s*\$")
_FLOAT_RE = re.compile(r"^-?\d+\.0+$")


def _format_float(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return clean_answer(repr(value))


def _strip_math_delimiters(text: str) -> str:
    s = text.strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$") and not s.endswith("\\$"):
        s = s.strip("$").strip()
    elif s.startswith("\\(") and s.endswith("\\)") or s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2].strip()
    return s


def _from_string(text: str) -> str:
    s = text.strip()
    if "####" in s:
        s = after_hashes(s) or ""
    elif any(cmd in s for cmd in ("\\boxed", "\\fbox", "\\framebox")):
        s = last_boxed(s) or s
    s = _strip_math_delimiters(s)
    if _FLOAT_RE.match(s):
        s = s.split(".", 1)[0]
    return clean_answer(s)


def _from_list(items: list | tuple) -> str:
    parts = [_DOLLAR_SEPARATED_RE.sub(", ", str(item)) for item in items if item is not None]
    return ", ".join(p for p in (_from_string(part) for part in parts) if p)


def _auto(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return _format_float(raw)
    if isinstance(raw, (list, tuple)):
        return _from_list(raw)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return _from_string(str(raw))


def _gsm8k(raw: Any) -> str:
    text = str(raw)
    return clean_answer(after_hashes(text) or text)


def _minerva(raw: Any) -> str:
    text = str(raw)
    return clean_answer(_strip_math_delimiters(last_boxed(text) or text))


def _olympiad(raw: Any) -> str:
    if isinstance(raw, (list, tuple)):
        return _from_list(raw)
    return _from_list([raw])


_NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "gsm8k": _gsm8k,
    "minerva": _minerva,
    "olympiad": _olympiad,
    "math": _auto,
    "aime": _auto,
    "amc": _auto,
}
"""Benchmark name prefix -> normaliser (``minerva_math`` -> minerva, ``math500`` -> math, ``amc23`` -> amc)."""


def normalize_gold(raw: Any, benchmark: str | None = None) -> str:
    """Normalise a benchmark's raw gold answer to a string math-verify can parse (see the module table).

    ``benchmark`` is matched by prefix, case-insensitively (``gsm8k``, ``math500``, ``aime24``, ``amc23``,
    ``minerva_math``, ``olympiadbench``, or a Hub id such as ``openai/gsm8k``); None guesses from the value.
    Unknown benchmark names raise ``ValueError``.
    """
    if benchmark is None:
        return _auto(raw)
    key = benchmark.lower().rsplit("/", 1)[-1].replace("-", "_")
    for prefix, fn in _NORMALIZERS.items():
        if key.startswith(prefix):
            return _auto(fn(raw)) if raw is not None else ""
    raise ValueError(
        f"normalize_gold: unknown benchmark {benchmark!r}; known prefixes: {sorted(_NORMALIZERS)}"
    )
