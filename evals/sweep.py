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

import dataclasses
import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoner.types import Problem, SampleSpec
from reasoner.verify import GRADER_MODES, GraderMode

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("greedy", "majority", "short-m@k:m=1", "short-m@k:m=3", "budget-forcing")
"""The main job's grid: greedy, majority@n, short-1@n and short-3@n (live: real aborts), budget forcing."""
BUDGET_FIELD = "budget"
"""A strategy whose config has this field (budget forcing) takes the budget there, not in max_tokens."""
COUNT_FIELDS = ("k", "n")
"""Config fields that ``EvalConfig.n`` fills when a strategy entry does not set them."""


# ---------------------------------------------------------------- configuration


@dataclass
class EvalConfig:
    """What ``reasoner eval`` runs. The YAML file of ``--config`` has exactly these keys."""

    model: str = "overthinker"
    """Hub id, local HF directory or built-in alias (``reasoner.models.MODELS``). Default: the overthinking
    organism, built on first use; ``evals/configs/smollm2.yaml`` is the real small model's run."""
    engine: str = "auto"
    """``auto`` (vLLM where it imports, else transformers), ``vllm`` or ``hf``."""
    dtype: str = "auto"
    """Model dtype: auto, float32, bfloat16, float16."""
    benchmark: str = "multistep"
    """A name from ``evals.benchmarks.BENCHMARKS``."""
    split: str = "test"
    data_dir: str | None = None
    """Local benchmark copies (``<data_dir>/<name>/<split>.jsonl``); None: ``$REASONER_DATA_DIR``, else the Hub."""
    limit: int | None = 100
    """Problems to evaluate (the first ``limit`` of the split); None: all."""
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    """Strategy entries ``name[:key=value,...]`` (params as ``reasoner decode``'s ``--param``)."""
    budgets: list[int] = field(default_factory=lambda: [64, 128, 384])
    """Token budgets B: ``max_tokens`` per request, or the thinking budget of budget forcing."""
    seeds: list[int] = field(default_factory=lambda: [0])
    n: int = 8
    """Samples per problem for strategies with a ``k`` or ``n`` parameter that the entry does not set."""
    temperature: float = 1.0
    """Sampling temperature (1.0: the organism's trained distribution)."""
    top_p: float = 1.0
    batch_size: int = 20
    """Problems per engine call (a work unit); part of what makes a run reproducible."""
    grader: GraderMode = "lenient"
    """Answer extraction for grading (``reasoner.verify``): ``lenient`` (boxed, answer phrase, then math-verify's
    own extraction) or ``strict`` (only an explicitly marked final answer). ``reasoner regrade`` switches later."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Normalise fields and raise ``ValueError`` naming the bad one."""
        self.budgets = sorted({_int("budgets", b, 1) for b in _as_list("budgets", self.budgets)})
        seeds = [_int("seeds", s, 0) for s in _as_list("seeds", self.seeds)]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        self.seeds = seeds
        self.n, self.batch_size = _int("n", self.n, 1), _int("batch_size", self.batch_size, 1)
        self.limit = None if self.limit is None else _int("limit", self.limit, 1)
        SampleSpec(temperature=float(self.temperature), top_p=float(self.top_p))  # range checks
        if self.grader not in GRADER_MODES:
            raise ValueError(f"grader must be one of {', '.join(GRADER_MODES)}, got {self.grader!r}")
        self.temperature, self.top_p = float(self.temperature), float(self.top_p)
        self.strategies = [
            StrategyEntry.parse(s, self.n).label for s in _as_list("strategies", self.strategies)
        ]
        if len(set(self.strategies)) != len(self.strategies) or not self.strategies:
            raise ValueError(f"strategies must be distinct and non-empty, got {self.strategies}")
        for entry in self.entries():
            entry.build(self.budgets[0])  # unknown parameters / bad values fail now, not mid-run

    def entries(self) -> list[StrategyEntry]:
        return [StrategyEntry.parse(s, self.n) for s in self.strategies]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: EvalConfig | None = None) -> EvalConfig:
        """``base`` (default: the defaults) updated with ``data``; an unknown key is an error naming it."""
        known = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in known:
                raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(known)}")
        values = (base or cls()).to_dict() | dict(data)
        return cls(**values)


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


def _as_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, str | int | dict):
        return [value]
    if not isinstance(value, Iterable) or not value:
        raise ValueError(f"{name} must be a non-empty list, got {value!r}")
    return list(value)


def _int(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}") from None
    if number < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {number}")
    return number


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
            name, _, tail = str(spec).strip().partition(":")
            pairs = [_pair(name, item) for item in tail.split(",") if item.strip()]
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
        keys = [k for k, _ in pairs]
        if BUDGET_FIELD in keys:
            raise ValueError(f"strategy {name!r}: {BUDGET_FIELD!r} comes from the budgets, not a parameter")
        fields = {f.name for f in dataclasses.fields(STRATEGIES[name].Config)}
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

        return BUDGET_FIELD in {f.name for f in dataclasses.fields(STRATEGIES[self.name].Config)}

    def build(self, budget: int) -> Any:
        """The strategy for budget B (budget forcing gets ``budget=B``)."""
        from reasoner.strategies import build_strategy

        params = dict(self.params)
        if self.takes_budget:
            params[BUDGET_FIELD] = str(budget)
        return build_strategy(self.name, params)


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
