"""The TRL contract: TRL's GRPO loss honours what our hooks hand it (``advantages``, the loss-only
``tool_mask``, ``num_items_in_batch``) and equals ``reasoner.train.loss.policy_loss``. A TRL upgrade that
changes any of it fails a test here.

One processed batch comes from our trainer on the tiny model (TRL's dataloader rows through
``_generate_and_score_completions``, our hooks included); TRL's ``compute_loss`` on it is compared with
``policy_loss`` of log-probabilities from an independent forward pass (logits / temperature, as TRL scores).
"""

from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from reasoner.config import build_config
from reasoner.train.loss import LOSS_TYPES, policy_loss
from reasoner.types import Problem

N = 4
REL = 1e-6


class NoParams(BaseModel):
    """The recipe's entry for ``VaryingReward`` (a test reward outside ``rewards.REWARDS``): no parameters."""

    model_config = ConfigDict(extra="forbid")


class VaryingReward:
    """Varies with the sampled tokens, so the group-normalised advantages are not zero."""

    __name__ = "varying"

    def __call__(self, prompts, completions, completion_ids, **kwargs):
        return [float(sum(ids) % 7) for ids in completion_ids]


@pytest.fixture(scope="module")
def contract(tiny_model, tmp_path_factory):
    """(trainer in train mode, one batch as our ``_generate_and_score_completions`` hands it to the loss)."""
    from reasoner.engines.hf import HFEngine
    from reasoner.train.rollout import EngineRollout
    from reasoner.train.trainer import build_trainer, validate_trainer_args

    tree = {
        "model": {"name": "tiny-random-qwen2"},
        "rollout": {"engine": "hf"},
        "rewards": [{"name": "varying"}],
    }
    overrides = [
        f"trainer.output_dir={tmp_path_factory.mktemp('contract')}",
        "trainer.max_steps=1",
        "trainer.per_device_train_batch_size=8",
        f"trainer.num_generations={N}",
        "trainer.max_completion_length=16",
        "trainer.save_strategy=no",
        "trainer.epsilon_high=0.28",
        "trainer.temperature=0.7",  # TRL scores logits / temperature: a value that shows if it stops
    ]
    recipe = build_config(
        tree, overrides, rewards={"varying": NoParams}, trainer_validators={"grpo": validate_trainer_args}
    )
    problems = [Problem(f"p{i}", f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(6)]
    rollout = EngineRollout(HFEngine(tiny_model, dtype="float32"))
    trainer = build_trainer(
        recipe, reward_funcs=[VaryingReward()], problems=problems, rollout=rollout, quiet=True
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by transformers' training loop
    # G prompts x num_generations rows, each prompt's copies consecutive, as TRL's training loop yields them
    rows = next(iter(trainer.get_train_dataloader()))
    batch = trainer._generate_and_score_completions(rows)
    return trainer, batch


def masked(batch: dict, tool_mask: torch.Tensor | None = None) -> dict:
    """A copy of ``batch`` with some loss-mask zeros (a whole row, a row's tail, scattered tokens) and
    ``num_items_in_batch`` recounted as our hooks count it."""
    out = dict(batch)
    if tool_mask is None:
        tool_mask = batch["tool_mask"].clone()
        c = tool_mask.size(1)
        tool_mask[0] = 0
        tool_mask[1, c // 2 :] = 0
        tool_mask[2, ::3] = 0
    out["tool_mask"] = tool_mask
    out["num_items_in_batch"] = (out["completion_mask"] * tool_mask).sum()
    return out


def our_logps(trainer, batch: dict) -> torch.Tensor:
    """Completion-token log-probabilities from the model's plain forward (full logits / temperature)."""
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    c = batch["completion_ids"].size(1)
    logits = (
        trainer.model(input_ids=ids, attention_mask=attention).logits[:, -c - 1 : -1] / trainer.temperature
    )
    return (
        torch.log_softmax(logits.float(), dim=-1).gather(-1, batch["completion_ids"][..., None]).squeeze(-1)
    )


def our_loss(trainer, batch: dict, logps: torch.Tensor, old_logps: torch.Tensor | None = None):
    """``policy_loss`` of the batch's advantages, loss mask and token count; TRL's normalisers."""
    mask = batch["completion_mask"] * batch["tool_mask"]
    old_logps = logps.detach() if old_logps is None else old_logps
    return policy_loss(
        logps, old_logps, batch["advantages"], mask, loss_type=trainer.loss_type,
        epsilon_low=trainer.epsilon_low, epsilon_high=trainer.epsilon_high,
        num_items_in_batch=batch["num_items_in_batch"], num_processes=trainer.accelerator.num_processes,
        max_completion_length=trainer.max_completion_length,
        grad_accum=trainer.current_gradient_accumulation_steps,
        steps_per_generation=trainer.args.steps_per_generation,
    )  # fmt: skip


def assert_agree(trainer, batch: dict, theirs: torch.Tensor, logps: torch.Tensor, old_logps=None) -> None:
    """TRL's loss equals ``policy_loss`` to ``REL`` of the loss's scale, the same sum with |advantages|: the
    group-centred advantages nearly cancel, so the loss itself is far smaller than the terms it rounds."""
    ours = our_loss(trainer, batch, logps, old_logps).item()
    scale = our_loss(trainer, {**batch, "advantages": batch["advantages"].abs()}, logps.detach()).item()
    assert abs(theirs.item() - ours) <= REL * max(scale, abs(ours)), (theirs.item(), ours, scale)


def trl_loss(trainer, batch: dict, loss_type: str) -> torch.Tensor:
    trainer.loss_type = loss_type  # what GRPOTrainer._compute_loss reads (args.loss_type only at __init__)
    return trainer.compute_loss(trainer.model, batch)


def test_trainer_is_configured_as_policy_loss_assumes(contract):
    trainer, batch = contract
    a = trainer.args
    assert (a.beta, a.importance_sampling_level, a.delta, a.use_vllm) == (0.0, "token", None, False)
    assert (a.top_entropy_quantile, a.off_policy_mask_threshold) == (1.0, None)
    assert (trainer.epsilon_low, trainer.epsilon_high, trainer.temperature) == (0.2, 0.28, 0.7)
    assert "old_per_token_logps" not in batch, "aligned generation: TRL uses logps.detach() as old logps"


def test_hooks_hand_trl_advantages_loss_mask_and_token_count(contract):
    trainer, batch = contract
    b, c = batch["completion_ids"].shape
    assert batch["advantages"].shape == (b,) and bool((batch["advantages"] != 0).any())
    assert batch["tool_mask"].shape == (b, c)
    loss_mask = batch["completion_mask"] * batch["tool_mask"]
    assert int(batch["num_items_in_batch"]) == int(loss_mask.sum())


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_trl_loss_equals_policy_loss(contract, loss_type):
    trainer, batch = contract
    batch = masked(batch)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    ours_logps = our_logps(trainer, batch)
    theirs = trl_loss(trainer, batch, loss_type)
    ours = our_loss(trainer, batch, ours_logps)
    # a degenerate batch has zero advantages (the grpo loss itself is ~0 at ratio 1 on any batch: each sequence
    # weighs its advantage equally and group-normalised advantages sum to zero)
    assert batch["advantages"].abs().max() > 1e-3, "a degenerate batch: all advantages vanish"
    assert_agree(trainer, batch, theirs, ours_logps)

    grad_theirs = torch.autograd.grad(theirs, params)
    grad_ours = torch.autograd.grad(ours, params)
    diff = sum(((x - y) ** 2).sum() for x, y in zip(grad_theirs, grad_ours, strict=True)).sqrt()
    scale = sum((x**2).sum() for x in grad_theirs).sqrt()
    assert scale > 0 and diff / scale < 1e-5, f"gradients differ: relative {float(diff / scale):.2e}"

    # old logps that differ from the current ones: ratios leave [1 - eps_low, 1 + eps_high] and get clipped
    g = torch.Generator().manual_seed(0)
    old = ours_logps.detach() + 0.3 * torch.randn(ours_logps.shape, generator=g)
    ratio = torch.exp(ours_logps.detach() - old)[(batch["completion_mask"] * batch["tool_mask"]).bool()]
    assert bool((ratio > 1 + trainer.epsilon_high).any() and (ratio < 1 - trainer.epsilon_low).any())
    theirs = trl_loss(trainer, {**batch, "old_per_token_logps": old}, loss_type)
    assert_agree(trainer, batch, theirs, ours_logps, old)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_loss_mask_zeroes_gradient_at_masked_tokens(contract, loss_type):
    """The gradient of TRL's loss w.r.t. the LM head's input (the logits are a linear map of it; TRL's
    fused head never materialises them) is exactly zero at masked completion tokens, nonzero at the others."""
    trainer, batch = contract
    b, c = batch["completion_ids"].shape
    advantages = torch.linspace(0.5, 2.0, b) * torch.tensor([1.0, -1.0]).repeat(b // 2)  # none is zero
    batch = masked({**batch, "advantages": advantages})
    captured = []
    hook = trainer.model.base_model.register_forward_hook(
        lambda m, i, out: captured.append(out.last_hidden_state)
    )
    try:
        per_token = {}
        for name, tool_mask in [
            ("masked", batch["tool_mask"]),
            ("open", torch.ones_like(batch["tool_mask"])),
        ]:
            captured.clear()
            loss = trl_loss(trainer, masked(batch, tool_mask), loss_type)
            assert len(captured) == 1, "TRL's loss no longer runs the backbone once through model.base_model"
            (grad,) = torch.autograd.grad(loss, captured[0])
            # hidden state at position p predicts token p + 1: completion token j is scored at -c - 1 + j
            per_token[name] = grad[:, -c - 1 : -1].norm(dim=-1)
    finally:
        hook.remove()
    loss_mask = (batch["completion_mask"] * batch["tool_mask"]).bool()
    assert bool((~loss_mask).any()) and bool(loss_mask.any())
    assert torch.all(per_token["masked"][~loss_mask] == 0), "masked tokens get a gradient"
    assert torch.all(per_token["masked"][loss_mask] > 0), "some unmasked tokens get no gradient"
    assert torch.all(per_token["open"][~loss_mask] > 0), "control: unmasked, those tokens get a gradient"


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_trl_uses_our_advantages(contract, loss_type):
    trainer, batch = contract
    batch = masked(batch)
    logps = our_logps(trainer, batch).detach()
    before = trl_loss(trainer, batch, loss_type).item()
    changed = {
        **batch,
        "advantages": -2.0 * batch["advantages"] + torch.linspace(-1.0, 1.0, len(batch["advantages"])),
    }
    after = trl_loss(trainer, changed, loss_type)
    assert_agree(trainer, changed, after, logps)
    assert abs(after.item() - before) > 1e-3 * max(abs(before), abs(after.item()))


def test_dapo_normalises_by_our_num_items_in_batch(contract):
    trainer, batch = contract
    batch = masked(batch)
    logps = our_logps(trainer, batch).detach()
    base = trl_loss(trainer, batch, "dapo").item()
    scaled = {**batch, "num_items_in_batch": batch["num_items_in_batch"] * 4}
    assert trl_loss(trainer, scaled, "dapo").item() == pytest.approx(base / 4, rel=REL)
    assert_agree(trainer, scaled, trl_loss(trainer, scaled, "dapo"), logps)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_our_in_loss_correction_equals_trls_own_importance_correction(contract, loss_type):
    """Our off-policy correction (``reasoner.train.checks``) weighs each token inside TRL's loss, from its own
    forward pass: advantages ``A_i * w_it`` with ``w = min(pi / mu, cap)``. TRL's own
    ``vllm_importance_sampling_correction`` multiplies each token's loss by a precomputed ``w_it``. Same loss,
    same gradient; and the buffered batch keeps its plain advantages."""
    from reasoner.offpolicy import importance_weights

    trainer, batch = contract
    batch = masked(batch)
    logps = our_logps(trainer, batch).detach()
    g = torch.Generator().manual_seed(1)
    behaviour = logps + 0.5 * torch.randn(logps.shape, generator=g)  # a stale policy's logprobs
    mask = batch["completion_mask"] * batch["tool_mask"]
    weights, stats = importance_weights(logps, behaviour, mask, mode="token_truncate", cap=2.0)
    assert 0 < stats["truncated_frac"] < 1
    ours_batch = {**batch, "sampling_per_token_logps": behaviour}
    trainer._is_mode, trainer._is_stats = "token_truncate", []
    cap = trainer.recipe.rollout.importance_sampling_cap
    trainer.recipe.rollout.importance_sampling_cap = 2.0
    try:
        ours = trl_loss(trainer, ours_batch, loss_type)
    finally:
        trainer._is_mode, trainer.recipe.rollout.importance_sampling_cap = None, cap
    assert torch.equal(ours_batch["advantages"], batch["advantages"]), "the buffered batch was modified"
    [logged] = trainer._is_stats
    assert logged["truncated_frac"] == pytest.approx(stats["truncated_frac"], abs=1e-6)
    trainer.use_vllm, trainer.vllm_importance_sampling_correction = True, True  # TRL's own path, loss only
    try:
        theirs = trl_loss(trainer, {**batch, "importance_sampling_ratio": weights}, loss_type)
    finally:
        trainer.use_vllm, trainer.vllm_importance_sampling_correction = False, False
    assert abs(ours.item() - theirs.item()) <= 1e-6 * max(1.0, abs(theirs.item()))
    plain = trl_loss(trainer, batch, loss_type).item()
    assert abs(plain - theirs.item()) > 1e-4 * max(abs(plain), 1e-3), "the weights should change the loss"
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    grads = [torch.autograd.grad(x, params) for x in (ours, theirs)]
    diff = sum(((a - b) ** 2).sum() for a, b in zip(*grads, strict=True)).sqrt()
    assert diff <= 1e-6 * sum((a**2).sum() for a in grads[1]).sqrt()
