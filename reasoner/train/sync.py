"""Weight sync between the learner and its rollout engines: the full weights to send, and the check that the
engine really serves them.

``merged_weights`` yields the policy's full weights under HF state-dict names, with a LoRA adapter merged in
and a sharded learner gathered (FSDP2 DTensors, DeepSpeed ZeRO-3 partitions), which every learner rank must
enter together.

The sync check (trl #5312: a sync that silently did not happen left the importance ratio at ~1e-7): after a
sync the engine's logprobs of the tokens it sampled are compared with the learner's logprobs of the same
tokens, ``gap = |log p_engine(y_t) - log p_learner(y_t)|`` per token, of the distribution the engine reports
(``Engine.logprobs_mode``): the raw logits, or with the off-policy correction on the processed ones (temperature,
top-k, top-p applied to the learner's logits as the engine applies them). The trainer logs the mean and max gap (``sync/logprob_gap_mean|max``) and raises
``WeightSyncError`` when the mean exceeds ``rollout.max_logprob_gap`` (default 0.5).

Measured on smollm2-135m (T=1, 64 tokens): vLLM fp32 vs the fp32 learner 7e-6 mean (max 4e-5); bf16 on either
side ~0.035 mean (max 0.3); on one H200, transformers fp32 3.4e-7, bf16 0.004; a learner 1e-5 per weight away
from the engine's weights ~5e-4. So the default catches wrong or long-stale weights (trl #5312's importance
ratio ~1e-7 is a gap of ~16 nats) with a wide margin over bf16 noise; with fp32 engines ~1e-3 would catch a
single missed sync.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from reasoner.engines.hf import reported_logprobs
from reasoner.types import SampleSpec

__all__ = ["WeightSyncError", "logprob_gap", "merged_weights", "named_weights", "token_logprobs"]


class WeightSyncError(RuntimeError):
    """The rollout engine's logprobs disagree with the learner's: its weights are stale or wrong."""


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
    """The model's full weights with any LoRA adapter merged in (unmerged again on exit).

    A sharded learner is gathered first, so every rank must enter this together: FSDP2 (``fully_shard``,
    accelerate ``fsdp_version: 2``) parameters are DTensors, made whole with ``full_tensor()``; DeepSpeed
    ZeRO-3 parameters are gathered with ``deepspeed.zero.GatheredParameters`` for the duration."""
    peft = hasattr(model, "peft_config") and hasattr(model, "merge_adapter")
    with torch.no_grad(), _zero3_gathered(model):
        if peft:
            model.merge_adapter()
        try:
            yield [(name, _whole(t)) for name, t in named_weights(model)]
        finally:
            if peft:
                model.unmerge_adapter()


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor shard (FSDP2) gathered into the full tensor (a collective); other tensors as they are."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def _zero3_gathered(model: Any) -> contextlib.AbstractContextManager:
    params = [p for p in model.parameters() if hasattr(p, "ds_id")]  # DeepSpeed ZeRO-3 partitions
    if not params:
        return contextlib.nullcontext()
    import deepspeed  # only present where accelerate runs DeepSpeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def token_logprobs(
    model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion_ids: torch.Tensor,
    completion_mask: torch.Tensor, processed: SampleSpec | None = None,
) -> torch.Tensor:  # fmt: skip
    """``(B, T)`` log-probabilities of the completion tokens under ``model``, from one no-grad forward pass over
    prompt + completion: of the raw logits, or with ``processed`` (the rollouts' sampling) of the logits an engine
    in ``logprobs_mode="processed"`` reports (``reasoner.engines.hf.reported_logprobs``)."""
    width = completion_ids.shape[1]
    with torch.no_grad():
        logits = (
            model(
                input_ids=torch.cat([prompt_ids, completion_ids], 1),
                attention_mask=torch.cat([prompt_mask, completion_mask], 1),
                logits_to_keep=width + 1,
            )
            .logits[:, :-1]
            .float()
        )
    logp = (
        torch.log_softmax(logits, -1)
        if processed is None
        else reported_logprobs(logits, processed, "processed")
    )
    return logp.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def logprob_gap(learner: torch.Tensor, engine: Sequence[Sequence[float]]) -> tuple[float, int, float]:
    """(sum, count, max) of ``|learner[i, t] - engine[i][t]|`` over the tokens each engine row has (rows
    without logprobs are skipped); sums and counts add across ranks, maxima take the max."""
    gaps = [
        (learner[i, : len(lp)] - torch.tensor(lp, dtype=learner.dtype)).abs()
        for i, lp in enumerate(engine)
        if lp
    ]
    if not gaps:
        return 0.0, 0, 0.0
    gap = torch.cat(gaps)
    return float(gap.sum()), gap.numel(), float(gap.max())
