"""Checks and per-step metrics of what the learner trains on, mixed into the GRPO hooks
(``reasoner.train.hooks``): the weight-sync check, the off-policy correction of stale rollouts, the staleness
of every step's groups, and the batch's counters (verifier errors, dynamic sampling, pass-rate histogram).

- Weight-sync check (``reasoner.train.sync``): the engine's logprobs of its sampled tokens against the
  learner's; a mean gap above ``rollout.max_logprob_gap`` on rows sampled by the current weights stops the run.
- Off-policy correction (``rollout.importance_sampling``, ``reasoner.offpolicy``): truncated importance weights
  ``w = pi_old / mu`` of the tokens, with the engine's logprobs as the behaviour policy ``mu``, handed to TRL
  as per-token advantages ``A_i * w_it`` (the same loss as TRL's ``vllm_importance_sampling_correction``;
  ``tests/integration/test_trl_contract.py`` checks it); logged under TRL's ``sampling/*`` names.
- Staleness: trainer step minus the weight version that sampled each group (``async/staleness_mean|max`` and a
  histogram); a lag above what the pipeline and the pool allow is an error (they wait rather than let it happen).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from reasoner.offpolicy import importance_weights, staleness_counts
from reasoner.train.batch import Group, RolloutBatch
from reasoner.train.difficulty import pass_rate_histogram
from reasoner.train.sync import WeightSyncError, logprob_gap, token_logprobs
from reasoner.verify import error_count

_Host: Any = object
"""The base of the mixin, typed Any: ``args``, ``state``, ``comm``, ``model``, ``recipe``, ``_metrics`` and
``_timers`` come from the trainer it is mixed into."""

__all__ = ["PolicyChecks", "pad_rows"]


class PolicyChecks(_Host):
    """Weight-sync check, off-policy correction and staleness of the GRPO hooks (see the module docstring)."""

    _verify_errors: int
    """Verifier errors counted up to the previous step (``verify/errors`` logs the difference)."""

    def _learner_logps(self, out: dict[str, Any]) -> torch.Tensor:
        """``(B, T)`` logprobs of this rank's completion tokens under the learner's current weights (no grad),
        computed as TRL computes its old logprobs (``_get_per_token_logps_and_entropies``: in chunks of
        ``per_device_train_batch_size`` rows, logits over the temperature, which the correction requires to be
        1.0, so they are the raw logprobs the engines report)."""
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
        with torch.no_grad():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, ids, mask, out["completion_ids"].shape[1],
                batch_size=self.args.per_device_train_batch_size,
            )  # fmt: skip
        return logps.float().cpu()

    def _check_sync(
        self,
        out: dict[str, Any],
        groups: Sequence[Group],
        versions: Sequence[int],
        learner: torch.Tensor | None,
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
        if learner is not None:
            mine = learner[rows]
        else:
            mine = token_logprobs(self.model, out["prompt_ids"][rows], out["prompt_mask"][rows],
                                  out["completion_ids"][rows], out["completion_mask"][rows]).cpu()  # fmt: skip
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

    def _correct_off_policy(
        self, out: dict[str, Any], groups: Sequence[Group], learner: torch.Tensor
    ) -> None:
        """Truncated importance weights of stale rollouts (``reasoner.offpolicy``), folded into per-token
        advantages ``A_i * w_it``; logs them under TRL's ``sampling/*`` names."""
        cfg, mask = self.recipe.rollout, out["completion_mask"] * out["tool_mask"]
        behaviour = pad_rows([c.logprobs or () for g in groups for c in g.completions], mask.shape, math.nan)
        weights, stats = importance_weights(
            learner, behaviour, mask.cpu(), mode=self._is_mode, cap=cfg.importance_sampling_cap,
            cap_min=cfg.importance_sampling_cap_min,
        )  # fmt: skip
        out["advantages"] = out["advantages"].unsqueeze(1) * weights.to(out["advantages"].device)
        parts = self.comm.all_gather(stats, "importance weights", self.state.global_step)
        m = self._metrics["train"]
        m["sampling/importance_sampling_ratio/min"].append(min(p["is_ratio_min"] for p in parts))
        m["sampling/importance_sampling_ratio/max"].append(max(p["is_ratio_max"] for p in parts))
        m["sampling/sampling_logp_difference/max"].append(max(p["logp_diff_max"] for p in parts))
        for key, name in (("is_ratio_mean", "importance_sampling_ratio/mean"),
                          ("logp_diff_mean", "sampling_logp_difference/mean"),
                          ("truncated_frac", "importance_sampling_truncated_frac")):  # fmt: skip
            m[f"sampling/{name}"].append(sum(p[key] for p in parts) / len(parts))

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


def pad_rows(rows: Sequence[Sequence[float]], shape: torch.Size, fill: float = 0.0) -> torch.Tensor:
    """``rows`` as a ``shape`` tensor, cut or padded on the right with ``fill``."""
    out = torch.full(shape, fill, dtype=torch.float32)
    for i, row in enumerate(rows):
        k = min(len(row), shape[1])
        if k:
            out[i, :k] = torch.tensor(row[:k], dtype=torch.float32)
    return out
