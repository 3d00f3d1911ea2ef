r"""Update-selective merging (DLER) and linear interpolation of a base and a tuned model.

DLER (Liu et al. 2025, arXiv 2510.15110, github NVlabs/DLER) keeps the base model's accuracy and gains most
of the RL model's concision, when RL data is scarce, by adding to the base only the largest part of the RL
update. With the update (task vector) :math:`\Delta = \theta_{tuned} - \theta_{base}`:

    theta_merged = theta_base + m * Delta,    m_i = 1[ |Delta_i| is among the k largest |Delta| ]

where ``k = round(keep * N)`` (half up). ``scope="tensor"`` ranks within each tensor (N = its size, k per
tensor); ``scope="global"`` ranks over all tensors together (N = all parameters, one threshold). Ties at the
threshold are broken deterministically: lower flat index first within a tensor, and tensors in sorted-name
order for the global scope, so exactly ``k`` entries are kept. ``keep=0`` gives the base, ``keep=1`` the tuned
model, bit for bit (the merge is ``torch.where(m, tuned, base)``, never ``base + delta`` in floating point).

Linear interpolation (the baseline): ``theta = theta_base + alpha * Delta`` (``torch.lerp``, exact at 0 and 1).

Threshold selection without blowing memory (a 1.5B model's concatenated |Delta| in fp32 is 6 GB, and
``kthvalue``/``topk`` on it would copy it again): an exact two-pass radix select over the IEEE-754 bit
patterns of |Delta| in float32. For non-negative floats the int32 bit pattern orders like the value, so a
65,536-bin histogram of the high 16 bits (pass 1) finds the bin holding the k-th largest value, and a
histogram of the low 16 bits of the entries in that bin (pass 2) finds its exact bit pattern. Memory is
O(largest tensor) plus two histograms; time is two passes over the parameters. The per-tensor scope uses the
same routine on one tensor, so both scopes share one tie rule. Updates are computed one tensor at a time on
demand and ``merge_models`` writes each merged tensor into the base model in place, so the peak is the two
loaded models plus one tensor's temporaries.

``merge_models`` loads the two models (``reasoner.models.resolve`` names) with transformers, checks that
parameter names and shapes match (errors name the tensor), merges, and ``save_pretrained``s the model and the
base's tokenizer to a directory that both engines (transformers and vLLM) load.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from reasoner.types import MERGE_SCOPES, MergeScope

log = logging.getLogger(__name__)

Scope = MergeScope
SCOPES = MERGE_SCOPES
_HI_BINS = 1 << 15  # |x| has sign bit 0: high 16 bits of its pattern are < 2**15
_LO_BINS = 1 << 16
_CHUNK = 1 << 20  # entries scanned at a time when breaking ties

__all__ = [
    "MergeError",
    "MergeReport",
    "check_compatible",
    "interpolate_state_dicts",
    "keep_count",
    "kth_largest_abs",
    "merge_models",
    "select_update",
    "selective_merge",
    "top_abs_mask",
]


class MergeError(ValueError):
    """Models that cannot be merged, or a bad merge parameter; the message names the tensor or field."""


@dataclass(frozen=True)
class MergeReport:
    """What a merge kept."""

    method: str
    """``selective`` (top-|delta|) or ``linear`` (interpolation)."""
    total: int
    """Parameters (entries) compared."""
    kept: int
    """Entries whose update was applied (selective), or ``total`` (linear)."""
    changed: int
    """Entries whose update is non-zero."""
    update_energy: float
    """Fraction of the update's squared L2 norm that was applied (1.0 when everything was kept)."""
    tensors: int
    """Number of tensors merged."""


def keep_count(numel: int, keep: float) -> int:
    """Entries kept out of ``numel`` for a fraction ``keep`` in [0, 1]: ``floor(keep * numel + 0.5)``."""
    if not 0.0 <= keep <= 1.0 or math.isnan(keep):
        raise MergeError(f"keep must be in [0, 1], got {keep!r}")
    return min(numel, int(math.floor(keep * numel + 0.5)))


def _abs_bits(delta: torch.Tensor) -> torch.Tensor:
    """int32 bit patterns of |delta| in float32 (monotone in the value for non-negative floats)."""
    return delta.detach().float().abs().reshape(-1).view(torch.int32)


def _top_bin(hist: torch.Tensor, k: int) -> tuple[int, int]:
    """Bin holding the k-th largest item of a histogram (bins ascending), and the count strictly above it."""
    from_top = hist.flip(0).cumsum(0)
    idx = int(torch.searchsorted(from_top, torch.tensor([k], dtype=from_top.dtype)).item())
    above = int(from_top[idx - 1].item()) if idx > 0 else 0
    return hist.numel() - 1 - idx, above


def kth_largest_abs(deltas: Iterable[torch.Tensor], k: int) -> tuple[float, int]:
    """Exact k-th largest |x| over several tensors by a two-pass radix select (see the module docstring).

    Returns (threshold t, number of entries with |x| > t). ``deltas`` is iterated twice, so pass a list or
    another re-iterable collection; k must be in [1, total entries].
    """
    deltas = list(deltas)
    total = sum(d.numel() for d in deltas)
    if not 1 <= k <= total:
        raise ValueError(f"k must be in [1, {total}], got {k}")
    hist_hi = torch.zeros(_HI_BINS, dtype=torch.int64)
    for d in deltas:
        hist_hi += torch.bincount((_abs_bits(d) >> 16).long(), minlength=_HI_BINS)
    hi, above_hi = _top_bin(hist_hi, k)
    hist_lo = torch.zeros(_LO_BINS, dtype=torch.int64)
    for d in deltas:
        bits = _abs_bits(d)
        hist_lo += torch.bincount((bits[(bits >> 16) == hi] & 0xFFFF).long(), minlength=_LO_BINS)
    lo, above_lo = _top_bin(hist_lo, k - above_hi)
    pattern = torch.tensor([(hi << 16) | lo], dtype=torch.int32)
    return float(pattern.view(torch.float32).item()), above_hi + above_lo


def _mask_at(delta: torch.Tensor, threshold: float, ties: int) -> tuple[torch.Tensor, int]:
    """Entries with |delta| > threshold, plus the first ``ties`` (flat order) equal to it; ties used."""
    a = delta.detach().float().abs().reshape(-1)
    mask = a > threshold
    used = 0
    for start in range(0, a.numel(), _CHUNK):  # chunked: index lists stay small even when millions tie
        if used >= ties:
            break
        equal = a[start : start + _CHUNK] == threshold
        count = int(equal.sum())
        if count <= ties - used:
            mask[start : start + _CHUNK] |= equal
            used += count
        else:
            first = torch.nonzero(equal).flatten()[: ties - used] + start
            mask[first] = True
            used = ties
    return mask.reshape(delta.shape), used


def top_abs_mask(delta: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` largest-|delta| entries of one tensor (ties: lower flat index first)."""
    if k <= 0:
        return torch.zeros(delta.shape, dtype=torch.bool)
    if k >= delta.numel():
        return torch.ones(delta.shape, dtype=torch.bool)
    threshold, above = kth_largest_abs([delta], k)
    return _mask_at(delta, threshold, k - above)[0]


class _Deltas(Mapping[str, torch.Tensor]):
    """``tuned - base`` in float32, computed per tensor on access (never the whole model at once)."""

    def __init__(self, base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor]):
        check_compatible(base, tuned)
        self.base, self.tuned = base, tuned

    def __getitem__(self, name: str) -> torch.Tensor:
        delta = self.tuned[name].detach().float() - self.base[name].detach().float()
        if not torch.isfinite(delta).all():
            raise MergeError(f"tensor {name!r}: the update has non-finite entries (NaN or inf)")
        return delta

    def __iter__(self):
        return iter(sorted(self.base))

    def __len__(self) -> int:
        return len(self.base)


class _Lazy:
    """A re-iterable view of ``deltas[name]`` for ``names`` (radix select makes two passes)."""

    def __init__(self, deltas: Mapping[str, torch.Tensor], names: list[str]):
        self.deltas, self.names = deltas, names

    def __iter__(self):
        return (self.deltas[n] for n in self.names)


def _iter_masks(deltas: Mapping[str, torch.Tensor], keep: float, scope: Scope):
    """Yield (name, delta, mask) in sorted-name order; one delta in memory at a time."""
    if scope not in SCOPES:
        raise MergeError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    names = sorted(deltas)
    if scope == "global":
        sizes = deltas.base if isinstance(deltas, _Deltas) else deltas  # sizes without computing deltas
        k = keep_count(sum(sizes[n].numel() for n in names), keep)
        threshold, above = kth_largest_abs(_Lazy(deltas, names), k) if k else (math.inf, 0)
        ties = k - above
    for name in names:
        delta = deltas[name]
        if scope == "tensor":
            mask = top_abs_mask(delta, keep_count(delta.numel(), keep))
        else:  # sorted-name order decides which tied entries are kept
            mask, used = _mask_at(delta, threshold, ties)
            ties -= used
        yield name, delta, mask


def select_update(
    deltas: Mapping[str, torch.Tensor], keep: float, scope: Scope = "tensor"
) -> dict[str, torch.Tensor]:
    """Masks of the applied update entries per tensor: top ``keep`` fraction of |delta| per tensor or globally."""
    return {name: mask for name, _, mask in _iter_masks(deltas, keep, scope)}


def check_compatible(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor]) -> None:
    """Raise ``MergeError`` naming the first tensor that is missing on one side or differs in shape."""
    for name in sorted(set(base) | set(tuned)):
        if name not in tuned:
            raise MergeError(f"tensor {name!r} is in the base model but not in the tuned model")
        if name not in base:
            raise MergeError(f"tensor {name!r} is in the tuned model but not in the base model")
        if tuple(base[name].shape) != tuple(tuned[name].shape):
            raise MergeError(
                f"tensor {name!r}: base shape {tuple(base[name].shape)} != tuned shape {tuple(tuned[name].shape)}"
            )


def _selective(base, tuned, keep: float, scope: Scope, write) -> MergeReport:
    """Run the selective merge, handing each merged tensor to ``write(name, tensor)``; the report."""
    total = kept = changed = tensors = 0
    energy = kept_energy = 0.0
    for name, delta, mask in _iter_masks(_Deltas(base, tuned), keep, scope):
        write(name, torch.where(mask, tuned[name].detach().to(base[name].dtype), base[name].detach()))
        squared = delta.square()
        total, kept, tensors = total + delta.numel(), kept + int(mask.sum()), tensors + 1
        changed += int((delta != 0).sum())
        energy += float(squared.sum())
        kept_energy += float(squared[mask].sum())
    return MergeReport("selective", total, kept, changed, kept_energy / energy if energy else 1.0, tensors)


def selective_merge(
    base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor], keep: float, scope: Scope = "tensor"
) -> tuple[dict[str, torch.Tensor], MergeReport]:
    """DLER update-selective merge: ``where(top-|delta| mask, tuned, base)`` per tensor (module docstring).

    Returns the merged tensors (dtype of ``base``) and a ``MergeReport``.
    """
    merged: dict[str, torch.Tensor] = {}
    report = _selective(base, tuned, keep, scope, merged.__setitem__)
    return merged, report


def _linear(base, tuned, alpha: float, write) -> MergeReport:
    if not 0.0 <= alpha <= 1.0 or math.isnan(alpha):
        raise MergeError(f"alpha must be in [0, 1], got {alpha!r}")
    check_compatible(base, tuned)
    changed = total = 0
    for name in sorted(base):
        b, t = base[name].detach(), tuned[name].detach()
        write(name, torch.lerp(b.float(), t.float(), alpha).to(b.dtype))
        changed += int((t.float() != b.float()).sum())
        total += b.numel()
    return MergeReport("linear", total, total, changed, alpha**2 if changed else 1.0, len(base))


def interpolate_state_dicts(
    base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor], alpha: float
) -> tuple[dict[str, torch.Tensor], MergeReport]:
    """Linear interpolation ``base + alpha * (tuned - base)`` for alpha in [0, 1], computed in float32."""
    merged: dict[str, torch.Tensor] = {}
    report = _linear(base, tuned, alpha, merged.__setitem__)
    return merged, report


# ---------------------------------------------------------------- models on disk


def _load(name: str, role: str):
    from transformers import AutoModelForCausalLM

    from reasoner.models import UnknownModelError, resolve

    try:
        path = resolve(name)
    except UnknownModelError as err:
        raise MergeError(f"--{role}: {err}") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MergeError(f"--{role} {name!r}: cannot load the model: {first}") from None
    return path, model


def _out_dtype(dtype: str, *configs) -> torch.dtype:
    if dtype != "auto":
        return getattr(torch, dtype)
    dtypes = [getattr(c, "dtype", None) or getattr(c, "torch_dtype", None) or torch.float32 for c in configs]
    dtypes = [getattr(torch, d) if isinstance(d, str) else d for d in dtypes]
    return max(dtypes, key=lambda d: torch.finfo(d).bits)  # the wider of the two: keep=1 stays exact


def merge_models(
    base: str,
    tuned: str,
    out: str | Path,
    *,
    keep: float | None = None,
    alpha: float | None = None,
    scope: Scope = "tensor",
    dtype: str = "auto",
) -> MergeReport:
    """Merge two models on disk into ``out`` (selective with ``keep``, or linear with ``alpha``).

    Both load in float32; the merge covers every parameter (tied weights once); the result is saved in
    ``dtype`` (``auto``: the wider of the two models' dtypes) with the base model's config, generation config
    and tokenizer. Needs memory for two float32 copies of the model.
    """
    from transformers import AutoTokenizer

    if (keep is None) == (alpha is None):
        raise MergeError("give exactly one of keep (selective merge) or alpha (linear interpolation)")
    base_path, base_model = _load(base, "base")
    _, tuned_model = _load(tuned, "tuned")
    target = _out_dtype(dtype, base_model.config, tuned_model.config)
    b = dict(base_model.named_parameters())
    t = dict(tuned_model.named_parameters())

    def write(name: str, tensor: torch.Tensor) -> None:  # in place, one tensor at a time
        with torch.no_grad():
            b[name].copy_(tensor)

    if keep is not None:
        report = _selective(b, t, keep, scope, write)
    elif alpha is not None:  # always here: exactly one of the two was given (checked above)
        report = _linear(b, t, alpha, write)
    del tuned_model, t
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base_model.to(target).save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
    log.debug("merged %s + %s -> %s (%s): kept %d of %d entries", base, tuned, out, report.method, report.kept,
             report.total)  # fmt: skip
    return report
