"""Math benchmarks as ``list[Problem]``: one registry dict, Hub ids or local copies, plus offline ``arith``.

Every benchmark loads by its Hub id with the Hub's column names through ``datasets.load_dataset``, or,
when a data directory is given (argument ``data_dir``, default: env ``REASONER_DATA_DIR``), from local
files with the same rows laid out as ``<data_dir>/<name>/<split>.jsonl`` (``.parquet``/``.json`` also
read). Rows become ``Problem(id, question, answer, meta)`` with a normalised gold answer:

- GSM8K (Cobbe et al. 2021, arXiv 2110.14168): the number after ``#### ``, thousands commas stripped.
- MATH-500 / Minerva (Lightman et al. 2023, arXiv 2305.20050; Lewkowycz et al. 2022, arXiv 2206.14858):
  the ``answer`` column, else the content of the solution's last ``\\boxed{}``.
- AIME / AMC: plain numbers in canonical form (``025`` -> ``25``, ``27.0`` -> ``27``).
- OlympiadBench (He et al. 2024, arXiv 2402.14008): the ``final_answer`` list, joined.

Gold strings are ones math-verify parses as meant: plain numbers stay bare, any other LaTeX is wrapped in
``$...$`` (bare ``3\\sqrt{13}`` would parse as 3). Rows with a missing or unparsable gold answer are
skipped, logged as a warning with a count, and counted in ``LoadResult.skipped``.

``arith`` (the toolkit's default, ``evals.arith``) generates arithmetic and algebra problems offline with
reasoning-gym (Stojanovski et al. 2025, arXiv 2505.24760) at difficulty levels 1-5, deterministic for a seed.
``multistep`` generates the overthinking organism's chained-operation problems (levels 1-4: 2-5 operations,
``reasoner.organism.problems``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from evals.arith import ARITH_LEVELS, generate_arith
from reasoner.organism.problems import LEVELS, generate_multistep
from reasoner.types import Problem

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "REASONER_DATA_DIR"
DEFAULT_BENCHMARK = "arith"
GoldKind = Literal["gsm8k", "answer", "boxed", "list"]


@dataclass(frozen=True)
class LoadResult:
    """Problems loaded from one benchmark split; iterable and sized like the list it holds."""

    problems: list[Problem]
    skipped: int = 0
    """Rows dropped because their gold answer was missing or unparsable."""
    source: str = ""
    """Where the rows came from: ``hub:<id>[/<config>]:<split>``, a file path, or ``reasoning-gym``."""

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)


# ---------------------------------------------------------------- gold normalisation (pure)

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")  # a math delimiter, not an escaped \$ (currency)
_SCI_RE = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))[eE]([+-]?\d+)")  # 4.5e33 (Minerva)


def canonical_number(text: str) -> str | None:
    """Canonical form of a plain decimal number (``025`` -> ``25``, ``27.0`` -> ``27``); else None."""
    text = text.strip()
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = Decimal(text)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def to_math_string(raw: object) -> str | None:
    """Gold value -> a string math-verify parses as meant; None when missing or empty.

    Numbers (also floats like ``27.0`` and ``$166$``) become canonical bare numbers; other text is
    kept if it is already delimited (starts and ends with ``$``, like ``$69$,$84$``) and wrapped in
    ``$...$`` otherwise. Stray ``$`` (unbalanced, or mid-text as in ``a+$ $b``) are dropped first.
    Escaped ``\\$`` (currency) is text, not a delimiter. Scientific ``4.5e33`` -> ``$4.5 \\times 10^{33}$``.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return str(int(raw)) if raw.is_integer() else canonical_number(format(Decimal(repr(raw)), "f"))
    text = str(raw).strip()
    if not _DOLLAR_RE.sub("", text).strip():
        return None
    if (number := canonical_number(text)) is not None:
        return number
    if sci := _SCI_RE.fullmatch(text.strip("$ ")):  # math-verify reads LaTeX 4.5e33 as 4.5*e*33
        return f"${sci[1]} \\times 10^{{{int(sci[2])}}}$"
    dollars = len(_DOLLAR_RE.findall(text))
    if dollars % 2 or (dollars and not (text.startswith("$") and text.endswith("$"))):
        text, dollars = _DOLLAR_RE.sub("", text).strip(), 0  # stray delimiters (data errors): drop
    if dollars == 2 and text.startswith("$") and text.endswith("$"):
        if (number := canonical_number(text[1:-1])) is not None:
            return number
    return text if dollars else f"${text}$"


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced; else None."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    open_at = text.index("{", start)
    depth = 0
    for j in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[open_at + 1 : j].strip() or None
    return None


def gold_answer(row: Mapping[str, Any], kind: GoldKind) -> str | None:
    """Normalised gold answer of one dataset row, or None when it is missing or unparsable.

    ``gsm8k``: number after the last ``####`` (commas stripped; anything else is unparsable).
    ``answer``: the ``answer`` column. ``boxed``: ``answer`` if present, else the solution's last
    ``\\boxed{}``. ``list``: OlympiadBench's ``final_answer`` list (several items: one ``$a, b$``).
    """
    if kind == "gsm8k":
        _, hashes, final = str(row.get("answer") or "").rpartition("####")
        return canonical_number(final.replace(",", "")) if hashes else None
    if kind == "list":
        items = [str(x).strip() for x in row.get("final_answer") or [] if str(x).strip()]
        if len(items) <= 1:
            return to_math_string(items[0]) if items else None
        return to_math_string(", ".join(_DOLLAR_RE.sub("", x).strip() for x in items))
    raw = row.get("answer")
    if kind == "boxed" and (raw is None or str(raw).strip() == ""):
        raw = last_boxed(str(row.get("solution") or ""))
    return to_math_string(raw)


# ---------------------------------------------------------------- Hub / local benchmarks


def _read_rows(path: Path) -> Iterable[Mapping[str, Any]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())
        return
    import datasets  # heavy; only for parquet/json files

    yield from datasets.load_dataset(path.suffix.lstrip("."), data_files=str(path), split="train")


@dataclass(frozen=True)
class HubBenchmark:
    """A benchmark on the Hugging Face Hub, or a local copy with the same rows."""

    name: str
    hub_id: str
    gold: GoldKind
    hub_config: str | None = None
    hub_splits: Mapping[str, str] = field(default_factory=dict)
    """Our split name -> the Hub's (AIME 2024 ships its test problems as ``train``); others pass through."""
    question_keys: tuple[str, ...] = ("problem", "question")
    """Columns tried in order for the problem text (the Hub and local copies differ for some sets)."""
    id_key: str | None = None
    """Column with a stable row id; None: ``<split>-<row index>``."""
    meta_keys: tuple[str, ...] = ()
    """Row columns copied into ``Problem.meta`` (when present)."""

    def load(
        self, split: str = "test", limit: int | None = None, data_dir: str | Path | None = None
    ) -> LoadResult:
        """Load ``split`` (at most ``limit`` problems) from ``data_dir`` if given, else from the Hub."""
        if data_dir is not None:
            path = self.local_path(Path(data_dir), split)
            return self.from_rows(_read_rows(path), split, limit, source=str(path))
        import datasets  # heavy; imported only when the Hub is used

        hub_split = self.hub_splits.get(split, split)
        rows = datasets.load_dataset(self.hub_id, self.hub_config, split=hub_split)
        config = f"/{self.hub_config}" if self.hub_config else ""
        return self.from_rows(rows, split, limit, source=f"hub:{self.hub_id}{config}:{hub_split}")

    def local_path(self, data_dir: Path, split: str) -> Path:
        """``<data_dir>/<name>/<split>.{jsonl,parquet,json}``; FileNotFoundError naming what was tried."""
        candidates = [data_dir / self.name / f"{split}.{ext}" for ext in ("jsonl", "parquet", "json")]
        for path in candidates:
            if path.is_file():
                return path
        raise FileNotFoundError(
            f"{self.name}: no local copy of split {split!r} (tried {', '.join(map(str, candidates))}); "
            f"unset data_dir / ${DATA_DIR_ENV} to load {self.hub_id!r} from the Hub"
        )

    def from_rows(
        self, rows: Iterable[Mapping[str, Any]], split: str, limit: int | None = None, source: str = ""
    ) -> LoadResult:
        """Rows with this benchmark's columns -> problems; rows lacking a gold or question are skipped."""
        problems: list[Problem] = []
        skipped = 0
        for index, row in enumerate(rows):
            if limit is not None and len(problems) >= limit:
                break
            problem = self.to_problem(row, split, index)
            if problem is None:
                skipped += 1
            else:
                problems.append(problem)
        if skipped:
            logger.warning(
                "%s/%s: skipped %d rows with a missing or unparsable answer (kept %d) from %s",
                self.name,
                split,
                skipped,
                len(problems),
                source or "rows",
            )
        return LoadResult(problems, skipped, source)

    def to_problem(self, row: Mapping[str, Any], split: str, index: int) -> Problem | None:
        """One row -> Problem, or None when its question or gold answer is missing/unparsable."""
        question = next((str(row[k]).strip() for k in self.question_keys if row.get(k)), "")
        answer = gold_answer(row, self.gold)
        if not question or answer is None:
            return None
        if row.get("context"):  # OlympiadBench: shared context precedes some questions
            question = f"{str(row['context']).strip()}\n\n{question}"
        key = row.get(self.id_key) if self.id_key else None
        meta = {"benchmark": self.name, "split": split, "index": index}
        meta.update({k: row[k] for k in self.meta_keys if row.get(k) is not None})
        return Problem(
            id=f"{self.name}-{split}-{index}" if key is None else f"{self.name}-{key}",
            question=question,
            answer=answer,
            meta=meta,
        )


@dataclass(frozen=True)
class GeneratedBenchmark:
    """Problems generated offline (``arith``: reasoning-gym; ``multistep``: ``reasoner.organism``);
    ``data_dir`` is ignored. Options: ``n``, ``seed``, ``levels`` (default: all of the generator's)."""

    name: str
    generate: Callable[..., list[Problem]]
    """``generate(n, seed, levels, split) -> list[Problem]``, deterministic."""
    levels: tuple[int, ...]
    """The generator's difficulty levels."""
    source: str

    def load(
        self,
        split: str = "test",
        limit: int | None = None,
        data_dir: str | Path | None = None,
        *,
        n: int = 50,
        seed: int = 0,
        levels: Sequence[int] | None = None,
    ) -> LoadResult:
        count = n if limit is None else min(n, limit)
        levels = self.levels if levels is None else levels
        return LoadResult(self.generate(count, seed, levels, split), 0, self.source)


# ---------------------------------------------------------------- registry

_TEST_IS_TRAIN = {"test": "train"}  # these Hub datasets ship their test problems as a "train" split

BENCHMARKS: dict[str, HubBenchmark | GeneratedBenchmark] = {
    "arith": GeneratedBenchmark("arith", generate_arith, tuple(ARITH_LEVELS), "reasoning-gym"),
    "multistep": GeneratedBenchmark("multistep", generate_multistep, LEVELS, "reasoner.organism"),
    "gsm8k": HubBenchmark("gsm8k", "openai/gsm8k", "gsm8k", hub_config="main"),
    "math500": HubBenchmark(
        "math500", "HuggingFaceH4/MATH-500", "boxed", id_key="unique_id", meta_keys=("subject", "level")
    ),
    "aime24": HubBenchmark(
        "aime24",
        "HuggingFaceH4/aime_2024",
        "answer",
        hub_splits=_TEST_IS_TRAIN,
        id_key="id",
        meta_keys=("url",),
    ),
    "aime25": HubBenchmark("aime25", "yentinglin/aime_2025", "answer", hub_splits=_TEST_IS_TRAIN),
    "amc23": HubBenchmark("amc23", "math-ai/amc23", "answer", id_key="id", meta_keys=("url",)),
    "minerva_math": HubBenchmark(
        "minerva_math", "math-ai/minervamath", "boxed", id_key="idx", meta_keys=("type",)
    ),
    "olympiadbench": HubBenchmark(
        "olympiadbench",
        "Hothan/OlympiadBench",
        "list",
        hub_config="OE_TO_maths_en_COMP",
        hub_splits=_TEST_IS_TRAIN,
        id_key="id",
        meta_keys=("subfield", "answer_type", "unit", "is_multiple_answer"),
    ),
}
"""Benchmark name -> loader. Each has ``load(split, limit, data_dir, **options) -> LoadResult``."""


def get_benchmark(name: str) -> HubBenchmark | GeneratedBenchmark:
    """The registry entry for ``name``; ValueError listing the known names otherwise."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}") from None


def is_generated(name: str) -> bool:
    """True for benchmarks generated offline (``arith``, ``multistep``): options n, seed, levels apply."""
    return isinstance(BENCHMARKS.get(name), GeneratedBenchmark)


def load_benchmark(
    name: str = DEFAULT_BENCHMARK,
    split: str = "test",
    limit: int | None = None,
    data_dir: str | Path | None = None,
    **options: Any,
) -> LoadResult:
    """Load a benchmark by name. ``data_dir`` defaults to ``$REASONER_DATA_DIR``; unset means the Hub.

    ``options`` go to the benchmark's loader (``arith``, ``multistep``: ``n``, ``seed``, ``levels``).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    spec = get_benchmark(name)
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    return spec.load(split=split, limit=limit, data_dir=data_dir, **options)
