"""Our hooks on TRL's GRPOTrainer (mixed in by ``reasoner.train.trainer.trainer_class``); no trl import here.

One step, as TRL runs it, with our three hooks marked (*):

1. TRL's dataloader yields G prompts x ``num_generations`` rows; ``_generate_and_score_completions`` (*)
   stashes them and calls TRL's version, which calls ``rollout_func`` (*, ``_rollout``):
   pruned prompts are swapped for fresh ones (``difficulty.prune``), the rollout source gets the latest
   weights if it is behind (``sync_weights``, merged LoRA weights included), ``collect_batch`` generates,
   scores and refills zero-signal groups (DAPO dynamic sampling), and the pass-rate tracker sees every group.
2. TRL builds the padded batch and asks ``_calculate_rewards`` (*) for rewards: we hand back the ones the
   rollout already computed (with the right gold answers for refilled prompts).
3. Back in our ``_generate_and_score_completions``: advantages are recomputed by ``process_advantages``
   (group | batch (DLER) | none normalisation, D3S sample and token selection) and the selection becomes
   TRL's ``tool_mask`` (a loss-only mask); TRL's loss (``loss_type``, ``epsilon``/``epsilon_high``
   clip-higher, ...) does the update.

Papers: DLER arXiv 2510.15110 (github NVlabs/DLER), D3S arXiv 2509.22115, DAPO arXiv 2503.14476.
Multi-process (accelerate) training is not handled here: batch normalisation and dynamic sampling act on each
process's share of the batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from reasoner.advantages import rho_schedule
from reasoner.config import ConfigError, RecipeConfig
from reasoner.train.batch import Group, ProblemStream, RolloutBatch, Scorer, collect_batch
from reasoner.train.difficulty import (
    DifficultyState,
    PassRateTracker,
    PromptPruner,
    da_cap,
    pass_rate_histogram,
)
from reasoner.train.postprocess import process_advantages
from reasoner.train.rollout import RolloutSource
from reasoner.types import Problem, SampleSpec

log = logging.getLogger(__name__)
STATE_FILE = "reasoner_state.json"
"""Our part of a checkpoint (difficulty tracker, pruner, refill stream position), next to TRL's files."""

__all__ = ["STATE_FILE", "GRPOHooks", "merged_weights", "named_weights"]


def named_weights(model: Any) -> list[tuple[str, torch.Tensor]]:
    """HF state-dict names -> tensors of a plain or (merged) PEFT model, adapter tensors left out.

    Taken from ``state_dict()``, not ``named_parameters()``: tied weights (``lm_head.weight`` sharing the
    embedding) must be sent too, or vLLM's layerwise reload leaves its LM head unloaded."""
    peft = hasattr(model, "peft_config")
    out = []
    for name, tensor in model.state_dict().items():
        if peft:
            if "lora_" in name or "original_module" in name:
                continue
            name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            name = name.replace("modules_to_save.default.", "")
        out.append((name, tensor.detach()))
    return out


@contextlib.contextmanager
def merged_weights(model: Any) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """The model's weights with any LoRA adapter merged in (unmerged again on exit)."""
    peft = hasattr(model, "peft_config") and hasattr(model, "merge_adapter")
    with torch.no_grad():
        if peft:
            model.merge_adapter()
        try:
            yield named_weights(model)
        finally:
            if peft:
                model.unmerge_adapter()


class GRPOHooks:
    """Our hooks on top of GRPOTrainer (see the module docstring). Mixed in by ``trainer_class()``."""

    def __init__(
        self, *args: Any, recipe: RecipeConfig, problems: Sequence[Problem], rollout: RolloutSource,
        reward_names: Sequence[str], **kwargs: Any,
    ):  # fmt: skip
        self.recipe, self.rollout = recipe, rollout
        self.problems = {p.id: p for p in problems}
        d = recipe.difficulty
        pruner = PromptPruner(d.prune.skip_epochs, d.prune.min_seen) if d.prune.enabled else None
        self.difficulty = DifficultyState(PassRateTracker(d.momentum), pruner)
        self._stream = ProblemStream(problems, seed=recipe.rollout.seed)
        self._prompt_cache: dict[str, list[int]] = {}
        self._pending: RolloutBatch | None = None
        self.last_batch: RolloutBatch | None = None
        """The batch of the latest step (groups as trained, with their problems and reward columns)."""
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

    # ------------------------------------------------------------ rollout (TRL's rollout_func)

    def _rollout(self, prompts: list, trainer: Any) -> dict[str, list]:
        rows, n = self._batch_inputs, self.num_generations
        if rows is None or len(rows) != len(prompts) or len(rows) % n:
            raise RuntimeError("rollout_func called outside _generate_and_score_completions")
        epoch = int(self.state.epoch or 0)
        problems = [self.problems[rows[i]["problem_id"]] for i in range(0, len(rows), n)]
        problems, substituted = self._substitute_pruned(problems, epoch)
        self._sync_if_stale()
        ds = self.recipe.advantages.dynamic_sampling
        batch = collect_batch(
            problems, n=n, generate=self._generate_groups, score=self._score_groups,
            combine=self.scorer.combine, refill=self._take, dynamic_sampling=ds.enabled, eps=ds.eps,
            max_rounds=ds.max_rounds, oversample=ds.oversample,
        )  # fmt: skip
        if self.recipe.difficulty.track:
            for g in batch.observed:
                self.difficulty.observe(g.problem.id, self._correct(g), epoch)
        batch.stats["substituted"] = float(substituted)
        self._pending = batch
        return self._rollout_output(batch)

    def _rollout_output(self, batch: RolloutBatch) -> dict[str, list]:
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": []}
        fallback = self.processing_class.eos_token_id
        for g in batch.groups:
            for c in g.completions:
                ids, lps = list(c.token_ids), list(c.logprobs)
                if not ids:  # TRL indexes ids[-1]; an empty completion becomes a lone EOS
                    ids, lps = [fallback], [0.0]
                out["prompt_ids"].append(list(g.prompt_ids))
                out["completion_ids"].append(ids)
                out["logprobs"].append(lps)
        for key in batch.groups[0].columns:
            out[key] = batch.column(key)
        return out

    def _substitute_pruned(self, problems: list[Problem], epoch: int) -> tuple[list[Problem], int]:
        pruner = self.difficulty.pruner
        if pruner is None:
            return problems, 0
        out, subs = [], 0
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

    def _sample_spec(self, round_: int) -> SampleSpec:
        a = self.args
        seed = self.recipe.rollout.seed + 1_000_003 * self.state.global_step + 10_007 * round_
        return SampleSpec(n=self.num_generations, max_tokens=a.max_completion_length or 256,
                          temperature=a.temperature, top_p=a.top_p, top_k=a.top_k or 0, seed=seed)  # fmt: skip

    def _generate_groups(self, problems: Sequence[Problem], round_: int):
        ids = [self._prompt_ids(p) for p in problems]
        t0 = time.perf_counter()
        groups = self.rollout.generate(ids, self._sample_spec(round_), entropies=self._want_entropies)
        self._timers["generate"] += time.perf_counter() - t0
        return ids, groups

    def _score_groups(self, problems, groups):
        t0 = time.perf_counter()
        out = self.scorer(problems, groups)
        self._timers["score"] += time.perf_counter() - t0
        return out

    def _columns(self, problem: Problem) -> dict[str, Any]:
        cols: dict[str, Any] = {"answer": problem.answer, "problem_id": problem.id}
        da = self.recipe.difficulty.da_dler
        if da.enabled:
            rate = self.difficulty.tracker.rate(problem.id)
            cols["pass_rate"] = rate
            cols["max_length"] = da_cap(rate, da.max_length, da.min_length)
        return cols

    def _reward_kwargs(self) -> dict[str, Any]:
        return {"trainer_state": self.state, "log_metric": self._log_metric}

    def _correct(self, group: Group) -> list[bool]:
        values = group.rewards[:, self._correct_index]
        return [bool(v > self.recipe.difficulty.correct_threshold) for v in values.tolist()]

    def _sync_if_stale(self) -> None:
        """Load the latest policy weights into the rollout source if it is behind the optimizer."""
        step = self.state.global_step
        if self.rollout.version == step:
            return
        t0 = time.perf_counter()
        with merged_weights(self.accelerator.unwrap_model(self.model)) as weights:
            self.rollout.sync_weights(weights, version=step)
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
        self.last_batch = batch
        t1 = time.perf_counter()
        out = self._postprocess(out, batch)
        self._timers["advantages"] += time.perf_counter() - t1
        self._timers["rollout"] += time.perf_counter() - t0
        self._log_batch(batch)
        return out

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        if self._pending is None:
            return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._pending.rewards.to(self.accelerator.device)

    def _postprocess(self, out: dict[str, Any], batch: RolloutBatch) -> dict[str, Any]:
        adv, d3s, n = self.recipe.advantages, self.recipe.advantages.d3s, self.num_generations
        mask = out["completion_mask"]
        rho, entropies = 1.0, None
        if self._want_entropies:
            total = d3s.schedule_steps or max(self.state.max_steps, 1)
            rho = rho_schedule(self.state.global_step, total, d3s.rho_start, d3s.rho_end, d3s.schedule)
            entropies = _pad_rows(
                [c.entropies or () for g in batch.groups for c in g.completions], mask.shape
            )
        processed = process_advantages(
            self.scorer.combine(batch.rewards), mask.cpu(), n, keep_groups=batch.keep,
            normalize=adv.normalize, eps=adv.eps, token_weighted=adv.token_weighted,
            sample_k=d3s.sample_k if d3s.enabled else None, rho=rho, entropies=entropies, scope=d3s.scope,
        )  # fmt: skip
        device = mask.device
        loss_mask = processed.loss_mask.to(device)
        if out.get("tool_mask") is not None:
            loss_mask = loss_mask * out["tool_mask"]
        out["advantages"] = processed.advantages.to(device)
        out["tool_mask"] = loss_mask
        out["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        logged = self._logs["advantages"]
        for _ in range(min(len(processed.advantages), len(logged))):
            logged.pop()
        logged.extend(processed.advantages.tolist())
        for key, value in processed.stats.items():
            self._metrics["train"][f"reasoner/{key}"].append(value)
        if self._want_entropies:
            self._metrics["train"]["reasoner/d3s_rho"].append(rho)
        return out

    def _log_batch(self, batch: RolloutBatch) -> None:
        m = self._metrics["train"]
        for key, value in batch.stats.items():
            if math.isfinite(value):
                m[f"reasoner/{key}"].append(value)
        tracker = self.difficulty.tracker
        if self.recipe.difficulty.track:
            bins = pass_rate_histogram(tracker.rates.values(), 5)
            for i, count in enumerate(bins):
                m[f"difficulty/pass_rate_hist/{i / 5:.1f}-{(i + 1) / 5:.1f}"].append(float(count))
            m["difficulty/tracked_prompts"].append(float(len(tracker)))
        if self.difficulty.pruner is not None:
            m["difficulty/pruned_prompts"].append(float(len(self.difficulty.pruner.pruned)))
        if self.recipe.difficulty.da_dler.enabled:
            caps = [c for g in batch.groups for c in g.columns["max_length"]]
            m["difficulty/mean_cap"].append(sum(caps) / len(caps))

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """TRL's ``train``; afterwards the rollout source holds the final weights (for evaluation)."""
        out = super().train(*args, **kwargs)
        self._sync_if_stale()
        return out

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            state = {"global_step": self.state.global_step, "difficulty": self.difficulty.state_dict()}
            (folder / STATE_FILE).write_text(json.dumps(state))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = Path(resume_from_checkpoint) / STATE_FILE
        if path.exists():
            self.difficulty.load_state_dict(json.loads(path.read_text())["difficulty"])
            log.info("resumed difficulty state from %s", path)
        self.rollout.version = -1  # the engine still has the initial weights: sync before generating


def _pad_rows(rows: Sequence[Sequence[float]], shape: torch.Size) -> torch.Tensor:
    out = torch.zeros(shape, dtype=torch.float32)
    for i, row in enumerate(rows):
        k = min(len(row), shape[1])
        if k:
            out[i, :k] = torch.tensor(row[:k], dtype=torch.float32)
    return out
