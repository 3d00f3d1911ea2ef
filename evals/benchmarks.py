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

Gold normalisation is the verifier's (``reasoner.verify.gold.problem_gold``, the loader's face of
``normalize_gold``): plain numbers stay bare, any other LaTeX is wrapped in ``$...$``. Rows with an empty
question or a missing or unparsable gold are skipped, logged as a warning with a count and the first line,
and counted in ``LoadResult.skipped``. Bad files are errors (``BenchmarkDataError``, a ``ValueError``) that
name the file and line: invalid JSON, a row that is not an object, no row with the fields the benchmark reads
(listing the fields the rows have), an empty file.

``arith`` (the toolkit's default, ``evals.arith``) generates arithmetic and algebra problems offline with
reasoning-gym (Stojanovski et al. 2025, arXiv 2505.24760) at difficulty levels 1-5, deterministic for a seed.
``multistep`` generates the overthinking organism's chained-operation problems (levels 1-4: 2-5 operations,
``reasoner.organism.problems``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.arith import ARITH_LEVELS, generate_arith
from reasoner.organism.problems import LEVELS, generate_multistep
from reasoner.types import Problem
from reasoner.verify.extract import last_boxed
from reasoner.verify.gold import problem_gold

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "REASONER_DATA_DIR"
DEFAULT_BENCHMARK = "arith"


@dataclass(frozen=True)
class LoadResult:
    """Problems loaded from one benchmark split; iterable and sized like the list it holds."""

    problems: list[Problem]
    skipped: int = 0
    """Rows dropped because their question was empty or their gold answer missing or unparsable."""
    source: str = ""
    """Where the rows came from: ``hub:<id>[/<config>]:<split>``, a file path, or ``reasoning-gym``."""

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)


class BenchmarkDataError(ValueError):
    """A benchmark file or Hub split the loader cannot use; the message names the file (and line)."""


# ---------------------------------------------------------------- Hub / local benchmarks

Located = tuple[str, Mapping[str, Any]]
"""A row and where it came from (``line 3`` of a JSONL file, ``row 3`` otherwise), for error messages."""


def _read_jsonl(path: Path) -> Iterator[Located]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkDataError(
                    f"{path} line {number}: invalid JSON ({err.msg}: column {err.colno})"
                ) from None
            if not isinstance(row, dict):
                raise BenchmarkDataError(
                    f"{path} line {number}: expected a JSON object, got {type(row).__name__}"
                )
            yield f"line {number}", row


def _read_rows(path: Path) -> Iterator[Located]:
    if path.suffix == ".jsonl":
        yield from _read_jsonl(path)
        return
    import datasets  # heavy; only for parquet/json files

    try:
        rows = datasets.load_dataset(path.suffix.lstrip("."), data_files=str(path), split="train")
    except Exception as err:  # datasets wraps parse errors in its own types; name the file instead
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BenchmarkDataError(f"{path}: cannot read it as {path.suffix.lstrip('.')}: {first}") from None
    yield from ((f"row {i + 1}", row) for i, row in enumerate(rows))


def _quoted(keys: Sequence[str]) -> str:
    return " or ".join(repr(k) for k in keys)


@dataclass(frozen=True)
class HubBenchmark:
    """A benchmark on the Hugging Face Hub, or a local copy with the same rows."""

    name: str
    hub_id: str
    gold_key: str = "answer"
    """Column holding the gold answer."""
    gold_format: str | None = None
    """``reasoner.verify.normalize_gold``'s benchmark name for the gold (``gsm8k``, ``math``, ``olympiad``,
    ...); None: guessed from the value."""
    boxed_key: str | None = None
    """Column whose last ``\\boxed{}`` is the gold when ``gold_key`` is empty or absent (MATH solutions)."""
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
            result = self._collect(_read_rows(path), split, limit, source=str(path))
            if not result.problems and not result.skipped and limit != 0:
                raise BenchmarkDataError(f"{path}: the file has no rows")
            return result
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
        """Rows with this benchmark's columns -> problems (see ``_collect``)."""
        return self._collect(((f"row {i + 1}", row) for i, row in enumerate(rows)), split, limit, source)

    def _collect(self, rows: Iterable[Located], split: str, limit: int | None, source: str) -> LoadResult:
        """Problems from located rows. Rows lacking a question or a usable gold are skipped, counted and logged;
        when no row has the fields this benchmark reads, ``BenchmarkDataError`` names them."""
        problems: list[Problem] = []
        skipped: dict[str, list[str]] = {}  # reason -> where (first one reported)
        fields: dict[str, None] = {}  # every column seen, in order
        with_fields = 0
        for index, (where, row) in enumerate(rows):
            if limit is not None and len(problems) >= limit:
                break
            fields.update(dict.fromkeys(row))
            missing = self.missing_fields(row)
            if missing:
                skipped.setdefault(" and ".join(f"no {m} field" for m in missing), []).append(where)
                continue
            with_fields += 1
            problem, reason = self._problem(row, split, index)
            if problem is None:
                skipped.setdefault(reason, []).append(where)
            else:
                problems.append(problem)
        where = source or "rows"
        if skipped and not with_fields:
            reason, lines = next(iter(skipped.items()))
            raise BenchmarkDataError(
                f"{where} {lines[0]}: {reason}; {self.name} reads the question from {_quoted(self.question_keys)} "
                f"and the gold answer from {_quoted(self._gold_keys())}; the rows have fields: {', '.join(fields)}"
            )
        count = sum(len(lines) for lines in skipped.values())
        if count:
            details = "; ".join(f"{len(ls)} with {r} (first: {ls[0]})" for r, ls in skipped.items())
            logger.warning("%s/%s: skipped %d rows (%s); kept %d, from %s",
                           self.name, split, count, details, len(problems), where)  # fmt: skip
        return LoadResult(problems, count, source)

    def _gold_keys(self) -> tuple[str, ...]:
        return (self.gold_key, self.boxed_key) if self.boxed_key else (self.gold_key,)

    def missing_fields(self, row: Mapping[str, Any]) -> list[str]:
        """The fields this benchmark reads that ``row`` lacks altogether (quoted, alternatives joined by or)."""
        wanted = (self.question_keys, self._gold_keys())
        return [_quoted(keys) for keys in wanted if not any(k in row for k in keys)]

    def gold(self, row: Mapping[str, Any]) -> str | None:
        """The row's normalised gold (``reasoner.verify.gold.problem_gold``), or None when unusable."""
        raw = row.get(self.gold_key)
        if self.boxed_key and (raw is None or str(raw).strip() == ""):
            raw = last_boxed(str(row.get(self.boxed_key) or ""))
        return problem_gold(raw, self.gold_format)

    def to_problem(self, row: Mapping[str, Any], split: str, index: int) -> Problem | None:
        """One row -> Problem, or None when its question or gold answer is missing/unparsable."""
        return self._problem(row, split, index)[0]

    def _problem(self, row: Mapping[str, Any], split: str, index: int) -> tuple[Problem | None, str]:
        question = next((str(row[k]).strip() for k in self.question_keys if row.get(k)), "")
        if not question:
            return None, f"an empty {_quoted(self.question_keys)}"
        answer = self.gold(row)
        if answer is None:
            return None, f"a missing or unparsable gold in {_quoted(self._gold_keys())}"
        if row.get("context"):  # OlympiadBench: shared context precedes some questions
            question = f"{str(row['context']).strip()}\n\n{question}"
        key = row.get(self.id_key) if self.id_key else None
        meta = {"benchmark": self.name, "split": split, "index": index}
        meta.update({k: row[k] for k in self.meta_keys if row.get(k) is not None})
        problem_id = f"{self.name}-{split}-{index}" if key is None else f"{self.name}-{key}"
        return Problem(id=problem_id, question=question, answer=answer, meta=meta), ""


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
        n: int | None = None,
        seed: int = 0,
        levels: Sequence[int] | None = None,
    ) -> LoadResult:
        """``n`` problems (default: ``limit``, else 50), at most ``limit``."""
        count = n if n is not None else limit if limit is not None else 50
        count = count if limit is None else min(count, limit)
        levels = self.levels if levels is None else levels
        return LoadResult(self.generate(count, seed, levels, split), 0, self.source)


# ---------------------------------------------------------------- registry

_TEST_IS_TRAIN = {"test": "train"}  # these Hub datasets ship their test problems as a "train" split

BENCHMARKS: dict[str, HubBenchmark | GeneratedBenchmark] = {
    "arith": GeneratedBenchmark("arith", generate_arith, tuple(ARITH_LEVELS), "reasoning-gym"),
    "multistep": GeneratedBenchmark("multistep", generate_multistep, LEVELS, "reasoner.organism"),
    "gsm8k": HubBenchmark("gsm8k", "openai/gsm8k", gold_format="gsm8k", hub_config="main"),
    "math500": HubBenchmark(
        "math500",
        "HuggingFaceH4/MATH-500",
        gold_format="math",
        boxed_key="solution",
        id_key="unique_id",
        meta_keys=("subject", "level"),
    ),
    "aime24": HubBenchmark(
        "aime24",
        "HuggingFaceH4/aime_2024",
        gold_format="aime",
        hub_splits=_TEST_IS_TRAIN,
        id_key="id",
        meta_keys=("url",),
    ),
    "aime25": HubBenchmark("aime25", "yentinglin/aime_2025", gold_format="aime", hub_splits=_TEST_IS_TRAIN),
    "amc23": HubBenchmark("amc23", "math-ai/amc23", gold_format="amc", id_key="id", meta_keys=("url",)),
    "minerva_math": HubBenchmark(
        "minerva_math",
        "math-ai/minervamath",
        gold_format="minerva",
        boxed_key="solution",
        id_key="idx",
        meta_keys=("type",),
    ),
    "olympiadbench": HubBenchmark(
        "olympiadbench",
        "Hothan/OlympiadBench",
        gold_key="final_answer",
        gold_format="olympiad",
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


def load_problems(
    name: str,
    split: str = "test",
    *,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    levels: Sequence[int] | None = None,
) -> list[Problem]:
    """The problems of benchmark ``name``'s ``split``: the one problem loader of evaluation (``evals.runner``),
    training (a recipe's ``data`` section) and distillation (``reasoner distill --benchmark``).

    ``limit``: the first N problems; ``data_dir``: local copies (default ``$REASONER_DATA_DIR``, else the Hub);
    ``n``, ``seed``, ``levels``: the generator's options, for generated benchmarks only (``is_generated``;
    ignored by the others). An unknown name, an unreadable file, a missing split or a split without problems
    is a ValueError that names the benchmark and the split.
    """
    options = {"n": n, "seed": seed, "levels": None if levels is None else tuple(levels)}
    try:
        result = load_benchmark(name, split, limit, data_dir, **(options if is_generated(name) else {}))
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"benchmark {name!r} split {split!r}: {err}") from err
    if not result.problems:
        raise ValueError(f"benchmark {name!r} split {split!r}: no problems")
    logger.info("%s/%s: %d problems from %s", name, split, len(result), result.source)
    return list(result.problems)
