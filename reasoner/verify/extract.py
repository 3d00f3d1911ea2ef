r"""Answer extraction from model responses: the grader's two policies, and the pure, linear-time scans behind
the strict one (math-verify is not imported here).

The answer region of a response is the text after the last ``</think>``; a ``<think>`` that is never closed
means the model never answered (no answer). In that region an *explicitly marked* final answer is, in order of
preference (``marked_answer``):

1. the last complete ``\boxed{...}`` (also ``\fbox``, ``\framebox`` and the brace-less ``\boxed 5``), nested
   braces matched, empty boxes skipped, a box inside a box unwrapped;
2. the text after the last "final answer is" / "final answer:" (then "answer is" / "answer:"), cut at the end of
   its sentence, or the first ``$...$`` math span in it;
3. the last GSM8K-style ``#### N``.

Two policies (``GRADER_MODES``) decide what happens when the region holds no marked answer:

- ``strict`` (the reward default): nothing else counts; the response has no answer. ``extract_answer`` is this
  policy, pure and without the worker pool.
- ``lenient`` (the evaluation default): math-verify's own LaTeX + expression extraction of the region
  (``math_verify.parse(region)`` with its default configs; https://github.com/huggingface/Math-Verify) decides,
  in the verifier pool's workers under its hard timeout (``reasoner.verify.extract_many``/``grade_many``). It
  handles ``\frac13``, ``1 000``, ``.4``, relations and sets, and ignores digits inside words ("AZYUK2A").

Neither policy ever takes a bare "last number in the text": it misreads ``\frac13`` as ``13`` and scores a
stray digit inside a word, which an RL policy can learn to exploit.

A marked answer is then lightly cleaned (``clean_answer``): enclosing ``$``, currency ``\$``, thousands
separators (``1,234`` and ``1 234`` -> ``1234``), a trailing period, trailing unit words after a plain number, and Minerva's
``4.5e33`` -> ``4.5\times10^{33}``. Equivalence is decided later by math-verify (see ``reasoner.verify``).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Literal, get_args

THINK_START = "<think>"
THINK_END = "</think>"
GraderMode = Literal["lenient", "strict"]
"""The grader's extraction policy (see the module docstring)."""
GRADER_MODES: tuple[str, ...] = get_args(GraderMode)
"""``("lenient", "strict")``: the allowed values of every ``mode`` argument."""

_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])\s*(\{)?")
_BRACE_RE = re.compile(r"\\\\|\\[{}]|[{}]")
_FINAL_RE = re.compile(r"final\s+answer\b[\s*_]*(?:is\b|:|=)[\s*_:]*", re.IGNORECASE)
_ANSWER_RE = re.compile(r"\banswer\b[\s*_]*(?:is\b|:|=)[\s*_:]*", re.IGNORECASE)
_GSM8K_RE = re.compile(r"####[ \t]*([^\n]*)")
_MATH_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]")
_SENTENCE_END_RE = re.compile(r"\.(?=\s|$)|\s+(?:I hope|which|so|because|since)\b")
_THOUSANDS_RE = re.compile(r"^(-?)(\d{1,3}(?:(?:,|\{,\}|\\,|\\ |~| )\d{3})+)(\.\d+)?$")
"""Thousands separators: ``1,234``, ``1{,}234``, ``1\\,234``, ``1\\ 234``, ``1~234``, ``1 234`` (as math-verify's own
number rule reads them in text; inside LaTeX it would read ``1 000`` as the product ``1*000``)."""
_SCI_RE = re.compile(r"^(-?\d+(?:\.\d+)?)[eE]([-+]?\d+)$")
_NUMBER_WITH_WORDS_RE = re.compile(r"^(-?\d[\d,]*(?:\.\d+)?%?)\s+[A-Za-z][A-Za-z .]*$")
_UNWRAP_TEXT_RE = re.compile(r"^\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}$")


def _last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    last = deque(pattern.finditer(text), maxlen=1)
    return last[0] if last else None


def answer_region(text: str) -> str | None:
    """The part of a response that may hold the answer: the text after the last ``</think>`` (all of it when
    there is none); None when a ``<think>`` is opened and never closed (the model was still thinking)."""
    end = text.rfind(THINK_END)
    region = text[end + len(THINK_END) :] if end >= 0 else text
    return None if THINK_START in region else region


def _matching_braces(text: str) -> dict[int, int]:
    """Map the index of each balanced ``{`` to the index of its ``}`` (escaped ``\\{``/``\\}`` are literal)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_RE.finditer(text):
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}" and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def last_boxed(text: str) -> str | None:
    r"""Content of the last complete, non-empty ``\boxed{...}`` (or ``\fbox``/``\framebox``) in ``text``."""
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    pairs = _matching_braces(text)
    for m in reversed(matches):
        if m.group(1) is None:  # brace-less form: \boxed 5
            token = re.match(r"[^\s$]+", text[m.end() : m.end() + 200])
            if token and m.group()[-1].isspace():
                return token.group()
            continue
        open_at = m.end() - 1
        close_at = pairs.get(open_at)
        if close_at is None:
            continue
        content = text[open_at + 1 : close_at].strip()
        if content:
            inner = last_boxed(content) if _BOX_RE.match(content) else None
            return inner if inner else content
    return None


def _from_phrase(rest: str) -> str | None:
    """The answer in the text that follows "final answer is": a math span, else the sentence."""
    line = rest.split("\n", 1)[0][:500].replace("\\$", "")
    span = _MATH_SPAN_RE.search(line)
    if span:
        candidate = next(g for g in span.groups() if g is not None)
    else:
        cut = _SENTENCE_END_RE.search(line)
        candidate = line[: cut.start()] if cut else line
    candidate = candidate.strip().strip("*_`").strip()
    return candidate if candidate and _looks_like_an_answer(candidate) else None


PROSE_WORDS = 3
"""An "answer is" span with no digit and no math (no ``$``, no ``\\``) longer than this many words is prose
("the answer is specified to the question"), not an answer."""


def _looks_like_an_answer(span: str) -> bool:
    r"""False for spans that only talk about an answer: an empty or unclosed box ("the answer is within
    \boxed{}", "the answer is \boxed{1"; a complete box was preferred already) or wordy prose."""
    if _BOX_RE.search(span):
        return False
    return any(ch.isdigit() or ch in "$\\" for ch in span) or len(span.split()) <= PROSE_WORDS


def after_answer_phrase(text: str) -> str | None:
    """The answer after the last "final answer is ..." (preferred) or "answer is / answer: ..." phrase."""
    for pattern in (_FINAL_RE, _ANSWER_RE):
        last = _last_match(pattern, text)
        if last is not None:
            found = _from_phrase(text[last.end() :])
            if found:
                return found
    return None


def after_hashes(text: str) -> str | None:
    """The answer after the last GSM8K-style ``#### N``."""
    idx = text.rfind("####")
    if idx < 0:
        return None
    m = _GSM8K_RE.match(text, idx)
    found = m.group(1).strip() if m else ""
    return found or None


def clean_answer(answer: str) -> str:
    r"""Light, meaning-preserving clean-up of an extracted answer string (see the module docstring)."""
    s = answer.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$").strip()
    s = s.replace("\\$", "").replace("\\!", "").strip()
    if s.startswith("$") and "$" not in s[1:]:  # currency: "$18"
        s = s[1:].strip()
    s = s.rstrip(".").strip() if not s.endswith("..") else s
    unwrapped = _UNWRAP_TEXT_RE.match(s)
    if unwrapped and re.fullmatch(r"[-\d.,/% ]+", unwrapped.group(1)):
        s = unwrapped.group(1).strip()
    words = _NUMBER_WITH_WORDS_RE.match(s)
    if words:
        s = words.group(1)
    thousands = _THOUSANDS_RE.match(s)
    if thousands:
        s = thousands.group(1) + re.sub(r"\D", "", thousands.group(2)) + (thousands.group(3) or "")
    sci = _SCI_RE.match(s)
    if sci:
        s = f"{sci.group(1)}\\times10^{{{int(sci.group(2))}}}"
    return s


_GLUED_RE = re.compile(r"(?<![A-Za-z\d.\\])\d+([A-Za-z]{3,})\b")
UNIT_WORDS = frozenset(
    "sec secs min mins hrs hour hours day days week weeks month months year years yrs lbs mph kph kmh "
    "cm2 mm2 km2 sqft feet foot inch inches yard yards mile miles meter meters metre metres gram grams "
    "kilogram kilograms liter liters litre litres cent cents dollar dollars pound pounds ounce ounces "
    "degree degrees percent am pm".split()
)
"""Words that may follow a number glued to it ("12sec", "5miles") and still mean that number with a unit."""


_RELATION_RE = re.compile(r"\\(?:neq|ne|leq|geq|le|ge)(?![A-Za-z])|[<>!]=?")


def asserted_value(answer: str) -> str:
    """The value an answer asserts: ``"34 + 33 = 67"`` -> ``"67"``, ``"x = 5"`` -> ``"5"`` (the right-hand side
    of the last ``=``, trailing ``.,;:`` dropped); inequalities (``<``, ``\\le``, ``!=``, ...) and answers without
    ``=`` are unchanged. Without this, math-verify reads "34 + 33 = 69" and "34 + 33 = 77" as two false
    equations and calls them equal; votes group these values, so chains that state their arithmetic still
    vote for their result."""
    if "=" not in answer or _RELATION_RE.search(answer):
        return answer
    rhs = answer.rsplit("=", 1)[1].strip().rstrip(".,;:").strip()
    return rhs or answer


def unglue_digits(text: str) -> str:
    """Drop digits glued to the front of a word that is not a unit ("4chan" -> "chan"), so that math-verify's
    own extraction (which reads "12cm" as 12 with a unit) cannot score a digit that is part of a word. Digits
    after letters ("H2O", "mp3") math-verify already ignores; one- and two-letter suffixes ("3x", "2nd", "5cm")
    are left alone (algebra, ordinals, units)."""
    return _GLUED_RE.sub(lambda m: m.group() if m.group(1).lower() in UNIT_WORDS else m.group(1), text)


def check_mode(mode: object, where: str) -> GraderMode:
    """``mode`` if it is one of ``GRADER_MODES``, else ``ValueError`` naming it and the allowed values."""
    if mode not in GRADER_MODES:
        raise ValueError(f"{where}: unknown grader mode {mode!r}; allowed: {', '.join(GRADER_MODES)}")
    return "strict" if mode == "strict" else "lenient"


def marked_answer(region: str) -> str | None:
    r"""The explicitly marked final answer in an answer region (box, then "final answer is", then ``####``),
    cleaned; None when there is none."""
    for finder in (last_boxed, after_answer_phrase, after_hashes):
        found = finder(region)
        if found:
            cleaned = clean_answer(found)
            if cleaned:
                return cleaned
    return None


def extract_answer(text: str | None) -> str | None:
    r"""The final answer in a model response under the ``strict`` policy, or None when it has none.

    Pure (no worker pool): only an explicitly marked answer after the last ``</think>`` counts (see the module
    docstring). ``reasoner.verify.extract_many(texts, mode="lenient")`` adds math-verify's own extraction.

    >>> extract_answer("<think>2+2=5?</think>So the answer is \\boxed{4}.")
    '4'
    >>> extract_answer("Natalia sold 48/2 = 24 clips in May.\n#### 72")
    '72'
    >>> extract_answer("<think>still thinking about \\boxed{3}") is None
    True
    >>> extract_answer("so we get 3 apples and then 5 pears") is None
    True
    """
    if not isinstance(text, str):
        return None
    region = answer_region(text)
    return marked_answer(region) if region else None
