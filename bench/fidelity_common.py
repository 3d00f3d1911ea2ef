"""What the fidelity table's rows share (``bench/fidelity.py``): the run context and grading helpers."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoner.types import Problem, SampleSpec, StrategyResult

log = logging.getLogger("fidelity")


@dataclass
class Ctx:
    """What rows share: the problems, the sampling spec, a lazily loaded engine and a memo of strategy runs."""

    problems: list[Problem]
    spec: SampleSpec
    chunk: int
    load: Callable[[], Any]
    """Loads the organism's vLLM engine (the first strategy run calls it)."""
    model: Callable[[], str] = lambda: "overthinker"
    """The organism's directory (built on first call)."""
    out: Path = Path("runs/fidelity")
    """Where rows cache their numbers and training runs their models (``train/<label>-<hash>/``)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The run's settings (organism variant, problems, seeds, sampling): part of every cache key."""
    fresh: bool = False
    """Recompute training runs and evaluations cached by earlier processes (``--fresh``)."""
    engine: Any = None
    made: set[Path] = field(default_factory=set)
    """Cache files written by this process (``fresh`` reuses these)."""
    memo: dict[str, tuple[list[StrategyResult], float]] = field(default_factory=dict)

    def run(self, name: str, params: dict[str, str], offset: int = 0) -> tuple[list[StrategyResult], float]:
        """``build_strategy(name, params)`` on every problem (seed ``spec.seed + offset``), chunk by chunk:
        the results and the summed wall time of the chunks (memoized)."""
        from reasoner.strategies import build_strategy
        from reasoner.strategies.base import derive

        key = json.dumps([name, params, offset])
        if key not in self.memo:
            if self.engine is None:
                self.engine = self.load()
            spec = derive(self.spec, seed=(self.spec.seed or 0) + offset)
            results, wall = [], 0.0
            for lo in range(0, len(self.problems), self.chunk):
                t = time.perf_counter()
                results += build_strategy(name, params).run_batch(
                    self.engine, self.problems[lo : lo + self.chunk], spec
                )
                wall += time.perf_counter() - t
            log.info("%s %s seed+%d: %.1fs", name, params, offset, wall)
            self.memo[key] = results, wall
        return self.memo[key]

    def release(self) -> None:
        """Close the organism's engine (the next strategy run or evaluation reloads it). Called before another
        vLLM engine is built in this process: closing a vLLM engine tears down the process-wide parallel state
        that every other live one uses (the survivor then fails with "pipeline model parallel group is not
        initialized"), so one engine is live at a time."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def cached(self, path: Path) -> bool:
        """Whether ``path`` holds a result to reuse: it exists, and ``fresh`` is off or this process wrote it."""
        return path.exists() and (not self.fresh or path in self.made)

    def key(self, *parts: Any) -> str:
        """A short hash of ``parts`` and the run's settings (a cache key)."""
        blob = json.dumps([parts, self.settings, RUN_VERSION], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def evaluated(self, label: str, model_dir: str) -> dict[str, Any]:
        """``held_out`` numbers of the model in ``model_dir`` (a fresh vLLM engine; the organism's own engine
        when it is the organism), cached in ``out/eval/<label>-<key>.json``."""
        path = self.out / "eval" / f"{label}-{self.key(label, model_dir)}.json"
        if self.cached(path):
            return json.loads(path.read_text())
        if model_dir == self.model():
            if self.engine is None:
                self.engine = self.load()
            result = held_out(self.engine, self.problems, self.spec)
        else:
            from reasoner.engines import load_engine

            self.release()
            engine = load_engine("vllm", model_dir, dtype="float32", seed=self.spec.seed or 0)
            try:
                result = held_out(engine, self.problems, self.spec)
            finally:
                engine.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
        self.made.add(path)
        return result

    def trained(self, label: str, recipe: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
        """Train ``recipe`` from the organism (``model.name``) with ``overrides`` into
        ``out/train/<label>-<key>/`` (kept: merges read it), then evaluate the saved model (``evaluated``):
        ``{"dir", "train_s", "steps", "history": metrics.jsonl's training records, "eval"}``. Cached: a run
        whose ``result.json`` exists is not retrained."""
        overrides = [f"model.name={self.model()}", *overrides]
        out = self.out / "train" / f"{label}-{self.key(recipe, overrides)}"
        result_path = out / "result.json"
        if self.cached(result_path):
            return json.loads(result_path.read_text())
        from reasoner.train.cli import train_recipe

        if out.exists():
            shutil.rmtree(out)  # an interrupted run: start it again
        self.release()  # RL recipes build rollout engines
        t0 = time.perf_counter()
        args = [*overrides, f"trainer.output_dir={out}", "trainer.save_strategy=no"]
        trainer = train_recipe(recipe, args, quiet=True)
        train_s, steps = time.perf_counter() - t0, trainer.state.global_step
        del trainer
        log.info("trained %s (%s, %d steps) in %.0fs", label, recipe, steps, train_s)
        lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
        history = [r for r in map(json.loads, lines) if "loss" in r or "reward" in r]
        result = {"dir": str(out), "train_s": train_s, "steps": steps, "history": history,
                  "eval": self.evaluated(label, str(out))}  # fmt: skip
        result_path.write_text(json.dumps(result, indent=1))
        self.made.add(result_path)
        return result


RUN_VERSION = 1
"""Part of the training and evaluation cache keys: bump when ``held_out`` or ``Ctx.trained`` change."""
EVAL_SAMPLES = 4
"""Samples per problem in ``held_out`` (accuracy is avg@EVAL_SAMPLES)."""


def held_out(engine: Any, problems: Sequence[Problem], spec: SampleSpec) -> dict[str, Any]:
    """``EVAL_SAMPLES`` samples per problem at ``spec``'s sampling: accuracy (%), mean response tokens, mean
    thinking tokens (to ``</think>``; all of it when unclosed), truncated fraction; and per level (the problem's
    ``meta["level"]``) accuracy and mean response tokens."""
    from common import graded_samples, thinking

    from reasoner.strategies.base import derive

    rows = graded_samples(engine, engine.tokenizer, problems, derive(spec, n=EVAL_SAMPLES))
    levels: dict[str, list[int]] = defaultdict(list)
    for i, (p, _, _) in enumerate(rows):
        levels[str(p.meta.get("level"))].append(i)

    def summary(idx: Sequence[int]) -> dict[str, float]:
        return {
            "acc": pct([rows[i][2] for i in idx]),
            "length": statistics.mean(rows[i][1].num_tokens for i in idx),
        }

    return summary(range(len(rows))) | {
        "thinking": statistics.mean(thinking(c) for _, c, _ in rows),
        "truncated": statistics.mean(c.finish_reason == "length" for _, c, _ in rows),
        "by_level": {k: summary(v) for k, v in sorted(levels.items())},
    }


def graded(golds: Sequence[str], answers: Sequence[str | None]) -> list[bool]:
    """Verdicts of extracted answers (None: no answer, wrong) by ``reasoner.verify.grade_many``."""
    from reasoner.verify import grade_many

    verdicts = grade_many(list(golds), ["" if a is None else f"\\boxed{{{a}}}" for a in answers])
    return [v.correct for v in verdicts]


def pct(flags: Sequence[bool]) -> float:
    return 100 * statistics.mean(flags) if flags else 0.0


def final_acc(ctx: Ctx, results: Sequence[StrategyResult]) -> float:
    return pct(graded([p.answer for p in ctx.problems], [r.answer for r in results]))


def tokens(results: Sequence[StrategyResult], what: str = "generated") -> int:
    return sum(getattr(r.tokens, what) for r in results)


def chain_verdicts(ctx: Ctx, results: Sequence[StrategyResult]) -> list[list[bool]]:
    """Per problem, each completion's verdict (its text graded against the gold)."""
    from reasoner.verify import grade_many

    golds = [p.answer for p, r in zip(ctx.problems, results, strict=True) for _ in r.completions]
    flat = [v.correct for v in grade_many(golds, [c.text for r in results for c in r.completions])]
    out, i = [], 0
    for r in results:
        out.append(flat[i : i + len(r.completions)])
        i += len(r.completions)
    return out


def times(a: float, b: float) -> str:
    """``a`` as a multiple of ``b`` (``0.44x``)."""
    return f"{a / b:.2f}x" if b else "n/a"


def acc_len(e: Mapping[str, Any]) -> str:
    """An evaluation's accuracy and mean response length, as the rows show them."""
    return f"{e['acc']:.1f}% / {e['length']:.0f} tok"
