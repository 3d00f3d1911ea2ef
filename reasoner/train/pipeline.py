"""Pipelined rollouts (``rollout.async_steps``): generate step s+1 while the learner updates on step s.

A synchronous RL step is generate -> score -> update -> sync, one after the other, so the rollout engines sit
idle during the update and the learner during generation. With ``async_steps = k > 0`` the trainer's hooks
(``reasoner.train.hooks``), at the end of step s's rollout, plan steps s+1..s+k (their prompts, with pruning's
substitutions) and submit their first-round generation to the rollout source; TRL then updates on step s
while those batches generate. At step s+j the hooks take the prefetched completions, sync the new weights
(version s+j) and run dynamic sampling's refill rounds on-policy. So a step costs about
``max(generate, update) + sync`` instead of the sum (verl's one-step-off and fully async modes, OpenRLHF's
async training, prime-rl, TRL's AsyncGRPOTrainer), and first-round rollouts are up to k versions old: each group
records the version that sampled it, the loss is corrected with truncated importance weights
(``reasoner.offpolicy``), and ``async/staleness_*`` is logged per step.

``OrderedRollout`` wraps any rollout source (one in-process engine, a Ray pool) and runs every call to it on
one background thread, in the order submitted: a weight sync submitted after a generation waits for it, and
a generation submitted after a sync uses the new weights. A sync submitted while nothing is queued runs at
once (the caller waits, no copy); one queued behind work snapshots the weights first, since the learner will
change them. A failed job fails every later job, so nothing generates from weights that did not load.

Checkpoints record the in-flight batches (``INFLIGHT_FILE`` next to TRL's files, one per learner rank:
prompts, that rank's share of the completions, versions), so a run killed between steps and resumed trains
the same batches as one that never stopped: nothing generated is lost or used twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasoner.config import ConfigError, RecipeConfig
from reasoner.offpolicy import ISMode
from reasoner.train.rollout import RolloutSource
from reasoner.types import Completion, Problem, SampleSpec

log = logging.getLogger(__name__)

__all__ = [
    "INFLIGHT_FILE",
    "OrderedRollout",
    "PipelineHooks",
    "StepPlan",
    "check_async",
    "engine_logprobs_mode",
    "importance_mode",
    "load_inflight",
    "save_inflight",
    "source_versions",
]

INFLIGHT_FILE = "reasoner_inflight.{rank}.json"
"""In-flight (prefetched) batches of a checkpoint, one entry per future step; one file per learner rank."""

Generated = tuple[list[list[Completion]], list[int]]
"""A generation's groups (this rank's share) and the weight version of each group."""


def source_versions(source: Any, count: int) -> list[int]:
    """The weight version of each of the ``count`` groups ``source`` just generated: its ``last_versions``
    (a Ray pool's workers may differ) when it has them, else its ``version`` for all."""
    versions = getattr(source, "last_versions", None)
    if versions is not None and len(versions) == count:
        return [int(v) for v in versions]
    return [int(source.version)] * count


class OrderedRollout:
    """A rollout source whose calls run on one background thread, in order (module docstring)."""

    def __init__(self, source: RolloutSource):
        self.source, self.tokenizer = source, source.tokenizer
        self.version: int = source.version
        """The version the next submitted generation will use (the latest sync submitted)."""
        self.last_versions: list[int] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner-rollout")
        self._jobs: list[Future] = []
        self._lock = threading.Lock()
        self._failed: BaseException | None = None

    def _run(self, fn: Any, *args: Any) -> Any:
        if self._failed is not None:  # a sync or generation before this one failed: do not go on past it
            raise RuntimeError("an earlier rollout job failed") from self._failed
        try:
            return fn(*args)
        except BaseException as err:
            self._failed = err
            raise

    def _submit(self, fn: Any, *args: Any) -> Future:
        with self._lock:
            self._jobs = [j for j in self._jobs if not j.done()]
            job = self._executor.submit(self._run, fn, *args)
            self._jobs.append(job)
            return job

    def busy(self) -> bool:
        """Whether a submitted job has not finished."""
        return any(not j.done() for j in self._jobs)

    def submit(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Future:
        """Queue a generation; the future gives ``(groups, versions)``."""
        prompts = [list(p) for p in prompts]

        def job() -> Generated:
            groups = self.source.generate(prompts, spec, entropies=entropies) if prompts else []
            return groups, source_versions(self.source, len(groups))

        return self._submit(job)

    def generate(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> list[list[Completion]]:
        groups, self.last_versions = self.submit(prompts, spec, entropies=entropies).result()
        return groups

    def sync_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        """Queue a weight load; it runs now (the caller waits) when nothing is queued, else after the queued
        jobs, from a snapshot of the tensors."""
        self.version = version
        if not self.busy():
            self._submit(self.source.sync_weights, list(named_tensors), version).result()
            return
        snapshot = [(name, t.detach().clone()) for name, t in named_tensors]
        self._submit(self.source.sync_weights, snapshot, version)

    def drain(self) -> None:
        """Wait for every submitted job; re-raise the first failure."""
        for job in list(self._jobs):
            job.result()
        if self._failed is not None:
            raise RuntimeError("a rollout job failed") from self._failed

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self._executor.shutdown(wait=True)
            self.source.close()


@dataclass
class StepPlan:
    """One step's first-round prompts, decided when the step is planned (at the step, or ahead of it)."""

    step: int
    problems: list[Problem]
    original: list[str]
    """Problem ids before pruning's substitutions (the stream pass rate is measured on them)."""
    substituted: int
    first_round: Future | None = None
    """The prefetched first-round generation (``(groups, versions)``, this rank's share); None: generate at
    the step."""


_Host: Any = object
"""The base of the mixin, typed Any: ``state``, ``recipe``, ``rollout``, ``_order``, ``_substitute_pruned``,
``_share``, ``_prompt_ids`` and ``_sample_spec`` come from the GRPO hooks it is mixed into
(``reasoner.train.hooks``)."""


class PipelineHooks(_Host):
    """The GRPO hooks' step planning (a step's prompts, at the step or ahead of it) and pipelining: submit the
    steps ahead, drop what is left in flight at the end."""

    _ahead: dict[int, StepPlan]
    """Steps planned ahead with their first-round generation in flight (``rollout.async_steps``)."""

    def _plan(self, step: int, count: int, epoch: int) -> StepPlan:
        """Step ``step``'s first-round prompts: positions [s*count, (s+1)*count) of the order stream
        (``reasoner.train.hooks`` docstring), with pruned prompts swapped for fresh ones."""
        if count > len(self._order.problems):
            have = len(self._order.problems)
            raise ConfigError(f"data: a step needs {count} prompts but there are only {have} problems; raise "
                              "data.n or lower trainer.per_device_train_batch_size")  # fmt: skip
        self._order.pos = step * count
        problems = self._order.take(count)
        original = [p.id for p in problems]  # before pruning's substitutions
        problems, substituted = self._substitute_pruned(problems, epoch)
        return StepPlan(step, problems, original, substituted)

    def _prefetch(self, step: int, count: int, epoch: int) -> None:
        """Pipelined rollouts: plan steps step+1..step+async_steps and submit their first-round generation
        (it runs while TRL updates on this step; ``reasoner.train.pipeline``)."""
        last = min(step + self.recipe.rollout.async_steps, self.state.max_steps - 1)
        for ahead in range(step + 1, last + 1):
            if ahead in self._ahead:
                continue
            plan = self._plan(ahead, count, epoch)
            ids = [self._prompt_ids(p) for p in plan.problems]
            lo, hi = self._share(len(ids), generation=True)
            spec = self._sample_spec(0, ahead)
            plan.first_round = self.rollout.submit(ids[lo:hi], spec, entropies=self._want_entropies)
            self._ahead[ahead] = plan

    def _drop_prefetched(self, failed: bool) -> None:
        """After ``train``: wait for the generations still in flight (a run stopped early by a callback leaves
        them; a checkpoint has already recorded them) and drop them. After a failure their errors are logged,
        not raised over the failure's own."""
        ahead, self._ahead = self._ahead, {}
        if not isinstance(self.rollout, OrderedRollout):
            return
        try:
            self.rollout.drain()
        except Exception:
            if not failed:
                raise
            log.exception("a prefetched rollout failed too")
        if ahead:
            log.info("dropped %d prefetched batch(es) past the step the run stopped at", len(ahead))


def importance_mode(recipe: RecipeConfig) -> ISMode | None:
    """The off-policy correction a recipe asks for (``rollout.importance_sampling``; auto resolved), or None."""
    r = recipe.rollout
    mode = r.importance_sampling
    if mode == "auto":
        stale = r.async_steps > 0 or (r.workers > 0 and recipe.ray.max_lag > 0)
        return "token_truncate" if stale else None
    return None if mode == "off" else mode


def engine_logprobs_mode(recipe: RecipeConfig) -> str:
    """What the rollout engines' logprobs must be of (``Engine.logprobs_mode``): with the correction on, the
    distribution they sample from (``processed``: temperature, top-k, top-p applied), as the importance weights'
    behaviour policy ``mu`` must be; otherwise the model's raw one (what ``raw`` engines report)."""
    return "raw" if importance_mode(recipe) is None else "processed"


def check_async(recipe: RecipeConfig, args: Any) -> None:
    """Settings that contradict pipelined rollouts or their correction: a ConfigError naming them."""
    r = recipe.rollout
    if r.async_steps > 0 and r.workers > 0 and recipe.ray.max_lag < r.async_steps:
        raise ConfigError(
            f"rollout.async_steps={r.async_steps} makes rollouts up to {r.async_steps} versions old, but the Ray "
            f"pool allows ray.max_lag={recipe.ray.max_lag}: set ray.max_lag >= {r.async_steps}"
        )
    if importance_mode(recipe) is not None and args.loss_type == "vespo":
        raise ConfigError(
            "rollout.importance_sampling does not combine with trainer.loss_type='vespo' (VESPO folds its own "
            "importance weights into the loss); set rollout.importance_sampling=off"
        )


# ---------------------------------------------------------------- checkpointing in-flight batches


def save_inflight(folder: Path, plans: Iterable[StepPlan], rank: int = 0) -> None:
    """Wait for the prefetched generations of ``plans`` and write them to ``folder / INFLIGHT_FILE``."""
    entries = []
    for plan in plans:
        groups, versions = plan.first_round.result() if plan.first_round is not None else (None, None)
        entries.append({
            "step": plan.step, "problems": [p.id for p in plan.problems], "original": plan.original,
            "substituted": plan.substituted, "versions": versions,
            "groups": None if groups is None else [[dataclasses.asdict(c) for c in g] for g in groups],
        })  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INFLIGHT_FILE.format(rank=rank)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    tmp.replace(path)


def load_inflight(folder: Path, problems: Sequence[Problem], rank: int = 0) -> dict[int, StepPlan]:
    """The in-flight batches a checkpoint recorded (``save_inflight``), as plans with finished futures; none
    when it recorded none (a synchronous run's checkpoint: its next step generates as usual)."""
    path = folder / INFLIGHT_FILE.format(rank=rank)
    if not path.exists():
        return {}
    by_id = {p.id: p for p in problems}
    plans = {}
    for e in json.loads(path.read_text()):
        missing = [i for i in e["problems"] if i not in by_id]
        if missing:
            raise ConfigError(
                f"{path}: the checkpoint's in-flight problems {missing[:3]} are not in the data"
            )
        future: Future | None = None
        if e["groups"] is not None:
            future = Future()
            future.set_result(([[_completion(c) for c in g] for g in e["groups"]], list(e["versions"])))
        plans[e["step"]] = StepPlan(e["step"], [by_id[i] for i in e["problems"]], e["original"],
                                    e["substituted"], future)  # fmt: skip
    log.info("resumed %d in-flight rollout batch(es) from %s", len(plans), path)
    return plans


def _completion(d: dict[str, Any]) -> Completion:
    d = dict(d)
    for key in ("token_ids", "logprobs", "entropies"):
        if d.get(key) is not None:
            d[key] = tuple(d[key])
    if d.get("top_logprobs") is not None:
        d["top_logprobs"] = tuple({int(t): lp for t, lp in pos.items()} for pos in d["top_logprobs"])
    return Completion(**d)
