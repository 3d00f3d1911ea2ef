"""Our hooks on TRL's GRPOTrainer (mixed in by ``reasoner.train.trainer.trainer_class``); no trl import here.

One step, as TRL runs it, with our three hooks marked (*):

1. TRL's dataloader yields G prompts x ``num_generations`` rows; ``_generate_and_score_completions`` (*)
   stashes them and calls TRL's version, which calls ``rollout_func`` (*, ``_rollout``). The step's prompts
   are positions [s*G, (s+1)*G) of our own deterministic stream over the problems (a new shuffle each pass,
   seeded by ``trainer.seed``; G counts every process's prompts): a pure function of the step, so a resumed
   run and any number of processes see the same prompts (TRL's RepeatSampler restarts its shuffle when a run
   resumes at an epoch boundary); TRL's rows give only their count. Pruned prompts are swapped for fresh
   ones (``difficulty.prune``), the rollout source gets the latest weights if it is behind (``sync_weights``,
   merged LoRA weights included), ``collect_batch`` generates,
   scores and refills zero-signal groups (DAPO dynamic sampling), and the pass-rate tracker sees every group.
2. TRL builds the padded batch and asks ``_calculate_rewards`` (*) for rewards: we hand back the ones the
   rollout already computed (with the right gold answers for refilled prompts).
3. Back in our ``_generate_and_score_completions``: advantages are recomputed by ``process_advantages``
   (group | batch (DLER) | none normalisation, D3S sample and token selection) and the selection becomes
   TRL's ``tool_mask`` (a loss-only mask); TRL's loss (``loss_type``, ``epsilon``/``epsilon_high``
   clip-higher, ...) does the update.

At N data-parallel processes (``reasoner.train.collective``) every rank sees the global batch: every rank
knows the step's prompts, generates and scores a contiguous share of the groups (per-request seeds make a
sample independent of the rank that draws it), the shares are gathered, and every rank runs the
same deterministic code on the whole batch (pruning substitution, dynamic sampling and its refill rounds, the
pass-rate tracker, batch normalisation, D3S) before training on its own slice of whole groups. With a Ray
rollout pool (``rollout.workers > 0``) rank 0 generates everything and syncs the pool's weights.

Pipelined rollouts (``rollout.async_steps = k > 0``, ``reasoner.train.pipeline``): at the end of step s's
rollout the hooks plan steps s+1..s+k (prompts and substitutions, in the order a synchronous run would) and
submit their first-round generation, which runs while TRL updates on step s; step s+j takes it, syncs its
weights, and generates its refill rounds on-policy. Every group carries the weight version that sampled it;
stale rollouts are corrected with truncated importance weights (``reasoner.train.checks``), and checkpoints
record the in-flight batches.

After every weight sync the engine's logprobs of its sampled tokens are compared with the learner's
(``reasoner.train.sync``: ``sync/logprob_gap_mean|max``); a mean gap above ``rollout.max_logprob_gap`` stops
the run (stale or wrong weights). Runtime events that do not stop a run are logged and counted per step:
``verify/errors`` (verifier failures, graded ``error``) and ``reasoner/empty_completions`` (sent to TRL as a lone
EOS with logprob NaN, since TRL reads each completion's last token).

Papers: DLER arXiv 2510.15110 (github NVlabs/DLER), D3S arXiv 2509.22115, DAPO arXiv 2503.14476.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reasoner.advantages import rho_schedule
from reasoner.config import ConfigError, RecipeConfig
from reasoner.train.batch import Group, ProblemStream, RolloutBatch, Scorer, collect_batch
from reasoner.train.checks import PolicyChecks
from reasoner.train.collective import Collective, check_data_parallel, shard_bounds
from reasoner.train.difficulty import (
    DifficultyState,
    PassRateTracker,
    PromptPruner,
    stream_pass_rate,
)
from reasoner.train.pipeline import (
    OrderedRollout,
    PipelineHooks,
    importance_mode,
    load_inflight,
    save_inflight,
    source_versions,
)
from reasoner.train.postprocess import Processed, process_advantages
from reasoner.train.rollout import RolloutSource
from reasoner.train.sync import merged_weights
from reasoner.types import Problem, SampleSpec
from reasoner.verify import error_count

log = logging.getLogger(__name__)
STATE_FILE = "reasoner_state.json"
"""Our part of a checkpoint (difficulty tracker, pruner, refill stream position), next to TRL's files."""

__all__ = ["STATE_FILE", "GRPOHooks"]


class GRPOHooks(PolicyChecks, PipelineHooks):
    """Our hooks on top of GRPOTrainer (see the module docstring). Mixed in by ``trainer_class()``."""

    def __init__(
        self, *args: Any, recipe: RecipeConfig, problems: Sequence[Problem], rollout: RolloutSource,
        reward_names: Sequence[str], **kwargs: Any,
    ):  # fmt: skip
        self.recipe = recipe
        self.rollout: Any = OrderedRollout(rollout) if recipe.rollout.async_steps > 0 else rollout
        self._ahead = {}
        self._first_round: Any = None
        self._is_mode = importance_mode(recipe)
        self._is_stats = []
        d = recipe.difficulty
        pruner = PromptPruner(d.prune.skip_epochs, d.prune.min_seen) if d.prune.enabled else None
        self.difficulty = DifficultyState(PassRateTracker(d.momentum), pruner)
        self._stream = ProblemStream(problems, seed=recipe.rollout.seed)
        self._prompt_cache: dict[str, list[int]] = {}
        self._pending: RolloutBatch | None = None
        self._verify_errors = error_count()
        self.last_batch: RolloutBatch | None = None
        """The global batch of the latest step (groups as trained, with their problems and reward columns)."""
        self.last_processed: Processed | None = None
        """Advantages and loss mask of the latest step's global batch (every rank holds the same)."""
        self._batch_inputs: list[dict] | None = None
        self._timers: dict[str, float] = defaultdict(float)
        super().__init__(*args, rollout_func=self._rollout, **kwargs)
        self.reward_func_names = list(reward_names)
        from reasoner.train.metrics import StepTimer

        self.add_callback(StepTimer(self))
        self.scorer = Scorer(self.reward_funcs, self.reward_func_names, self.reward_weights.tolist(),
                             columns=self._columns, extra_kwargs=self._reward_kwargs)  # fmt: skip
        wanted = d.correct_reward or self.reward_func_names[0]
        if wanted not in self.reward_func_names:
            raise ConfigError(f"difficulty.correct_reward={wanted!r} is not one of the recipe's rewards")
        self._correct_index = self.reward_func_names.index(wanted)
        d3s = recipe.advantages.d3s
        self._want_entropies = d3s.enabled and min(d3s.rho_start, d3s.rho_end) < 1.0
        self.comm = Collective(timeout_s=self.args.ddp_timeout)
        self._order = ProblemStream(problems, seed=self.args.seed)
        check_data_parallel(self.args, self.comm.world)
        if self.is_fsdp_enabled and not self.accelerator.is_fsdp2:
            raise ConfigError("accelerate FSDP version 1 is not supported (its flat shards cannot be gathered "
                              "for the weight sync): set fsdp_version: 2 in the accelerate config")  # fmt: skip

    # ------------------------------------------------------------ rollout (TRL's rollout_func)

    def _rollout(self, prompts: list, trainer: Any) -> dict[str, list]:
        rows, n = self._batch_inputs, self.num_generations
        if rows is None or len(rows) != len(prompts) or len(rows) % n:
            raise RuntimeError("rollout_func called outside _generate_and_score_completions")
        epoch, local = int(self.state.epoch or 0), len(rows) // n
        step, count = self.state.global_step, local * self.comm.world
        plan = self._ahead.pop(step, None) or self._plan(step, count, epoch)
        if plan.first_round is not None:  # prefetched: wait for it, then the engine is free for the sync
            t0 = time.perf_counter()
            plan.first_round.result()
            self._timers["generate"] += time.perf_counter() - t0
        self._first_round = plan.first_round
        self._sync_if_stale()
        ds = self.recipe.advantages.dynamic_sampling
        batch = collect_batch(
            plan.problems, n=n, generate=self._generate_groups, score=self._score_groups,
            combine=self.scorer.combine, refill=self._take, dynamic_sampling=ds.enabled, eps=ds.eps,
            max_rounds=ds.max_rounds, oversample=ds.oversample,
        )  # fmt: skip
        if self.recipe.difficulty.track:
            seen: dict[str, list[bool]] = {}
            for g in batch.observed:  # first round first: a prompt's own group, not a later refill's
                seen.setdefault(g.problem.id, self._correct(g))
            rates = self.difficulty.tracker.rates
            batch.stats["stream_pass_rate"] = stream_pass_rate(plan.original, seen, rates)
            for g in batch.observed:
                self.difficulty.observe(g.problem.id, self._correct(g), epoch)
        batch.stats["substituted"] = float(plan.substituted)
        self._prefetch(step, count, epoch)
        self._pending = batch
        return self._rollout_output(batch, self._local_groups(local))

    def _local_groups(self, count: int) -> slice:
        """This rank's groups of the global batch: TRL's sampler hands rank r the r-th contiguous chunk."""
        return slice(self.comm.rank * count, (self.comm.rank + 1) * count)

    def _rollout_output(self, batch: RolloutBatch, local: slice) -> dict[str, list]:
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": []}
        eos, empty = self.processing_class.eos_token_id, 0
        groups = batch.groups[local]
        for g in groups:
            for c in g.completions:
                ids, lps = list(c.token_ids), list(c.require_logprobs("GRPO rollout logprobs"))
                if not ids:  # TRL indexes ids[-1]: an empty completion becomes a lone EOS, counted and logged
                    ids, lps, empty = [eos], [math.nan], empty + 1  # NaN: no engine logprob (weight 1)
                out["prompt_ids"].append(list(g.prompt_ids))
                out["completion_ids"].append(ids)
                out["logprobs"].append(lps)
        if empty:
            log.warning("step %d: %d empty completion(s) on this rank, each sent to TRL as a lone EOS with "
                        "logprob NaN (metric reasoner/empty_completions)", self.state.global_step, empty)  # fmt: skip
        batch.stats["empty_completions"] = float(empty)
        for key in groups[0].columns:
            out[key] = [v for g in groups for v in g.columns[key]]
        return out

    def _substitute_pruned(self, problems: list[Problem], epoch: int) -> tuple[list[Problem], int]:
        pruner = self.difficulty.pruner
        if pruner is None:
            return problems, 0
        out: list[Problem] = []
        subs = 0
        for p in problems:
            if pruner.is_skipped(p.id, epoch):
                fresh = self._take(1, {q.id for q in problems} | {q.id for q in out})
                if fresh:
                    out.append(fresh[0])
                    subs += 1
                    continue
            out.append(p)
        return out, subs

    def _take(self, count: int, exclude: set[str]) -> list[Problem]:
        """Fresh problems from the deterministic stream, skipping pruned ones (refill and substitution)."""
        pruner, epoch = self.difficulty.pruner, int(self.state.epoch or 0)
        allow = (lambda p: not pruner.is_skipped(p.id, epoch)) if pruner else None
        self._stream.pos = self.difficulty.stream_pos
        fresh = self._stream.take(count, exclude, allow)
        self.difficulty.stream_pos = self._stream.pos
        return fresh

    def _prompt_ids(self, problem: Problem) -> list[int]:
        if problem.id not in self._prompt_cache:
            from reasoner.prompts import ANSWER_INSTRUCTION, render

            data = self.recipe.data
            instruction = ANSWER_INSTRUCTION if data.instruction is None else (data.instruction or None)
            self._prompt_cache[problem.id] = render(
                self.processing_class, problem.question, instruction=instruction, system=data.system
            )
        return self._prompt_cache[problem.id]

    def _sample_spec(self, round_: int, step: int | None = None) -> SampleSpec:
        """Rollout sampling for ``step`` (default: the current one): logprobs on, as the importance weights and
        the weight-sync check read them."""
        a, step = self.args, self.state.global_step if step is None else step
        seed = self.recipe.rollout.seed + 1_000_003 * step + 10_007 * round_
        return SampleSpec(n=self.num_generations, max_tokens=a.max_completion_length,
                          temperature=a.temperature, top_p=a.top_p, top_k=a.top_k or 0, seed=seed,
                          logprobs=True)  # fmt: skip

    def _share(self, total: int, generation: bool) -> tuple[int, int]:
        """This rank's contiguous share of ``total`` groups; a Ray pool is driven by rank 0 alone."""
        if generation and self.recipe.rollout.workers > 0:
            return (0, total) if self.comm.rank == 0 else (total, total)
        return shard_bounds(total, self.comm.world, self.comm.rank)

    def _generate_groups(self, problems: Sequence[Problem], round_: int):
        """Every group's prompt ids, completions and weight version; this rank generates its share (or takes the
        prefetched first round), the shares are gathered."""
        ids = [self._prompt_ids(p) for p in problems]
        lo, hi = self._share(len(problems), generation=True)
        if round_ == 0 and self._first_round is not None:
            mine, versions = self._first_round.result()
            self._first_round = None
        else:
            t0 = time.perf_counter()
            mine = self.rollout.generate(
                ids[lo:hi], self._sample_spec(round_), entropies=self._want_entropies
            )
            versions = source_versions(self.rollout, len(mine))
            self._timers["generate"] += time.perf_counter() - t0
        both = self.comm.concat(list(zip(mine, versions, strict=True)), "completions", self.state.global_step)
        return ids, [g for g, _ in both], [v for _, v in both]

    def _score_groups(self, problems, groups):
        """Rewards and reward columns of every group; this rank scores its share, the shares are gathered."""
        lo, hi = self._share(len(problems), generation=False)
        t0 = time.perf_counter()
        mine = self.scorer(problems[lo:hi], groups[lo:hi]) if hi > lo else None
        self._timers["score"] += time.perf_counter() - t0
        parts = [p for p in self.comm.all_gather(mine, "rewards", self.state.global_step) if p is not None]
        rewards = torch.cat([r for r, _ in parts])
        columns = {k: [v for _, cols in parts for v in cols[k]] for k in parts[0][1]}
        return rewards, columns

    def _columns(self, problem: Problem) -> dict[str, Any]:
        cols: dict[str, Any] = {"answer": problem.answer, "problem_id": problem.id}
        if (
            self.recipe.difficulty.track
        ):  # running pass rate, None when unseen (difficulty_truncation reads it)
            cols["pass_rate"] = self.difficulty.tracker.rate(problem.id)
        return cols

    def _reward_kwargs(self) -> dict[str, Any]:
        return {"trainer_state": self.state, "log_metric": self._log_metric}

    def _correct(self, group: Group) -> list[bool]:
        values = group.rewards[:, self._correct_index]
        return [bool(v > self.recipe.difficulty.correct_threshold) for v in values.tolist()]

    def _sync_if_stale(self) -> None:
        """Load the latest policy weights into the rollout source if it is behind the optimizer. Every rank
        gathers (a sharded learner needs all of them); with a Ray pool only rank 0 sends."""
        step = self.state.global_step
        if self.rollout.version == step:
            return
        t0 = time.perf_counter()
        with merged_weights(self.accelerator.unwrap_model(self.model)) as weights:
            if self.recipe.rollout.workers == 0 or self.comm.rank == 0:
                self.rollout.sync_weights(weights, version=step)
            else:
                self.rollout.version = step
        self._timers["sync"] += time.perf_counter() - t0

    # ------------------------------------------------------------ TRL hooks

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, Any]:
        self._batch_inputs = inputs
        t0 = time.perf_counter()
        try:
            out = super()._generate_and_score_completions(inputs)
        finally:
            self._batch_inputs = None
        batch, self._pending = self._pending, None
        if batch is None:  # TRL's step always calls rollout_func (_rollout), which sets it
            raise RuntimeError("GRPO step without a rollout batch: rollout_func was not called")
        self.last_batch = batch
        t1 = time.perf_counter()
        out = self._postprocess(out, batch)
        self._timers["advantages"] += time.perf_counter() - t1
        self._timers["rollout"] += time.perf_counter() - t0
        self._log_batch(batch)
        return out

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """The rewards of the global batch (TRL expects them gathered over processes and slices them)."""
        if self._pending is None:
            return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._pending.rewards.to(self.accelerator.device)

    def _postprocess(self, out: dict[str, Any], batch: RolloutBatch) -> dict[str, Any]:
        """Advantages and loss mask over the global batch (every rank computes the same), then this rank's
        rows; TRL gets them as ``advantages`` and ``tool_mask`` (loss-only)."""
        adv, d3s, n = self.recipe.advantages, self.recipe.advantages.d3s, self.num_generations
        mask, step = out["completion_mask"], self.state.global_step
        rows, width = mask.shape
        full = self.comm.cat_rows(mask, "completion masks", step)
        rho, entropies = 1.0, None
        if self._want_entropies:
            total = d3s.schedule_steps or max(self.state.max_steps, 1)
            rho = rho_schedule(step, total, d3s.rho_start, d3s.rho_end, d3s.schedule)
            entropies = _pad_rows(
                [c.entropies or () for g in batch.groups for c in g.completions], full.shape
            )
        processed = process_advantages(
            self.scorer.combine(batch.rewards), full, n, keep_groups=batch.keep,
            normalize=adv.normalize, eps=adv.eps, token_weighted=adv.token_weighted,
            sample_k=d3s.sample_k if d3s.enabled else None, rho=rho, entropies=entropies, scope=d3s.scope,
        )  # fmt: skip
        self.last_processed = processed
        device, local = mask.device, slice(self.comm.rank * rows, (self.comm.rank + 1) * rows)
        out["advantages"] = processed.advantages[local].to(device)
        out["tool_mask"] = processed.loss_mask[local, :width].to(device)  # our rollouts never set TRL's own
        out["num_items_in_batch"] = processed.loss_mask.sum().to(device)
        groups = batch.groups[self._local_groups(rows // n)]
        self._check_sync(out, groups, [g.version for g in groups for _ in g.completions])
        logged = self._logs["advantages"]
        for _ in range(min(len(processed.advantages), len(logged))):
            logged.pop()
        logged.extend(processed.advantages.tolist())
        for key, value in processed.stats.items():
            self._metrics["train"][f"reasoner/{key}"].append(value)
        if self._want_entropies:
            self._metrics["train"]["reasoner/d3s_rho"].append(rho)
        return out

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """TRL's ``train``; afterwards the rollout source holds the final weights (for evaluation)."""
        try:
            out = super().train(*args, **kwargs)
        except BaseException:
            self._drop_prefetched(failed=True)
            raise
        self._drop_prefetched(failed=False)
        self._sync_if_stale()
        return out

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        if self._ahead:  # every rank records its share of the in-flight batches
            save_inflight(folder, [self._ahead[s] for s in sorted(self._ahead)], self.comm.rank)
        if self.args.should_save:
            state = {"global_step": self.state.global_step, "difficulty": self.difficulty.state_dict()}
            (folder / STATE_FILE).write_text(json.dumps(state))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = Path(resume_from_checkpoint) / STATE_FILE
        if path.exists():
            self.difficulty.load_state_dict(json.loads(path.read_text())["difficulty"])
            log.info("resumed difficulty state from %s", path)
        self._ahead = load_inflight(Path(resume_from_checkpoint), self._order.problems, self.comm.rank)
        self.rollout.version = -1  # the engine still has the initial weights: sync before generating


def _pad_rows(rows: Sequence[Sequence[float]], shape: torch.Size) -> torch.Tensor:
    out = torch.zeros(shape, dtype=torch.float32)
    for i, row in enumerate(rows):
        k = min(len(row), shape[1])
        if k:
            out[i, :k] = torch.tensor(row[:k], dtype=torch.float32)
    return out
