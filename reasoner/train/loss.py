"""TRL's clipped-surrogate policy loss as one pure function; it exists to pin what TRL does (torch only).

We do not train with this function: TRL's ``GRPOTrainer._compute_loss`` does the update. Our hooks
(``reasoner.train.hooks``) hand TRL per-row advantages, a loss-only mask (``tool_mask``) and
``num_items_in_batch``; ``tests/integration/test_trl_contract.py`` checks that TRL's loss equals
:func:`policy_loss` on the same batch, so a TRL upgrade that stops honouring them fails a test.

Reproduced: TRL 1.16 with ``beta=0`` (no KL term), ``importance_sampling_level="token"``, no vLLM importance
sampling correction, no ``delta`` (two-sided clipping), no entropy mask or bonus, no off-policy mask, in train
mode. Per token, with ``r = exp(logp - old_logp)``, advantage ``A`` of the row (or of the token) and the
loss mask ``m`` (completion mask times tool mask)::

    l_t = -min(r_t * A, clip(r_t, 1 - epsilon_low, 1 + epsilon_high) * A)

and the loss types differ only in how ``sum_t m_t * l_t`` is normalised (``B`` rows on this process,
``n_i = sum_t m_it``, ``L`` = ``max_completion_length``, ``k`` = ``grad_accum``,
``s`` = ``steps_per_generation``, ``P`` = ``num_processes``, ``N`` = ``num_items_in_batch``, the mask
total over the generation batch of all processes)::

    grpo     1/B sum_i (1/n_i) sum_t m_it l_it / k   GRPO, arXiv 2402.03300 (sequence mean, then batch mean)
    bnpo     sum_it m_it l_it / sum_it m_it / k       batch-normalised: this process's token mean
    dr_grpo  sum_it m_it l_it / (B * L) / k           Dr. GRPO, arXiv 2503.20783 (a constant normaliser)
    dapo     sum_it m_it l_it / (N / P * k / s)       DAPO, arXiv 2503.14476 (token mean, global batch)

(``n_i`` and ``sum_it m_it`` are clamped to at least 1, as TRL does; a fully masked row adds 0.)

Data parallelism: DDP averages the P processes' gradients. ``grpo``, ``dr_grpo`` and ``dapo`` (with a
global ``num_items_in_batch``, as our hooks set it) then give the same gradient at P processes as at one,
provided each process holds the same number of rows: their normalisers are per row, constant, or global.
``bnpo`` does not: it divides by each process's own token count, so processes with fewer tokens weigh more.
:data:`LOSS_TYPES_GLOBAL` names the ones that do.
"""

from __future__ import annotations

import torch

__all__ = ["LOSS_TYPES", "LOSS_TYPES_GLOBAL", "policy_loss"]

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
"""The TRL ``loss_type`` values :func:`policy_loss` reproduces."""
LOSS_TYPES_GLOBAL = ("grpo", "dr_grpo", "dapo")
"""Loss types whose gradient at N data-parallel processes equals the one-process gradient (equal per-process
batch sizes; ``dapo`` with a ``num_items_in_batch`` counted over all processes)."""


def policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str,
    epsilon_low: float,
    epsilon_high: float,
    num_items_in_batch: torch.Tensor | float | None = None,
    num_processes: int = 1,
    max_completion_length: int | None = None,
    grad_accum: int = 1,
    steps_per_generation: int = 1,
) -> torch.Tensor:
    """The scalar loss TRL's ``GRPOTrainer`` backpropagates for one micro-batch (see the module docstring).

    Args:
        logps: ``(B, T)`` log-probabilities of the completion tokens under the current policy (with gradient).
        old_logps: ``(B, T)`` log-probabilities under the policy that sampled them (TRL uses
            ``logps.detach()`` when generation and optimisation are aligned).
        advantages: ``(B,)`` per row or ``(B, T)`` per token.
        mask: ``(B, T)`` loss mask, 1 where a token counts (completion mask times tool mask).
        loss_type: one of ``grpo``, ``bnpo``, ``dr_grpo``, ``dapo``.
        epsilon_low, epsilon_high: the clip range ``[1 - epsilon_low, 1 + epsilon_high]`` of the ratio.
        num_items_in_batch: ``dapo`` only: the mask total over the generation batch of all processes.
        num_processes: ``dapo`` only: the number of data-parallel processes.
        max_completion_length: ``dr_grpo`` only: the constant per-row normaliser ``L``.
        grad_accum: gradient accumulation steps (TRL's ``current_gradient_accumulation_steps``).
        steps_per_generation: ``dapo`` only: micro-batches one generation batch is split into.

    Raises:
        ValueError: an unknown ``loss_type``, or a normaliser the loss type needs is missing.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {', '.join(LOSS_TYPES)}")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    total = (per_token * mask).sum()
    if loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / grad_accum
    if loss_type == "bnpo":
        return total / mask.sum().clamp(min=1.0) / grad_accum
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        return total / (per_token.size(0) * max_completion_length) / grad_accum
    if num_items_in_batch is None:
        raise ValueError("loss_type 'dapo' needs num_items_in_batch")
    items = torch.as_tensor(num_items_in_batch, dtype=logps.dtype, device=logps.device)
    normalizer = items.clamp(min=1.0) / num_processes * grad_accum / steps_per_generation
    return total / normalizer
