"""Pure tensor functions of the RL recipes: advantages, filters, D3S down-sampling, schedules.

Layout: rewards are a 1-D tensor of length ``B = G * num_generations`` in contiguous groups, the order
TRL's GRPOTrainer uses (prompt 0's generations, then prompt 1's, ...). For rows that carry a group id
instead, :func:`group_layout` gives the permutation to that order and back.

The order a trainer applies them (DESIGN section 6)::

    keep = dynamic_sampling_mask(r, n)                       # DAPO: drop zero-signal groups, refill
    r = r[keep.repeat_interleave(n)]
    adv = group_advantages(r, n, normalize="batch", token_lengths=L)   # DLER
    idx = d3s_select_samples(adv, n, k)                      # D3S sample level; groups of k
    tok = d3s_token_mask(adv[idx], entropy[idx], completion_mask[idx], rho_schedule(step, ...))

Standard deviations are Bessel-corrected (``torch.std``'s default, as TRL's). Nothing here tests a float
for ``== 0``: degenerate spreads are compared against an ``eps``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

__all__ = [
    "GroupLayout",
    "d3s_select_samples",
    "d3s_token_mask",
    "dynamic_sampling_mask",
    "group_advantages",
    "group_layout",
    "rho_schedule",
]

Normalize = Literal["group", "batch", "none"]


class GroupLayout(NamedTuple):
    """How to bring rows with group ids into contiguous groups and back."""

    perm: torch.Tensor
    """``x[perm]`` is in contiguous groups, groups ordered by first appearance, rows stable within one."""
    inverse: torch.Tensor
    """``y[inverse]`` undoes it: for ``y = f(x[perm])``, ``y[inverse]`` lines up with ``x``."""
    num_generations: int
    """Rows per group (every group has the same size)."""


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _check_grouped(x: torch.Tensor, num_generations: int, name: str) -> torch.Tensor:
    """Validate a 1-D per-sample tensor in contiguous groups; return it as ``(G, n)`` floats."""
    n = _check_int(num_generations, "num_generations", 1)
    if not isinstance(x, torch.Tensor) or x.dim() != 1 or x.numel() == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {shape}")
    if x.numel() % n:
        raise ValueError(f"num_generations={n} does not divide len({name})={x.numel()}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return x.reshape(-1, n)


def _check_fraction(value: object, name: str) -> float:
    try:
        x = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        x = math.nan
    if not 0.0 < x <= 1.0:  # NaN fails too
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return x


def _check_eps(eps: float) -> None:
    if not (isinstance(eps, int | float) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")


def _group_std(grouped: torch.Tensor) -> torch.Tensor:
    """Bessel-corrected std per row of ``(G, n)``; 0 for groups of one (no spread to measure)."""
    if grouped.shape[1] == 1:
        return torch.zeros(grouped.shape[0], dtype=grouped.dtype, device=grouped.device)
    return grouped.std(dim=1)


def group_layout(group_ids: torch.Tensor) -> GroupLayout:
    """Permutation that makes rows with equal ``group_ids`` contiguous, and its inverse.

    Groups come in order of first appearance and rows keep their order within a group, so ids that
    are already contiguous give the identity. Every group must have the same size.
    """
    ids = torch.as_tensor(group_ids)
    if ids.dim() != 1 or ids.numel() == 0:
        raise ValueError(f"group_ids must be a non-empty 1-D tensor, got shape {tuple(ids.shape)}")
    _, which, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    if int(counts.min()) != int(counts.max()):
        raise ValueError(f"group_ids: groups must have equal sizes, got sizes {sorted(set(counts.tolist()))}")
    pos = torch.arange(ids.numel(), device=ids.device)
    first = torch.full_like(counts, ids.numel()).scatter_reduce(0, which, pos, reduce="amin")
    rank = torch.argsort(torch.argsort(first))  # rank of each group by first appearance
    perm = torch.argsort(rank[which], stable=True)
    return GroupLayout(perm=perm, inverse=torch.argsort(perm), num_generations=int(counts[0]))


def group_advantages(
    rewards: torch.Tensor,
    num_generations: int,
    normalize: Normalize = "group",
    eps: float = 1e-4,
    token_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Group-relative advantages, one per sample (broadcast over its tokens by the caller).

    With ``c_i = r_i - mean_{g(i)}(r)`` (the group-centred reward):

    - ``"group"`` (GRPO, arXiv 2402.03300; TRL ``scale_rewards="group"``): ``A_i = c_i / (std_g + eps)``.
    - ``"none"`` (Dr. GRPO; TRL ``scale_rewards="none"``): ``A_i = c_i``.
    - ``"batch"`` (DLER, arXiv 2510.15110, github NVlabs/DLER; their ``reinforce_plus_plus_baseline``
      estimator): centre in the group, scale by the whole batch. With weights ``w_i = token_lengths_i``
      (or 1), ``m = sum w c / sum w`` and the reliability-weighted, Bessel-corrected
      ``s^2 = sum w (c - m)^2 / (V1 - V2 / V1)``, ``V1 = sum w``, ``V2 = sum w^2``:
      ``A_i = (c_i - m) / (s + eps)``.

    Token weighting reproduces DLER's code, which tiles ``c`` over each response's tokens and whitens
    over all valid tokens of the batch: every token counts, so long responses weigh more, and the mean
    ``m`` over tokens is re-subtracted (so the *token-weighted* batch mean of ``A`` is 0, while a group's
    plain mean may not be). Unweighted, ``m`` is 0 and each group keeps zero mean. Differences from
    verl's ``masked_whiten``: its Bessel factor counts tokens (``N/(N-1)``) where ours counts
    reliability weights (so equal lengths give exactly the unweighted std; the two differ by ~1/B), and it
    adds its epsilon under the root (``rsqrt(var + 1e-8)``). TRL's ``scale_rewards="batch"`` divides by
    the std of the *raw* rewards, which is not the same. Filter groups (:func:`dynamic_sampling_mask`)
    before calling: the batch std is taken over whatever rows are passed.
    """
    grouped = _check_grouped(rewards, num_generations, "rewards")
    _check_eps(eps)
    if normalize not in ("group", "batch", "none"):
        raise ValueError(f"normalize must be 'group', 'batch' or 'none', got {normalize!r}")
    if token_lengths is not None and normalize != "batch":
        raise ValueError(f"token_lengths is only used with normalize='batch', got normalize={normalize!r}")
    if not bool(torch.isfinite(grouped).all()):
        raise ValueError("rewards must be finite (got NaN or inf)")
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if normalize == "none":
        return centred.reshape(-1)
    if normalize == "group":
        return _scale(centred, _group_std(grouped).unsqueeze(1), eps).reshape(-1)
    c = centred.reshape(-1)
    w = torch.ones_like(c) if token_lengths is None else _check_weights(token_lengths, c)
    v1, v2 = w.sum(), (w * w).sum()
    m = (w * c).sum() / v1
    denom = v1 - v2 / v1  # reliability-weight Bessel correction; B - 1 when unweighted
    var = (w * (c - m) ** 2).sum() / denom if float(denom) > 0 else torch.zeros_like(v1)
    return _scale(c - m, var.sqrt(), eps)


def _scale(x: torch.Tensor, std: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / (std + eps)``, and 0 where that denominator is 0 (only possible with ``eps = 0``)."""
    den = std + eps
    return torch.where(den > 0, x / den, torch.zeros_like(x))


def _check_weights(token_lengths: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    w = torch.as_tensor(token_lengths, device=like.device)
    if w.shape != like.shape:
        raise ValueError(f"token_lengths must have shape {tuple(like.shape)}, got {tuple(w.shape)}")
    w = w.to(like.dtype)
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise ValueError("token_lengths must be finite, >= 0, with a positive sum")
    return w


def dynamic_sampling_mask(rewards: torch.Tensor, num_generations: int, eps: float = 1e-6) -> torch.Tensor:
    """Which groups carry a learning signal: ``std_g(r) > eps``, one bool per group.

    DAPO's dynamic sampling (arXiv 2503.14476) keeps a prompt only if its group is neither all right
    nor all wrong, i.e. its rewards are not constant; the trainer drops the rest and refills the batch
    from new prompts. Constancy is judged as ``std > eps``, never ``== 0``: ``[0.1 + 0.2, 0.3]`` is
    constant for training purposes. Groups of one have no spread and are dropped; a NaN reward drops
    its group. Per-sample mask: ``mask.repeat_interleave(num_generations)``; TRL's
    ``frac_reward_zero_std`` is ``1 - mask.float().mean()``.
    """
    grouped = _check_grouped(rewards, num_generations, "rewards")
    _check_eps(eps)
    return _group_std(grouped) > eps


def d3s_select_samples(advantages: torch.Tensor, num_generations: int, k: int) -> torch.Tensor:
    """D3S sample level: per group, the size-``k`` subset whose advantages have the largest variance.

    D3S (arXiv 2509.22115) keeps the rollouts that maximise ``Var(A)``, which bounds the policy-gradient
    norm from above. This is the per-group (intra-group, "D3S-I") form; the paper also selects across
    groups. Exact algorithm: sort the group; the best subset is the ``j`` smallest plus the
    ``k - j`` largest for some ``0 <= j <= k`` (also PODS' max-variance down-sampling, arXiv 2504.13818),
    so ``k + 1`` candidates are scored. Proof: with the other ``k - 1`` members fixed at sum ``s``,
    ``k * Var = x^2 (1 - 1/k) - 2 s x / k + const`` is convex in the remaining member ``x``, so over
    ``[z1, z2]`` it peaks at an end. If the excluded rows (in sorted order) are not one contiguous block,
    some member ``y`` lies between the lowest and highest excluded ``z1 <= y <= z2``; swapping ``y`` for
    whichever of them scores higher never lowers the variance and strictly shrinks the excluded block's
    span, so the process ends at a contiguous excluded block without losing variance.

    Returns global row indices, ascending, ``G * k`` of them: still contiguous groups of ``k``. Ties are
    deterministic: the sort is stable (equal advantages keep row order) and among equally good
    candidates the smallest ``j`` wins. Keep each row's advantage from the full group (the better
    baseline), or recompute on the subset as PODS does; that choice is the trainer's.
    """
    grouped = _check_grouped(advantages, num_generations, "advantages").double()
    n = grouped.shape[1]
    k = _check_int(k, "k", 1)
    if k > n:
        raise ValueError(f"k={k} exceeds the group size num_generations={n}")
    order = torch.sort(grouped, dim=1, stable=True).indices
    sorted_vals = torch.gather(grouped, 1, order)
    j = torch.arange(k + 1, device=grouped.device).unsqueeze(1)
    slot = torch.arange(k, device=grouped.device).unsqueeze(0)
    cand = torch.where(slot < j, slot, slot + (n - k))  # (k+1, k): j lowest, then k-j highest
    vals = sorted_vals[:, cand]  # (G, k+1, k)
    best = vals.var(dim=2, unbiased=False).argmax(dim=1)  # first maximum: smallest j
    local = torch.gather(order, 1, cand[best])
    rows = local + torch.arange(grouped.shape[0], device=grouped.device).unsqueeze(1) * n
    return rows.sort(dim=1).values.reshape(-1)


def d3s_token_mask(
    advantages: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    rho: float,
    scope: Literal["batch", "sequence"] = "batch",
) -> torch.Tensor:
    """D3S token level: keep the top-``rho`` fraction of valid tokens by ``|A_{i,t}| * H_{i,t}``.

    D3S (arXiv 2509.22115) trains on tokens where the policy is both uncertain (entropy ``H``) and
    consequential (``|A|``). ``advantages`` is per sample ``(B,)`` or per token ``(B, T)``; ``entropies``
    and ``mask`` (valid tokens, e.g. TRL's ``completion_mask``) are ``(B, T)``.

    ``scope="batch"`` (default: the paper ranks tokens "across groups") keeps ``ceil(rho * N)`` of the ``N``
    valid tokens of the batch; ``scope="sequence"`` keeps ``ceil(rho * N_i)`` in each sequence. Either
    way a sequence with a valid token of nonzero ``|A|`` keeps at least its best-scoring valid token, so
    the count is ``ceil(rho * N)`` plus at most one per sequence. Ties go to the earlier token (stable
    sort), so the result is deterministic. Returns a bool mask within ``mask``; ``rho = 1`` returns
    ``mask`` itself (plain GRPO).
    """
    rho = _check_fraction(rho, "rho")
    if scope not in ("batch", "sequence"):
        raise ValueError(f"scope must be 'batch' or 'sequence', got {scope!r}")
    if entropies.dim() != 2 or mask.shape != entropies.shape:
        raise ValueError(
            f"entropies and mask must both be (B, T), got {tuple(entropies.shape)} and {tuple(mask.shape)}"
        )
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    if adv.dim() != 2 or adv.shape[0] != entropies.shape[0] or adv.shape[1] not in (1, entropies.shape[1]):
        raise ValueError(
            f"advantages must be (B,) or (B, T) matching entropies {tuple(entropies.shape)}, "
            f"got {tuple(advantages.shape)}"
        )
    valid = mask.bool()
    ent = entropies if entropies.is_floating_point() else entropies.float()
    abs_adv = adv.abs().expand_as(ent)
    score = torch.where(valid, abs_adv * ent, -math.inf)
    if not bool(torch.isfinite(score[valid]).all()):
        raise ValueError("advantages and entropies must be finite on valid tokens")
    if scope == "batch":
        n_keep = math.ceil(rho * int(valid.sum()))
        order = torch.sort(score.reshape(-1), descending=True, stable=True).indices[:n_keep]
        keep = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
        keep[order] = True
        keep = keep.view_as(valid)
    else:
        row_keep = torch.ceil(rho * valid.sum(dim=1).double()).long()
        order = torch.sort(score, dim=1, descending=True, stable=True).indices
        pos = torch.arange(score.shape[1], device=score.device).expand_as(order)
        rank = torch.empty_like(order).scatter_(1, order, pos)
        keep = rank < row_keep.unsqueeze(1)
    rows = (valid & (abs_adv > 0)).any(dim=1).nonzero().squeeze(1)
    keep[rows, score[rows].argmax(dim=1)] = True  # first maximum: the earliest best valid token
    return keep & valid


def rho_schedule(
    step: int,
    total_steps: int,
    rho_start: float,
    rho_end: float,
    kind: Literal["linear", "cosine"] = "linear",
) -> float:
    """D3S's dynamic down-sampling ratio: aggressive early (keep few), relaxing to ``rho_end``.

    With ``t = min(step / total_steps, 1)`` (arXiv 2509.22115; curriculum-style schedule):
    ``linear``: ``rho = rho_start + (rho_end - rho_start) * t``;
    ``cosine``: ``rho = rho_start + (rho_end - rho_start) * (1 - cos(pi * t)) / 2``.
    The result stays in ``[min(rho_start, rho_end), max(rho_start, rho_end)]`` and holds at ``rho_end``
    after ``total_steps``. Use it for the token fraction ``rho``, or ``k = ceil(rho * num_generations)``.
    """
    step = _check_int(step, "step", 0)
    total_steps = _check_int(total_steps, "total_steps", 1)
    rho_start = _check_fraction(rho_start, "rho_start")
    rho_end = _check_fraction(rho_end, "rho_end")
    t = min(step / total_steps, 1.0)
    if kind == "linear":
        frac = t
    elif kind == "cosine":
        frac = (1.0 - math.cos(math.pi * t)) / 2.0
    else:
        raise ValueError(f"kind must be 'linear' or 'cosine', got {kind!r}")
    rho = rho_start + (rho_end - rho_start) * frac
    return min(max(rho, min(rho_start, rho_end)), max(rho_start, rho_end))
