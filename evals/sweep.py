"""Budget sweeps: the grid (strategies x budgets x seeds), its work units, and truncation reuse.

A sweep evaluates every strategy at every token budget B on every problem, for each seed. Two ideas keep it
cheap and resumable:

- **Truncation reuse** (``SweepEngine``): an engine proxy that records every finished batch of requests and
  answers a later request for the same prompts and sampling parameters with a smaller ``max_tokens`` B by
  replaying the recorded tokens cut at B (finish reason ``length`` where the recording ran longer). Engines
  sample request j with its own seed from (``spec.seed``, j, prompt), so the first B tokens of a max-budget
  run are exactly what a run with ``max_tokens = B`` produces: one generation at the largest budget answers
  every "stop at B" budget of per-sample strategies (greedy, sample, majority, best-of-n, short-m@k simulated); identical
  requests of different strategies (majority@4 and short-1@4 share their 4 chains) are generated once (a
  recording made without logprobs cannot serve a request that reads them, e.g. best-of-n after majority: that
  request runs and its recording, with logprobs, replaces the other); and
  strategies that force an answer (budget forcing: thinking capped at B, then ``</think>`` + answer cue)
  replay the capped thinking and only generate the forced answer from ``prompt + prefix`` (continue_from).
  Strategies whose requests do not repeat simply run per budget. Replayed completions keep their recorded
  wall time, scaled by the fraction of tokens kept, so per-problem wall times estimate separate runs.
- **Deterministic work units** (``work_units``): problems are cut into fixed chunks of ``batch_size``
  (benchmark order); a unit is (chunk, seed) and runs every strategy at every budget, largest budget first.
  Its sampling seed is a hash of (seed, the chunk's problem ids), never of its position in a run, so a unit
  recomputed after a crash produces the same rows. With ``batch_size = 1`` seeds are per (problem, seed).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoner.engines.base import Engine, ListSession, Session, StreamEvent, cut_at_stop
from reasoner.prompts import THINK_END, delimiter_ids, think_end_index
from reasoner.types import Completion, Problem, SampleSpec
from reasoner.verify import GRADER_MODES

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
    grader: str = "lenient"
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


# ---------------------------------------------------------------- truncation reuse


def truncate(tokenizer: Any, c: Completion, n: int, reason: str, stop: Sequence[str] = ()) -> Completion:
    """``c`` cut to its first ``n`` tokens with finish ``reason``, as a run stopped there would return it."""
    if n >= c.num_tokens and reason == c.finish_reason:
        return c
    ids = c.token_ids[:n]
    return Completion(
        token_ids=ids,
        text=cut_at_stop(tokenizer.decode(list(ids), skip_special_tokens=True), stop)[0],
        logprobs=c.logprobs[:n] if c.logprobs is not None else None,
        top_logprobs=c.top_logprobs[:n] if c.top_logprobs is not None else None,
        finish_reason=reason,
        prompt_tokens=c.prompt_tokens,
        think_end=think_end_index(ids, delimiter_ids(tokenizer, THINK_END)),
        elapsed_s=c.elapsed_s * n / max(c.num_tokens, 1),
        entropies=c.entropies[:n] if c.entropies is not None else None,
    )


def covers(c: Completion, max_tokens: int) -> bool:
    """Whether a recorded completion determines the request's outcome at ``max_tokens``."""
    return c.finish_reason == "stop" or c.num_tokens >= max_tokens


def serves(record: Sequence[Completion], spec: SampleSpec) -> bool:
    """Whether a recording answers a request: it covers ``spec.max_tokens`` and, when the request reads
    logprobs, it has them."""
    has_logprobs = all(c.logprobs is not None for c in record)
    return all(covers(c, spec.max_tokens) for c in record) and (has_logprobs or not spec.logprobs)


def _key(prompts: Sequence[Sequence[int]], spec: SampleSpec, entropies: bool) -> tuple:
    """Requests that differ only in ``max_tokens`` or ``logprobs`` share a recording (logprobs do not change
    the samples; ``SweepEngine.start`` checks that a recording has the logprobs a request reads)."""
    fields = dataclasses.replace(spec, max_tokens=1, logprobs=True)
    return (tuple(tuple(p) for p in prompts), fields, entropies)


class SweepEngine(Engine):
    """Engine proxy that records finished request batches and replays them truncated (module docstring).

    ``spent`` counts tokens the wrapped engine generated, ``served`` tokens replayed; ``spent_by`` splits
    ``spent`` by owner (``set_owners`` maps rendered prompts to problem ids). ``reuse=False`` turns replay
    off (separate runs, for comparisons). ``clear()`` forgets recordings (between work units).
    """

    def __init__(self, engine: Engine, *, reuse: bool = True):
        self.inner, self.reuse = engine, reuse
        self.tokenizer, self.name, self.model_name = engine.tokenizer, engine.name, engine.model_name
        self.spent = self.served = 0
        self.spent_by: dict[str, int] = {}
        self._records: dict[tuple, list[Completion]] = {}
        self._owners: list[tuple[tuple[int, ...], str]] = []

    def clear(self) -> None:
        self._records.clear()

    def set_owners(self, owners: Mapping[str, Sequence[int]]) -> None:
        """Problem id -> its rendered prompt ids; requests whose prompt starts with them count for it."""
        self._owners = sorted(((tuple(ids), pid) for pid, ids in owners.items()), key=lambda o: -len(o[0]))

    def owner(self, prompt: Sequence[int]) -> str:
        for ids, pid in self._owners:
            if tuple(prompt[: len(ids)]) == ids:
                return pid
        return ""

    def take_spent(self) -> dict[str, int]:
        """Spent tokens per owner since the last call."""
        out, self.spent_by = self.spent_by, {}
        return out

    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        key = _key(prompts, spec, entropies)
        record = self._records.get(key) if self.reuse else None
        if record is not None and serves(record, spec):
            return ReplaySession(self, record, spec)
        return RecordingSession(
            self, self.inner.start(prompts, spec, entropies=entropies), key, prompts, spec
        )

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        self.clear()
        self.inner.load_weights(named_tensors)

    def close(self) -> None:
        self.inner.close()

    def _record(self, key: tuple, completions: list[Completion]) -> None:
        self._records[key] = completions


class RecordingSession(Session):
    """A real session; counts what it generates and records the batch once every request has ended."""

    def __init__(self, owner: SweepEngine, session: Session, key: tuple, prompts: Sequence, spec: SampleSpec):
        self.e, self.inner, self.key, self.n = owner, session, key, spec.n
        self.who = [owner.owner(p) for p in prompts]
        self.done: dict[int, Completion] = {}
        self.total = len(prompts) * spec.n

    def _count(self, index: int, tokens: int) -> None:
        self.e.spent += tokens
        who = self.who[index // self.n]
        self.e.spent_by[who] = self.e.spent_by.get(who, 0) + tokens

    def step(self) -> list[StreamEvent]:
        events = self.inner.step()
        for ev in events:
            self._count(ev.index, len(ev.new_token_ids))
            if ev.finished is not None:
                self.done[ev.index] = ev.finished
        self._maybe_record()
        return events

    def abort(self, indices: Iterable[int]) -> list[Completion | None]:
        indices = list(indices)
        out = self.inner.abort(indices)
        for i, c in zip(indices, out, strict=True):
            if c is not None:
                self.done[i] = c
        self._maybe_record()
        return out

    def _maybe_record(self) -> None:
        if len(self.done) == self.total:  # a session only runs when no recording covered it: replace
            self.e._record(self.key, [self.done[i] for i in range(self.total)])

    def has_unfinished(self) -> bool:
        return self.inner.has_unfinished()

    def close(self) -> None:
        self.inner.close()


class ReplaySession(ListSession):
    """Replays recorded completions one token per step, cut at ``spec.max_tokens``; aborts keep the prefix."""

    def __init__(self, owner: SweepEngine, record: list[Completion], spec: SampleSpec):
        self.e, self.spec, self.t0 = owner, spec, time.perf_counter()
        self.plans = [self._plan(c) for c in record]
        self.pos = [0] * len(record)
        self.live = list(range(len(record)))

    def _plan(self, c: Completion) -> Completion:
        if not self.spec.logprobs and c.logprobs is not None:
            c = dataclasses.replace(c, logprobs=None)  # the shape a live run without logprobs returns
        if c.finish_reason == "stop" and c.num_tokens <= self.spec.max_tokens:
            return c
        return truncate(self.e.tokenizer, c, self.spec.max_tokens, "length", self.spec.stop)

    def step(self) -> list[StreamEvent]:
        events, still = [], []
        for i in self.live:
            plan, p = self.plans[i], self.pos[i]
            self.pos[i] = p + 1
            done = plan if p + 1 >= plan.num_tokens else None
            lps = plan.logprobs[p : p + 1] if plan.logprobs is not None else None
            top = plan.top_logprobs[p : p + 1] if plan.top_logprobs is not None else None
            events.append(StreamEvent(i, plan.token_ids[p : p + 1], done, lps, top))
            if done is None:
                still.append(i)
        self.e.served += len(events)
        self.live = still
        return events

    def _aborted(self, index: int) -> Completion:
        return truncate(self.e.tokenizer, self.plans[index], self.pos[index], "abort", self.spec.stop)
