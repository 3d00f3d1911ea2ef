"""Truncated importance weights (``reasoner.offpolicy``) on hand-computed tables, and staleness counts."""

from __future__ import annotations

import math

import pytest
import torch

from reasoner.offpolicy import importance_weights, staleness_counts

LN2, LN4 = math.log(2.0), math.log(4.0)
# two rows of three tokens; the learner is ahead of the behaviour policy by these log-ratios:
# row 0: ln 2, ln 4, 0 (third token masked); row 1: -ln 2, ln 4 * 2 (ratio 16), 0
LEARNER = torch.tensor([[LN2, LN4, 5.0], [-LN2, 2 * LN4, 0.0]])
BEHAVIOUR = torch.zeros(2, 3)
MASK = torch.tensor([[1, 1, 0], [1, 1, 1]])


@pytest.mark.parametrize(
    ("mode", "cap", "cap_min", "expected"),
    [
        ("token_truncate", 3.0, None, [[2.0, 3.0, 1.0], [0.5, 3.0, 1.0]]),
        ("token_mask", 3.0, None, [[2.0, 0.0, 1.0], [0.5, 0.0, 1.0]]),
        ("token_mask", 3.0, 0.6, [[2.0, 0.0, 1.0], [0.0, 0.0, 1.0]]),
        ("token_truncate", 3.0, 0.6, [[2.0, 3.0, 1.0], [0.6, 3.0, 1.0]]),
        # sequence: row 0 ratio 2 * 4 = 8 (masked token left out), row 1 0.5 * 16 * 1 = 8
        ("sequence_truncate", 10.0, None, [[8.0, 8.0, 1.0], [8.0, 8.0, 8.0]]),
        ("sequence_truncate", 3.0, None, [[3.0, 3.0, 1.0], [3.0, 3.0, 3.0]]),
        ("sequence_mask", 3.0, None, [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]),
    ],
)
def test_weights_match_the_hand_computed_table(mode, cap, cap_min, expected):
    weights, _ = importance_weights(LEARNER, BEHAVIOUR, MASK, mode=mode, cap=cap, cap_min=cap_min)
    assert torch.allclose(weights, torch.tensor(expected), atol=1e-5)


def test_statistics_cover_the_masked_tokens_only():
    _, stats = importance_weights(LEARNER, BEHAVIOUR, MASK, mode="token_truncate", cap=3.0)
    # masked tokens: ratios 2, 4 -> 3, 0.5, 16 -> 3 and the unmasked row-1 tail (ratio 1)
    assert stats["is_ratio_min"] == pytest.approx(0.5)
    assert stats["is_ratio_max"] == pytest.approx(3.0)
    assert stats["is_ratio_mean"] == pytest.approx((2 + 3 + 0.5 + 3 + 1) / 5)
    assert stats["truncated_frac"] == pytest.approx(2 / 5)
    assert stats["logp_diff_max"] == pytest.approx(2 * LN4)
    assert stats["logp_diff_mean"] == pytest.approx((LN2 + LN4 + LN2 + 2 * LN4) / 5)


def test_on_policy_rollouts_get_weight_one():
    g = torch.Generator().manual_seed(0)
    lp = -torch.rand(4, 7, generator=g) * 3
    for mode in ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask"):
        weights, stats = importance_weights(lp, lp.clone(), torch.ones(4, 7), mode=mode)
        assert torch.equal(weights, torch.ones(4, 7)) and stats["truncated_frac"] == 0.0


def test_unknown_behaviour_logprobs_count_as_on_policy():
    behaviour = torch.tensor([[math.nan, 0.0], [math.nan, math.nan]])
    learner = torch.tensor([[-9.0, -1.0], [-9.0, -9.0]])
    weights, stats = importance_weights(learner, behaviour, torch.ones(2, 2), mode="token_truncate")
    assert weights[0, 0] == 1.0 and weights[1].tolist() == [1.0, 1.0]
    assert weights[0, 1] == pytest.approx(math.exp(-1.0))
    assert math.isfinite(stats["logp_diff_mean"])


def test_weights_are_monotone_in_the_learner_logprob_until_the_cap():
    learner = torch.linspace(-3, 3, 61).unsqueeze(0)
    weights, _ = importance_weights(learner, torch.zeros_like(learner), torch.ones_like(learner), cap=2.0)
    assert bool((weights[0, 1:] >= weights[0, :-1]).all()) and float(weights.max()) == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "token"}, "token_truncate"),
        ({"cap": 0.0}, "cap"),
        ({"cap": 2.0, "cap_min": 3.0}, "cap_min"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        importance_weights(LEARNER, BEHAVIOUR, MASK, **kwargs)
    with pytest.raises(ValueError, match="same"):
        importance_weights(LEARNER, BEHAVIOUR[:1], MASK)


def test_staleness_counts():
    assert staleness_counts([0, 1, 1, 3], 3) == [1, 2, 1]
    assert staleness_counts([], 2) == [0, 0]
    with pytest.raises(ValueError, match="future"):
        staleness_counts([-1], 2)
