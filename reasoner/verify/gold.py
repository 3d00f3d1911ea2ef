r"""Gold-answer normalisation: each benchmark's answer format -> one string math-verify can parse.

| benchmark | raw gold | normalised |
|---|---|---|
| GSM8K | solution text ending in ``#### 1,234`` | ``1234`` |
| MATH / MATH-500 | LaTeX (``\frac{1}{2}``, ``\left( 3, \frac{\pi}{2} \right)``) | unchanged (enclosing ``$`` dropped) |
| AIME | ``"204"`` or ``204`` | ``204`` |
| AMC23 | float ``27.0`` | ``27`` (``0.5`` stays ``0.5``) |
| OlympiadBench | list ``["$69$,$84$"]`` | ``69, 84`` |
| Minerva | solution whose last ``\boxed{}`` holds the answer (``4.5e33``) | ``4.5\times10^{33}`` |

Everywhere: plain decimal numbers are canonical (``025`` -> ``25``, ``1.50`` -> ``1.5``, floats in plain
decimal notation, LaTeX thousands ``10,\!080`` -> ``10080``); stray ``$`` (unbalanced, or mid-text as in
``a+$ $b``) are dropped, while an escaped ``\$`` is currency; a number times one letter stays (``3 n``, not 3
and a unit word). ``normalize_gold(raw)`` without a benchmark guesses from the shape of ``raw`` and
is idempotent, so grading an already-normalised ``Problem.answer`` again is harmless.

``problem_gold(raw, benchmark)`` is the same normalisation for dataset loaders (``evals.benchmarks``): None
when a row has no usable gold, and a standalone math-verify input otherwise (plain numbers bare, anything else
in ``$...$``: ``math_verify.parse("3\sqrt{13}")`` reads 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from reasoner.verify.extract import after_hashes, clean_answer, last_boxed

_DOLLAR_SEPARATED_RE = re.compile(r"\$\s*,\s*\$")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")  # a math delimiter, not an escaped \$ (currency)
_PLAIN_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_LATEX_THOUSANDS_RE = re.compile(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))")  # 11,\! 111,\!100 -> 11111100
_NUMBER_TIMES_VARIABLE_RE = re.compile(r"-?\d+(?:\.\d+)?\s+[A-Za-z]")  # "3 n" is 3n, not 3 and a unit


def _canonical_number(text: str) -> str:
    """A plain decimal number in canonical form (``025`` -> ``25``, ``27.0`` -> ``27``, ``+1.50`` -> ``1.5``);
    any other text unchanged."""
    if not _PLAIN_NUMBER_RE.fullmatch(text):
        return text
    value = Decimal(text)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value, "f").rstrip("0")  # exact: Decimal.normalize() would round to 28 digits


def _format_float(value: float) -> str:
    """Floats in plain decimal notation (AMC's ``27.0`` -> ``27``, ``1e-07`` -> ``0.0000001``); NaN and
    infinities are no gold ("")."""
    if not math.isfinite(value):
        return ""
    return _canonical_number(format(Decimal(repr(value)), "f"))


def _drop_stray_dollars(text: str) -> str:
    """``$`` left inside a gold after its enclosing delimiters are gone are data errors: drop them."""
    return _DOLLAR_RE.sub("", text).strip() if _DOLLAR_RE.search(text) else text


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
    s = _drop_stray_dollars(_strip_math_delimiters(_DOLLAR_SEPARATED_RE.sub(", ", s)))
    s = _LATEX_THOUSANDS_RE.sub("", s)
    if _NUMBER_TIMES_VARIABLE_RE.fullmatch(s):  # clean_answer would drop the letter as a unit word
        return s
    return _canonical_number(clean_answer(s))


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


def _normalizer(benchmark: str) -> tuple[str, Callable[[Any], str]]:
    key = benchmark.lower().rsplit("/", 1)[-1].replace("-", "_")
    for prefix, fn in _NORMALIZERS.items():
        if key.startswith(prefix):
            return prefix, fn
    raise ValueError(
        f"normalize_gold: unknown benchmark {benchmark!r}; known prefixes: {sorted(_NORMALIZERS)}"
    )


def normalize_gold(raw: Any, benchmark: str | None = None) -> str:
    """Normalise a benchmark's raw gold answer to a string math-verify can parse (see the module table).

    ``benchmark`` is matched by prefix, case-insensitively (``gsm8k``, ``math500``, ``aime24``, ``amc23``,
    ``minerva_math``, ``olympiadbench``, or a Hub id such as ``openai/gsm8k``); None guesses from the value.
    Unknown benchmark names raise ``ValueError``. A missing or unusable gold (None, NaN) gives ``""``.
    """
    if benchmark is None:
        return _auto(raw)
    _, fn = _normalizer(benchmark)
    return _auto(fn(raw)) if raw is not None else ""


def problem_gold(raw: Any, benchmark: str | None = None) -> str | None:
    r"""The gold a dataset loader stores in ``Problem.answer``: ``normalize_gold(raw, benchmark)`` as a
    standalone math-verify input, or None when the row has no usable gold.

    None: a missing, empty or boolean value, a NaN, or (GSM8K) a final line that is not a number. Otherwise
    plain numbers stay bare (``27``) and anything else is wrapped in ``$...$`` (``$3\sqrt{13}$``), which
    ``math_verify.parse`` reads whole and ``normalize_gold`` drops again.
    """
    if raw is None or isinstance(raw, bool):
        return None
    gold = normalize_gold(raw, benchmark)
    is_number = bool(_PLAIN_NUMBER_RE.fullmatch(gold))
    if not gold or (benchmark is not None and _normalizer(benchmark)[0] == "gsm8k" and not is_number):
        return None
    return gold if is_number else f"${gold}$"
