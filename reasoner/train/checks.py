"""Checks and per-step metrics of what the learner trains on, mixed into the GRPO hooks
(``reasoner.train.hooks``): the weight-sync check, the off-policy correction of stale rollouts, the staleness
of every step's groups, and the batch's counters (verifier errors, dynamic sampling, pass-rate histogram).

- Weight-sync check (``reasoner.train.sync``): the engine's logprobs of its sampled tokens against the
  learner's; a mean gap above ``rollout.max_logprob_gap`` on rows sampled by the current weights stops the run.
- Off-policy correction (``rollout.importance_sampling``, ``reasoner.offpolicy``): truncated importance weights
  ``w = pi_old / mu`` of the tokens, with the engine's logprobs as the behaviour policy ``mu``, computed inside
  TRL's loss from its own forward pass and folded into per-token advantages ``A_i * w_it`` (the same loss and
  gradient as TRL's ``vllm_importance_sampling_correction``, without its extra forward pass;
  ``tests/integration/test_trl_contract.py`` checks it); logged per step under TRL's ``sampling/*`` names.
- Staleness: trainer step minus the weight version that sampled each group (``async/staleness_mean|max`` and a
  histogram); a lag above what the pipeline and the pool allow is an error (they wait rather than let it happen).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from reasoner.offpolicy import ISMode, importance_weights, staleness_counts
from reasoner.train.batch import Group, RolloutBatch
from reasoner.train.difficulty import pass_rate_histogram
from reasoner.train.pipeline import engine_logprobs_mode
from reasoner.train.sync import WeightSyncError, logprob_gap, token_logprobs
from reasoner.verify import error_count

_Host: Any = object
"""The base of the mixin, typed Any: ``args``, ``state``, ``comm``, ``model``, ``recipe``, ``_metrics`` and
``_timers`` come from the trainer it is mixed into."""

__all__ = ["PolicyChecks"]


class PolicyChecks(_Host):
    """Weight-sync check, off-policy correction and staleness of the GRPO hooks (see the module docstring)."""

    _verify_errors: int
    """Verifier errors counted up to the previous step (``verify/errors`` logs the difference)."""
    _is_mode: ISMode | None
    """The off-policy correction's mode (``rollout.importance_sampling`` resolved); None: off."""
    _is_stats: list[dict[str, float]]
    """Importance-weight statistics of the step's micro-batches so far (``_log_importance`` empties it)."""
    _loss_inputs: dict[str, Any] | None = None
    """The micro-batch of the loss being computed, until TRL's forward pass has weighed its tokens."""

    def _check_sync(
        self,
        out: dict[str, Any],
        groups: Sequence[Group],
        versions: Sequence[int],
    ) -> None:
        """Weight-sync check: the engine's logprobs of its sampled tokens against the learner's on the first
        ``rollout.sync_check_rows`` rows of every rank sampled by the current weights (without such rows: the
        first rows, stale, whose gap adds the updates since they were sampled); logs
        ``sync/logprob_gap_mean|max`` (nats) and ``sync/checked_on_policy`` (1: every rank checked fresh rows),
        and raises ``WeightSyncError`` when the mean on fresh rows exceeds ``rollout.max_logprob_gap``."""
        cfg, step = self.recipe.rollout, self.state.global_step
        fresh = [i for i, v in enumerate(versions) if v == step]
        rows = (fresh or list(range(len(versions))))[: cfg.sync_check_rows]
        if not rows:
            return
        t0 = time.perf_counter()
        processed = self._sample_spec(0) if engine_logprobs_mode(self.recipe) == "processed" else None
        mine = token_logprobs(self.model, out["prompt_ids"][rows], out["prompt_mask"][rows],
                              out["completion_ids"][rows], out["completion_mask"][rows], processed).cpu()  # fmt: skip
        engine_rows = [c.require_logprobs("weight-sync check") for g in groups for c in g.completions]
        engine = [engine_rows[i] for i in rows]
        parts = self.comm.all_gather(logprob_gap(mine, engine), "sync check", step)
        count = sum(c for _, c, _ in parts)
        mean, worst = sum(t for t, _, _ in parts) / max(count, 1), max(m for _, _, m in parts)
        self._metrics["train"]["sync/logprob_gap_mean"].append(mean)
        self._metrics["train"]["sync/logprob_gap_max"].append(worst)
        self._timers["sync_check"] += time.perf_counter() - t0
        on_policy = all(self.comm.all_gather(bool(fresh), "sync check", step))
        self._metrics["train"]["sync/checked_on_policy"].append(float(on_policy))
        if cfg.max_logprob_gap is not None and on_policy and mean > cfg.max_logprob_gap:
            raise WeightSyncError(
                f"step {step}: the rollout engine's logprobs of its own sampled tokens differ from the learner's "
                f"by {mean:.3g} nats per token on average (max {worst:.3g}; rollout.max_logprob_gap="
                f"{cfg.max_logprob_gap}): the engine is serving stale or wrong weights (a weight sync that did "
                "not take effect?)"
            )

    # ---------------------------------------------------------------- off-policy correction, in TRL's loss

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> Any:
        """TRL's loss on a micro-batch; with the correction on, the micro-batch's advantages become
        ``A_i * w_it`` as soon as TRL's forward pass has given the learner's logprobs (``_weigh_tokens``), so
        the weights cost no extra forward pass. A shallow copy: TRL's buffered batch keeps its advantages."""
        if self._is_mode is None:
            return super()._compute_loss(model, inputs)
        self._loss_inputs = dict(inputs)
        try:
            return super()._compute_loss(model, self._loss_inputs)
        finally:
            self._loss_inputs = None

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any) -> Any:
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        inputs, self._loss_inputs = self._loss_inputs, None  # the loss's own (first) call
        if inputs is not None:
            self._weigh_tokens(inputs, out[0].detach())
        return out

    def _weigh_tokens(self, inputs: dict[str, Any], logps: torch.Tensor) -> None:
        """Truncated importance weights ``w = pi_old / mu`` of the micro-batch's tokens (``reasoner.offpolicy``):
        ``mu`` the engine's logprobs (TRL's ``sampling_per_token_logps``), ``pi_old`` TRL's old logprobs when it
        computed them, else this forward's own (the weights have not moved since the step began: one update
        per generation). Folded into per-token advantages; statistics kept for ``_log_importance``."""
        mode = self._is_mode
        if mode is None or "sampling_per_token_logps" not in inputs:
            raise RuntimeError(
                "_weigh_tokens: the correction is off, or TRL's batch has no sampling logprobs"
            )
        cfg = self.recipe.rollout
        old = inputs.get("old_per_token_logps")
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        weights, stats = importance_weights(
            logps if old is None else old, inputs["sampling_per_token_logps"], mask,
            mode=mode, cap=cfg.importance_sampling_cap, cap_min=cfg.importance_sampling_cap_min,
        )  # fmt: skip
        advantages = inputs["advantages"]
        inputs["advantages"] = (advantages.unsqueeze(1) if advantages.dim() == 1 else advantages) * weights
        self._is_stats.append(stats)

    def _log_importance(self) -> None:
        """The step's importance-weight statistics over every micro-batch and rank, under TRL's names (called
        at the end of the step, before TRL logs)."""
        parts = [p for rank in self.comm.all_gather(self._is_stats, "importance weights", self.state.global_step)
                 for p in rank]  # fmt: skip
        self._is_stats = []
        total = sum(p["tokens"] for p in parts)
        if not parts or total == 0:
            return
        m = self._metrics["train"]
        m["sampling/importance_sampling_ratio/min"].append(min(p["is_ratio_min"] for p in parts))
        m["sampling/importance_sampling_ratio/max"].append(max(p["is_ratio_max"] for p in parts))
        m["sampling/sampling_logp_difference/max"].append(max(p["logp_diff_max"] for p in parts))
        for key, name in (("is_ratio_mean", "importance_sampling_ratio/mean"),
                          ("logp_diff_mean", "sampling_logp_difference/mean"),
                          ("truncated_frac", "importance_sampling_truncated_frac")):  # fmt: skip
            m[f"sampling/{name}"].append(sum(p[key] * p["tokens"] for p in parts) / total)

    def _log_batch(self, batch: RolloutBatch) -> None:
        m = self._metrics["train"]
        self._log_staleness(batch)
        errors = error_count()  # verifier failures graded "error" while scoring (logged where they occur)
        m["verify/errors"].append(float(errors - self._verify_errors))
        self._verify_errors = errors
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

    def _log_staleness(self, batch: RolloutBatch) -> None:
        m = self._metrics["train"]
        lags = [self.state.global_step - g.version for g in batch.groups]
        bound = max(
            self.recipe.rollout.async_steps, self.recipe.ray.max_lag if self.recipe.rollout.workers else 0
        )
        if max(lags) > bound:  # the pipeline and the pool wait rather than let this happen
            raise RuntimeError(f"step {self.state.global_step}: a rollout {max(lags)} versions old exceeds the "
                               f"allowed lag {bound}")  # fmt: skip
        m["async/staleness_mean"].append(sum(lags) / len(lags))
        m["async/staleness_max"].append(float(max(lags)))
        for lag, count in enumerate(staleness_counts(lags, bound + 1) if bound else ()):
            m[f"async/staleness_hist/{lag}"].append(float(count))
