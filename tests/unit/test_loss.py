"""Hand-computed cases and invariants for reasoner.train.loss.policy_loss (TRL's clipped surrogate)."""

from __future__ import annotations

import math

import pytest
import torch

from reasoner.train.loss import LOSS_TYPES, LOSS_TYPES_GLOBAL, policy_loss

F64 = torch.float64
EPS_LOW, EPS_HIGH = 0.2, 0.28
# 2 rows x 3 tokens; row 1's last token is masked (n = [3, 2], 5 tokens); advantages [1, -2]
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -2.0], dtype=F64)
ZEROS = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
# row 0 token 0: r = 1.5 > 1 + 0.28 with A = 1 > 0 -> clipped to 1.28; row 1 token 0: r = 0.5 < 1 - 0.2 with
# A = -2 < 0 -> clipped to 0.8. Per-token losses: row 0 [-1.28, -1, -1], row 1 [1.6, 2, (2)]; sum 0.32.
CLIPPED = [[math.log(1.5), 0.0, 0.0], [math.log(0.5), 0.0, 0.0]]
# the other sides are not clipped (min picks the unclipped term): A > 0 with r = 0.5, A < 0 with r = 1.5.
# Per-token losses: row 0 [-0.5, -1, -1], row 1 [3, 2, (2)]; sum 2.5.
UNCLIPPED = [[math.log(0.5), 0.0, 0.0], [math.log(1.5), 0.0, 0.0]]


def loss(logps, loss_type, **kw):
    logps = torch.tensor(logps, dtype=F64)
    kw = {"num_items_in_batch": 5, "max_completion_length": 3, **kw}
    return policy_loss(logps, torch.zeros_like(logps), ADV, MASK, loss_type=loss_type, epsilon_low=EPS_LOW,
                       epsilon_high=EPS_HIGH, **kw).item()  # fmt: skip


@pytest.mark.parametrize(
    ("logps", "loss_type", "kw", "expected"),
    [
        # ratio 1: per-token losses row 0 [-1, -1, -1], row 1 [2, 2, (2)]; sum 1
        (ZEROS, "grpo", {}, (-3 / 3 + 4 / 2) / 2),  # 0.5
        (ZEROS, "bnpo", {}, 1 / 5),
        (ZEROS, "dr_grpo", {}, 1 / (2 * 3)),
        (ZEROS, "dr_grpo", {"max_completion_length": 10}, 1 / (2 * 10)),
        (ZEROS, "dapo", {}, 1 / 5),
        (ZEROS, "dapo", {"num_items_in_batch": 10, "num_processes": 2}, 1 / 5),  # 10 tokens over 2 processes
        (ZEROS, "dapo", {"num_items_in_batch": 20, "steps_per_generation": 2, "grad_accum": 2}, 1 / 20),
        (ZEROS, "dapo", {"num_items_in_batch": 10, "steps_per_generation": 2}, 1 / 5),  # a half of the batch
        (ZEROS, "dapo", {"num_items_in_batch": 0}, 1 / 1),  # clamped to 1
        (ZEROS, "grpo", {"grad_accum": 4}, 0.5 / 4),
        (ZEROS, "bnpo", {"grad_accum": 2}, 1 / 5 / 2),
        (CLIPPED, "grpo", {}, (-3.28 / 3 + 3.6 / 2) / 2),  # 0.35333...
        (CLIPPED, "bnpo", {}, 0.32 / 5),
        (CLIPPED, "dr_grpo", {}, 0.32 / 6),
        (CLIPPED, "dapo", {}, 0.32 / 5),
        (UNCLIPPED, "grpo", {}, (-2.5 / 3 + 5 / 2) / 2),  # 0.83333...
        (UNCLIPPED, "bnpo", {}, 2.5 / 5),
        (UNCLIPPED, "dr_grpo", {}, 2.5 / 6),
        (UNCLIPPED, "dapo", {"num_items_in_batch": 50}, 2.5 / 50),
    ],
)
def test_hand_computed(logps, loss_type, kw, expected):
    assert loss(logps, loss_type, **kw) == pytest.approx(expected, rel=1e-12)


def test_fully_masked_row_adds_zero_in_grpo():
    mask = torch.tensor([[1, 1, 1], [0, 0, 0]])
    z = torch.zeros(2, 3, dtype=F64)
    out = policy_loss(z, z, ADV, mask, loss_type="grpo", epsilon_low=EPS_LOW, epsilon_high=EPS_HIGH)
    assert out.item() == pytest.approx(-1 / 2)  # row 0's mean -1, row 1's 0, averaged over both rows


def test_per_token_advantages_match_per_row():
    logps = torch.tensor(CLIPPED, dtype=F64)
    for loss_type in LOSS_TYPES:
        kw = {"loss_type": loss_type, "epsilon_low": EPS_LOW, "epsilon_high": EPS_HIGH,
              "num_items_in_batch": 5, "max_completion_length": 3}  # fmt: skip
        row = policy_loss(logps, torch.zeros_like(logps), ADV, MASK, **kw)
        tok = policy_loss(logps, torch.zeros_like(logps), ADV[:, None].expand(2, 3), MASK, **kw)
        assert tok.item() == pytest.approx(row.item(), rel=1e-12)


def random_batch(seed: int, rows: int = 6, tokens: int = 5):
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(rows, tokens, generator=g, dtype=F64) * 3
    old = logps + 0.5 * torch.randn(rows, tokens, generator=g, dtype=F64)
    adv = torch.randn(rows, generator=g, dtype=F64)
    lengths = torch.randint(1, tokens + 1, (rows,), generator=g)
    mask = (torch.arange(tokens)[None, :] < lengths[:, None]).long()
    return logps, old, adv, mask


def kwargs_for(loss_type, mask, **extra):
    return {"loss_type": loss_type, "epsilon_low": EPS_LOW, "epsilon_high": EPS_HIGH,
            "num_items_in_batch": mask.sum(), "max_completion_length": mask.size(1), **extra}  # fmt: skip


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("seed", range(3))
def test_masked_tokens_do_not_change_loss_or_get_gradient(loss_type, seed):
    logps, old, adv, mask = random_batch(seed)
    kw = kwargs_for(loss_type, mask)
    adv_tok = adv[:, None].expand_as(logps).clone()
    base = policy_loss(logps, old, adv_tok, mask, **kw)
    hidden = mask == 0
    junk_logps = logps.masked_fill(hidden, 7.0).requires_grad_()
    junk_adv = adv_tok.masked_fill(hidden, -123.0)
    out = policy_loss(junk_logps, old.masked_fill(hidden, -9.0), junk_adv, mask, **kw)
    assert out.item() == pytest.approx(base.item(), rel=1e-12)
    (grad,) = torch.autograd.grad(out, junk_logps)
    assert torch.all(grad[hidden] == 0)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("seed", range(3))
def test_ratio_one_is_minus_mean_advantage_over_normaliser(loss_type, seed):
    logps, _, adv, mask = random_batch(seed)
    kw = kwargs_for(loss_type, mask)
    out = policy_loss(logps, logps, adv, mask, **kw).item()
    n = mask.sum(-1).to(F64)
    rows, tokens = mask.shape
    expected = {
        "grpo": -adv.mean(),  # every row has a token here
        "bnpo": -(adv * n).sum() / n.sum(),
        "dr_grpo": -(adv * n).sum() / (rows * tokens),
        "dapo": -(adv * n).sum() / n.sum(),
    }[loss_type]
    assert out == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_clipping_zeroes_the_gradient_beyond_the_clip_range(loss_type):
    old = torch.zeros(2, 1, dtype=F64)
    adv = torch.tensor([1.0, -1.0], dtype=F64)
    mask = torch.ones(2, 1)

    def grad(ratio_pos, ratio_neg):
        logps = torch.tensor([[math.log(ratio_pos)], [math.log(ratio_neg)]], dtype=F64, requires_grad=True)
        out = policy_loss(logps, old, adv, mask, **kwargs_for(loss_type, mask))
        return torch.autograd.grad(out, logps)[0].flatten().tolist()

    # A > 0 beyond 1 + epsilon_high, A < 0 below 1 - epsilon_low: clipped, no gradient
    assert grad(1 + EPS_HIGH + 1e-3, 1 - EPS_LOW - 1e-3) == [0.0, 0.0]
    assert grad(3.0, 0.1) == [0.0, 0.0]
    # inside the range, and on the pessimistic side (A > 0, small ratio; A < 0, large ratio): a gradient
    for ratios in [(1 + EPS_HIGH - 1e-3, 1 - EPS_LOW + 1e-3), (0.1, 3.0), (1.0, 1.0)]:
        g = grad(*ratios)
        assert g[0] < 0 < g[1], ratios  # descent raises the positive row's logp, lowers the negative one's


def test_data_parallel_equivalence_for_global_loss_types():
    """DDP averages per-process gradients: the average of per-shard losses is what N processes optimise."""
    g = torch.Generator().manual_seed(0)
    logps, old, adv, _ = random_batch(1, rows=8, tokens=6)
    lengths = torch.tensor([6, 6, 6, 6, 1, 2, 1, 3])  # the second shard has far fewer tokens
    mask = (torch.arange(6)[None, :] < lengths[:, None]).long()
    logps = logps + 0.01 * torch.randn(logps.shape, generator=g, dtype=F64)
    for loss_type in LOSS_TYPES:
        whole = policy_loss(logps, old, adv, mask, **kwargs_for(loss_type, mask)).item()
        kw = kwargs_for(loss_type, mask, num_processes=2)  # num_items_in_batch stays the global count
        shards = [
            policy_loss(logps[s], old[s], adv[s], mask[s], **kw).item() for s in (slice(0, 4), slice(4, 8))
        ]
        same = sum(shards) / 2 == pytest.approx(whole, rel=1e-12)
        assert same == (loss_type in LOSS_TYPES_GLOBAL), loss_type


def test_unknown_loss_type_and_missing_normalisers_raise():
    z = torch.zeros(2, 3)
    kw = {"epsilon_low": EPS_LOW, "epsilon_high": EPS_HIGH}
    with pytest.raises(ValueError, match="'sapo'"):
        policy_loss(z, z, ADV.float(), MASK, loss_type="sapo", **kw)
    with pytest.raises(ValueError, match="num_items_in_batch"):
        policy_loss(z, z, ADV.float(), MASK, loss_type="dapo", **kw)
    with pytest.raises(ValueError, match="max_completion_length"):
        policy_loss(z, z, ADV.float(), MASK, loss_type="dr_grpo", **kw)
