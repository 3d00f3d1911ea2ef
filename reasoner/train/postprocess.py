"""Advantage post-processing of a scored TRL batch: our normalisation, D3S selection, a loss mask.

Thin glue over ``reasoner.advantages`` (the math lives there), in the order its docstring gives:

1. rows of groups dropped by dynamic sampling (``keep=False``, padding the batch) and rows no reward could
   score (NaN) get advantage 0 and no loss tokens;
2. ``group_advantages`` over the kept groups only: ``group`` (GRPO), ``batch`` (DLER, arXiv 2510.15110:
   centre in the group, divide by the batch std, token-weighted as DLER's code), or ``none`` (Dr. GRPO);
3. D3S (arXiv 2509.22115) sample level: per group, keep the ``k`` rollouts with the largest advantage
   variance (``d3s_select_samples``; advantages stay those of the full group, the better baseline);
4. D3S token level: of the remaining tokens keep the top ``rho`` fraction by ``|A| * entropy``
   (``d3s_token_mask``), with ``rho`` from ``rho_schedule``.

The result is an advantage per row and a ``(B, T)`` loss mask. The trainer passes the mask to TRL as
``tool_mask``: TRL multiplies it into the loss mask only, so attention still sees every token (zeroing
``completion_mask`` instead would hide tokens from the ones after them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from reasoner.advantages import Normalize, d3s_select_samples, d3s_token_mask, group_advantages

__all__ = ["Processed", "process_advantages"]


@dataclass
class Processed:
    advantages: torch.Tensor
    """(B,) float advantages."""
    loss_mask: torch.Tensor
    """(B, T) long: 1 for tokens that enter the loss."""
    stats: dict[str, float]


def _fill_unscorable(rewards: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace NaN rewards by their group's nan-mean (0 if all NaN), so they get zero advantage."""
    bad = torch.isnan(rewards)
    if not bool(bad.any()):
        return rewards, bad
    grouped = rewards.view(-1, n)
    means = torch.nan_to_num(torch.nanmean(grouped, dim=1, keepdim=True), nan=0.0).expand_as(grouped)
    return torch.where(torch.isnan(grouped), means, grouped).reshape(-1), bad


def process_advantages(
    rewards: torch.Tensor,
    completion_mask: torch.Tensor,
    num_generations: int,
    *,
    keep_groups: torch.Tensor | None = None,
    normalize: Normalize = "group",
    eps: float = 1e-4,
    token_weighted: bool = True,
    sample_k: int | None = None,
    rho: float = 1.0,
    entropies: torch.Tensor | None = None,
    scope: Literal["batch", "sequence"] = "batch",
) -> Processed:
    """Advantages and loss mask for a batch of ``B = G * n`` rows in contiguous groups (see module doc)."""
    n = num_generations
    rewards = rewards.detach().float().reshape(-1)
    mask = completion_mask.detach().long()
    if keep_groups is None:
        keep_groups = torch.ones(rewards.numel() // n, dtype=torch.bool)
    keep_rows = keep_groups.to(mask.device).bool().repeat_interleave(n)
    rewards, unscorable = _fill_unscorable(rewards, n)
    advantages = torch.zeros_like(rewards)
    loss_mask = mask * (keep_rows & ~unscorable.to(mask.device)).unsqueeze(1).long()
    kept = keep_rows.nonzero().squeeze(1)
    if kept.numel():
        weights = mask[kept].sum(1) if normalize == "batch" and token_weighted else None
        if weights is not None and not float(weights.sum()) > 0:
            weights = None
        adv = group_advantages(rewards[kept], n, normalize=normalize, eps=eps, token_lengths=weights)
        advantages[kept] = adv
        if sample_k is not None and sample_k < n:
            chosen = kept[d3s_select_samples(adv, n, sample_k)]
            dropped = torch.ones_like(keep_rows)
            dropped[chosen] = False
            loss_mask[dropped] = 0
            kept = chosen
        if rho < 1.0:
            if entropies is None:
                raise ValueError("D3S token selection (rho < 1) needs per-token entropies")
            ent = entropies[kept].to(torch.float32)
            tok = d3s_token_mask(advantages[kept], ent, loss_mask[kept], rho, scope=scope)
            loss_mask[kept] = loss_mask[kept] * tok.long()
    total_tokens = max(int(mask.sum()), 1)
    stats = {
        "kept_samples": float((loss_mask.sum(1) > 0).float().mean()),
        "kept_tokens": float(loss_mask.sum()) / total_tokens,
        "loss_tokens": float(loss_mask.sum()),
        "kept_groups": float(keep_groups.float().mean()),
        "advantages_abs_mean": float(advantages.abs().mean()),
    }
    return Processed(advantages, loss_mask, stats)
