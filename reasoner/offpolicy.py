"""Off-policy correction for stale rollouts: truncated importance weights and staleness counts (torch only).

With pipelined rollouts (``rollout.async_steps``, ``reasoner.train.pipeline``) a batch trained at step s was
sampled by the weights of step s - k (k <= async_steps): the behaviour policy ``mu`` is not the policy
``pi_old`` the PPO ratio is taken against (the learner's weights when the step starts). The loss keeps PPO's
clipped ratio against ``pi_old`` and multiplies each token's term by an importance weight
``w = pi_old(y_t) / mu(y_t)``, truncated so one unlikely token cannot blow up the gradient (decoupled PPO,
Hilton et al. arXiv 2110.00641; truncated importance sampling, Yao et al. 2025 "Your efficient RL framework
secretly brings you off-policy RL training"; TRL's ``vllm_importance_sampling_correction``, whose four modes
and names this mirrors)::

    token_truncate      w_t = min(exp(lp_old_t - lp_mu_t), C)
    token_mask          w_t = exp(lp_old_t - lp_mu_t) if it lies in [C_min, C] else 0
    sequence_truncate   w_t = min(exp(sum_t (lp_old_t - lp_mu_t)), C)        (one weight per row)
    sequence_mask       w_t = exp(sum_t (lp_old_t - lp_mu_t)) if in [C_min, C] else 0

Sums run over the tokens of the loss mask. A token without a behaviour logprob (NaN: an empty completion sent
to TRL as a lone EOS) gets a log-difference of 0, so weight 1, as TRL does. Since ``w >= 0`` multiplies the
clipped surrogate ``-min(r A, clip(r) A)`` of the token, it equals that surrogate with advantage ``w A``: the
trainer hands TRL per-token advantages ``A_i * w_it`` (``reasoner.train.loss`` pins that TRL's loss takes them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

__all__ = ["IS_MODES", "ISMode", "importance_weights", "staleness_counts"]

ISMode = Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]
IS_MODES: tuple[str, ...] = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def importance_weights(
    learner_logps: torch.Tensor,
    behaviour_logps: torch.Tensor,
    mask: torch.Tensor,
    *,
    mode: ISMode = "token_truncate",
    cap: float = 3.0,
    cap_min: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``(B, T)`` importance weights of the tokens (formulas in the module docstring) and their statistics.

    ``learner_logps`` / ``behaviour_logps``: ``(B, T)`` log-probabilities of the sampled tokens under the
    learner's current weights and under the engine that sampled them (NaN where unknown); ``mask``: ``(B, T)``
    loss mask (tokens outside it get weight 1 and are left out of the statistics). Statistics over the masked
    tokens (rows for sequence modes), TRL's metric names: ``is_ratio_min|mean|max`` (after truncation),
    ``logp_diff_mean|max`` (``|lp_old - lp_mu|``), ``truncated_frac`` (share capped or masked), and ``tokens``
    (how many they cover, to weigh means across micro-batches)."""
    if learner_logps.shape != behaviour_logps.shape or learner_logps.shape != mask.shape:
        raise ValueError(
            f"learner_logps {tuple(learner_logps.shape)}, behaviour_logps {tuple(behaviour_logps.shape)} and "
            f"mask {tuple(mask.shape)} must have the same (B, T) shape"
        )
    if mode not in IS_MODES:
        raise ValueError(f"importance sampling mode must be one of {', '.join(IS_MODES)}, got {mode!r}")
    if not cap > 0 or (cap_min is not None and not 0 <= cap_min < cap):
        raise ValueError(f"need 0 <= cap_min < cap, got cap={cap!r}, cap_min={cap_min!r}")
    m = mask.bool()
    diff = torch.nan_to_num((learner_logps.float() - behaviour_logps.float()) * m, nan=0.0)
    sequence = mode.startswith("sequence")
    raw = torch.exp(diff.sum(dim=1, keepdim=True) if sequence else diff)
    low = cap_min if cap_min is not None else (0.0 if mode.endswith("truncate") else -math.inf)
    if mode.endswith("truncate"):
        weights = raw.clamp(min=low, max=cap)
        cut = raw > cap
    else:
        cut = (raw < low) | (raw > cap)
        weights = raw.masked_fill(cut, 0.0)
    if sequence:
        weights, cut = weights.expand_as(diff), cut.expand_as(diff)
        rows = m.any(dim=1)
        picked, cut_picked = weights[:, 0][rows], cut[:, 0][rows]
    else:
        picked, cut_picked = weights[m], cut[m]
    weights = torch.where(m, weights, torch.ones_like(weights))
    delta = diff.abs()[m]
    stats = {
        "is_ratio_min": float(picked.min()) if picked.numel() else 1.0,
        "is_ratio_mean": float(picked.mean()) if picked.numel() else 1.0,
        "is_ratio_max": float(picked.max()) if picked.numel() else 1.0,
        "logp_diff_mean": float(delta.mean()) if delta.numel() else 0.0,
        "logp_diff_max": float(delta.max()) if delta.numel() else 0.0,
        "truncated_frac": float(cut_picked.float().mean()) if cut_picked.numel() else 0.0,
        "tokens": float(picked.numel()),
    }
    return weights, stats


def staleness_counts(lags: Sequence[int], buckets: int) -> list[int]:
    """Histogram of rollout staleness (trainer step minus the weight version that sampled each group):
    ``counts[k]`` groups of lag k for k < ``buckets - 1``, the last bucket holding lag >= buckets - 1."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    counts = [0] * buckets
    for lag in lags:
        if lag < 0:
            raise ValueError(f"a rollout cannot come from future weights (lag {lag})")
        counts[min(lag, buckets - 1)] += 1
    return counts
