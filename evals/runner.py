"""Resumable evaluation runs: a run directory, per-sample rows appended as work units finish, progress.

A run directory holds::

    config.yaml     the resolved EvalConfig (a rerun must match it, or start --fresh)
    manifest.json   one record per invocation that generated: versions, engine, device, seeds (evals.manifest)
    samples.jsonl   one row (evals.rows.Row) per (strategy, budget, problem, seed), appended, flushed and
                    fsynced per unit;
                    each completion's text and verdict are kept, so a run can be re-graded and audited
    summary.json / summary.csv / report.html / *.png     written from samples.jsonl (evals.report)

Rerunning the same command resumes: rows already in ``samples.jsonl`` are read back (a torn last line from a
crash is ignored and cut off before appending), work units whose rows are all there are skipped, and a unit
that was cut short is recomputed whole but only its missing rows are written. Units are deterministic
(``evals.sweep.WorkUnit``), so the rows and the summary equal those of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from evals.benchmarks import load_problems
from evals.grading import grade_rows
from evals.manifest import MANIFEST_FILE, append_manifest, run_manifest
from evals.replay import SweepEngine
from evals.rows import CONFIG_FILE, SAMPLES_FILE, Row, read_rows
from evals.sweep import EvalConfig, StrategyEntry, WorkUnit, work_units
from reasoner.engines import load_engine
from reasoner.models import resolve
from reasoner.prompts import render
from reasoner.speculation import speculative_or_none
from reasoner.types import Problem, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger(__name__)

OUTPUTS = ("summary.json", "summary.csv", "comparisons.csv", "report.html", "audit.json")
Mode = Literal["auto", "resume", "fresh"]


class RunDirError(ValueError):
    """The run directory cannot be used as asked (config mismatch, nothing to resume)."""


class RunDir:
    """A run directory (module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path, self.samples_path = self.path / CONFIG_FILE, self.path / SAMPLES_FILE

    def exists(self) -> bool:
        return self.config_path.is_file()

    def load_config(self) -> EvalConfig:
        import yaml

        data = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        return EvalConfig.from_dict(data)

    def prepare(self, config: EvalConfig, mode: Mode = "auto") -> int:
        """Create, resume or reset the run for ``config``; returns the number of rows already done."""
        if mode == "fresh":
            self.reset()
        elif mode == "resume" and not self.exists():
            raise RunDirError(f"nothing to resume in {self.path} (no {CONFIG_FILE}); drop --resume to start")
        if self.exists():
            diff = config_diff(self.load_config(), config)
            if diff:
                raise RunDirError(
                    f"{self.path} holds a run with a different config ({'; '.join(diff)}); rerun with --fresh "
                    "to discard it, or choose another --out"
                )
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.write_config(config)
        return len(self.read_rows())

    def write_config(self, config: EvalConfig) -> None:
        import yaml

        text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.config_path)

    def reset(self) -> None:
        """Remove the previous run's config, rows, summary, report and plots (nothing else)."""
        for name in (CONFIG_FILE, SAMPLES_FILE, MANIFEST_FILE, *OUTPUTS):
            (self.path / name).unlink(missing_ok=True)
        for png in self.path.glob("*.png") if self.path.is_dir() else ():
            png.unlink()

    def read_rows(self) -> list[Row]:
        """Rows of ``samples.jsonl`` (``evals.rows.read_rows``: first copy of each key, a torn tail skipped)."""
        return read_rows(self.samples_path)

    def append(self, rows: Sequence[Row]) -> None:
        """Append rows in one write, flushed and fsynced; a torn tail left by a crash is cut off first."""
        if not rows:
            return
        self._cut_torn_tail()
        data = "".join(r.to_line() for r in rows)
        with self.samples_path.open("a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _cut_torn_tail(self) -> None:
        if not self.samples_path.is_file():
            return
        with self.samples_path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1)
            log.warning(
                "%s: cut a torn last line (%d bytes)", self.samples_path, size - data.rfind(b"\n") - 1
            )


def config_diff(old: EvalConfig, new: EvalConfig) -> list[str]:
    """``key: old -> new`` for every field that differs."""
    a, b = old.to_dict(), new.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k]]


# ---------------------------------------------------------------- running units


@dataclass
class SweepStats:
    """What one invocation did: units run/skipped, rows written, tokens generated and replayed, seconds."""

    units_total: int = 0
    units_run: int = 0
    rows_written: int = 0
    spent_tokens: int = 0
    served_tokens: int = 0
    wall_s: float = 0.0


class MapWithEngines(Protocol):
    """Applies ``fn(engine, item)`` to every item on engine replicas, yielding ``(index, result)`` as results
    finish: ``reasoner.dist.map_with_engines`` (Ray actors), which the composition root passes in."""

    def __call__(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], *, engine: str, model: str,
                 workers: int, dtype: str = "auto",
                 engine_kwargs: dict[str, Any] | None = None) -> Iterable[tuple[int, Any]]: ...  # fmt: skip


def sweep_problems(config: EvalConfig) -> list[Problem]:
    """The problems of ``config``'s benchmark split (``evals.benchmarks.load_problems``), questions cued with
    ``config.compression`` (TokenSkip's gamma) when set."""
    problems = load_problems(config.benchmark, config.split, limit=config.limit, data_dir=config.data_dir)
    if config.compression is None:
        return problems
    from reasoner.prompts import compression_question

    return [
        dataclasses.replace(p, question=compression_question(p.question, config.compression))
        for p in problems
    ]


def run_sweep(
    config: EvalConfig,
    run_dir: RunDir,
    *,
    engine: Engine | None = None,
    reuse: bool = True,
    progress: bool | None = None,
    workers: int = 0,
    map_with_engines: MapWithEngines | None = None,
) -> SweepStats:
    """Run every unit of ``config`` that is not complete in ``run_dir`` (call ``run_dir.prepare`` first).

    ``engine``: a loaded engine (default: ``reasoner.engines.load_engine`` from the config, only if there is
    work left); ``reuse=False`` disables truncation reuse; ``progress``: tqdm bar (None: only on a terminal);
    ``workers > 0``: spread work units over that many engine replicas with ``map_with_engines`` (pass
    ``reasoner.dist.map_with_engines``: Ray actors; ``evals`` does not import ``reasoner.dist`` itself).
    """
    if workers > 0 and map_with_engines is None:
        raise ValueError(
            f"workers={workers} needs map_with_engines (pass reasoner.dist.map_with_engines, as `reasoner eval "
            "--workers` does)"
        )
    t0 = time.perf_counter()
    entries, budgets = config.entries(), config.budgets
    labels = [e.label for e in entries]
    units = work_units(sweep_problems(config), config.seeds, config.batch_size)
    done = {r.key for r in run_dir.read_rows()}
    todo = [u for u in units if not set(u.keys(labels, budgets)) <= done]
    stats = SweepStats(units_total=len(units))
    log.info("%d of %d work units to run (%d rows done)", len(todo), len(units), len(done))
    if not todo:
        return stats
    cells = len(entries) * len(budgets)
    bar = _progress_bar(len(units) * cells, (len(units) - len(todo)) * cells, progress)
    if workers > 0:
        assert map_with_engines is not None  # checked on entry
        append_manifest(run_dir.path, run_manifest(config, workers=workers))
        proxy: Any = _Spent()
        results = _remote_units(config, todo, workers, proxy, map_with_engines, reuse=reuse,
                                on_unit=lambda: bar.update(cells))  # fmt: skip
    else:
        if engine is None:
            engine = load_engine(config.engine, config.model, dtype=config.dtype,
                                 speculative=speculative_or_none(config.speculative))  # fmt: skip
        append_manifest(run_dir.path, run_manifest(config, engine))
        proxy = SweepEngine(engine, reuse=reuse)
        results = (run_unit(proxy, unit, entries, budgets, config, on_cell=bar.update) for unit in todo)
    try:
        for n, (_unit, rows) in enumerate(zip(todo, results, strict=True), 1):
            fresh = [r for r in rows if r.key not in done]
            run_dir.append(fresh)
            done.update(r.key for r in fresh)
            stats.units_run += 1
            stats.rows_written += len(fresh)
            bar.set_postfix(generated=proxy.spent, replayed=proxy.served, refresh=False)
            elapsed = time.perf_counter() - t0
            left = elapsed / n * (len(todo) - n)
            log.info("unit %d/%d done, %.0f s, ~%.0f s left", n, len(todo), elapsed, left)
    finally:
        bar.close()
    stats.spent_tokens, stats.served_tokens = proxy.spent, proxy.served
    stats.wall_s = time.perf_counter() - t0
    return stats


@dataclass
class _Spent:
    """Token counters summed over remote work units (what ``SweepEngine`` counts locally)."""

    spent: int = 0
    served: int = 0


def run_unit_remote(engine: Engine, job: tuple[WorkUnit, EvalConfig, bool]) -> tuple[list[Row], int, int]:
    """One work unit on ``engine`` inside an eval worker: (rows, tokens generated, tokens replayed)."""
    unit, config, reuse = job
    proxy = SweepEngine(engine, reuse=reuse)
    rows = run_unit(proxy, unit, config.entries(), config.budgets, config)
    return rows, proxy.spent, proxy.served


def _remote_units(config: EvalConfig, todo: Sequence[WorkUnit], workers: int, spent: _Spent,
                  map_with_engines: MapWithEngines, *, reuse: bool,
                  on_unit: Callable[[], Any]) -> Iterable[list[Row]]:  # fmt: skip
    """Rows of each unit of ``todo``, in order, computed by ``workers`` engine replicas
    (``map_with_engines``) as they free up; token counters summed into ``spent``. The model is resolved here,
    once, so the replicas load a directory (an alias is built in this process, not in each replica)."""
    jobs = [(unit, config, reuse) for unit in todo]
    ready: dict[int, list[Row]] = {}
    nxt = 0
    engine_kwargs = {"speculative": speculative_or_none(config.speculative)}
    for i, (rows, generated, replayed) in map_with_engines(run_unit_remote, jobs, engine=config.engine,
                                                           model=resolve(config.model), dtype=config.dtype,
                                                           workers=workers, engine_kwargs=engine_kwargs):  # fmt: skip
        ready[i] = rows
        spent.spent, spent.served = spent.spent + generated, spent.served + replayed
        on_unit()
        while nxt in ready:
            yield ready.pop(nxt)
            nxt += 1


def _progress_bar(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="cell",
        desc="eval",
        disable=None if enabled is None else not enabled,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def run_unit(
    engine: SweepEngine,
    unit: WorkUnit,
    entries: Sequence[StrategyEntry],
    budgets: Sequence[int],
    config: EvalConfig,
    on_cell: Callable[[], Any] | None = None,
) -> list[Row]:
    """Every strategy at every budget (largest first, so smaller ones replay) on one unit; graded rows.

    Live strategies (``Strategy.live``: real aborts) run before the others, so that no recording of full
    chains made by another strategy replays them: their aborts and wall times are real. The rows do not
    depend on the order (request seeds depend on the unit, the prompt and the sample index only)."""
    problems = list(unit.problems)
    engine.clear()
    engine.set_owners({p.id: render(engine.tokenizer, p.question) for p in problems})
    spec = SampleSpec(temperature=config.temperature, top_p=config.top_p, seed=unit.spec_seed)
    raw: list[tuple[str, int, Problem, StrategyResult, int, float]] = []
    for entry in sorted(entries, key=lambda e: not e.live):
        for budget in sorted(budgets, reverse=True):
            strategy = entry.build(budget)
            t0 = time.perf_counter()
            results = strategy.run_batch(engine, problems, dataclasses.replace(spec, max_tokens=budget))
            measured = (time.perf_counter() - t0) / len(problems)
            spent = engine.take_spent()
            for p, r in zip(problems, results, strict=True):
                raw.append((entry.label, budget, p, r, spent.get(p.id, 0), measured))
            if on_cell is not None:
                on_cell()
    engine.clear()
    return grade_rows(raw, unit.seed, config.grader)
