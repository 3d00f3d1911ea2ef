"""Difficulty: pass-rate tracker, pruning schedule (reasoner/train/difficulty.py), Difficulty-Aware DLER caps
(reasoner/length_caps.py: the ``difficulty_truncation`` reward's cap from the trainer's ``pass_rate`` column)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reasoner.length_caps import da_cap
from reasoner.train.difficulty import (
    DifficultyState,
    PassRateTracker,
    PromptPruner,
    pass_rate_histogram,
    stream_pass_rate,
)


def test_tracker_running_mean_over_samples():
    t = PassRateTracker()
    assert t.rate("a") is None
    assert t.update("a", [True, False, False, False]) == pytest.approx(0.25)
    assert t.update("a", [True, True]) == pytest.approx(3 / 6)
    assert t.samples["a"] == 6 and t.groups["a"] == 2 and len(t) == 1


def test_tracker_ema():
    t = PassRateTracker(momentum=0.5)
    t.update("a", [False, False])
    assert t.update("a", [True, True]) == pytest.approx(0.5)
    assert t.update("a", [True, True]) == pytest.approx(0.75)


@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=8), min_size=1, max_size=10))
def test_tracker_mean_equals_pooled_fraction(groups):
    t = PassRateTracker()
    for g in groups:
        t.update("p", g)
    flat = [c for g in groups for c in g]
    assert t.rate("p") == pytest.approx(sum(flat) / len(flat))
    assert 0.0 <= t.rate("p") <= 1.0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_tracker_rejects_bad_momentum(bad):
    with pytest.raises(ValueError, match="momentum"):
        PassRateTracker(momentum=bad)


def test_tracker_rejects_empty_group():
    with pytest.raises(ValueError):
        PassRateTracker().update("a", [])


def test_histogram_bins_and_edges():
    assert pass_rate_histogram([0.0, 0.19, 0.2, 0.5, 0.99, 1.0], bins=5) == [2, 1, 1, 0, 2]
    assert pass_rate_histogram([], bins=3) == [0, 0, 0]
    with pytest.raises(ValueError):
        pass_rate_histogram([0.5], bins=0)


@pytest.mark.parametrize("outcome", [[True] * 4, [False] * 4])
def test_pruner_skips_uniform_prompts_then_revisits(outcome):
    p = PromptPruner(skip_epochs=2)
    assert p.observe("a", outcome, epoch=0) is True
    assert p.is_skipped("a", 0) and p.is_skipped("a", 1) and p.is_skipped("a", 2)
    assert not p.is_skipped("a", 3)  # revisited after the rest of epoch 0 and skip_epochs whole epochs
    assert "a" not in p.pruned  # forgotten: the next group decides again
    assert not p.is_skipped("a", 4)


def test_pruner_skip_epochs_1_skips_the_next_epoch():
    """A prompt comes once per epoch: skipping it only for the rest of the epoch it was pruned in (the old
    ``epoch < since + skip_epochs``) never skipped an appearance at the default skip_epochs=1."""
    p = PromptPruner(skip_epochs=1)
    assert p.observe("a", [True] * 4, epoch=3) is True
    assert p.is_skipped("a", 4)
    assert not p.is_skipped("a", 5)


def test_pruner_keeps_mixed_prompts():
    p = PromptPruner(skip_epochs=1)
    assert p.observe("a", [True, False], epoch=0) is False
    assert not p.is_skipped("a", 0)


def test_pruner_min_seen_needs_consecutive_uniform_groups():
    p = PromptPruner(skip_epochs=1, min_seen=2)
    assert p.observe("a", [True, True], 0) is False
    assert p.observe("a", [False, False], 0) is False  # a different kind restarts the streak
    assert p.observe("a", [True, False], 0) is False  # mixed resets
    assert p.observe("a", [True, True], 1) is False
    assert p.observe("a", [True, True], 1) is True
    assert p.is_skipped("a", 2) and not p.is_skipped("a", 3)


@pytest.mark.parametrize("args", [(0, 1), (1, 0)])
def test_pruner_rejects_bad_args(args):
    with pytest.raises(ValueError):
        PromptPruner(*args)


@pytest.mark.parametrize(
    ("rate", "cap"), [(None, 4000), (0.0, 4000), (0.5, 2500), (1.0, 1000), (1.5, 1000), (-1.0, 4000)]
)
def test_da_cap_linear_in_pass_rate(rate, cap):
    assert da_cap(rate, 4000, 1000) == cap


# cap(p) = round(L_max - (L_max - L_min) * p) by hand; round() halves to even
DA_CAPS = [
    (0.3, 96, 48, 82),  # 96 - 48 * 0.3 = 81.6
    (0.25, 10, 4, 8),  # 10 - 1.5 = 8.5 -> 8 (half to even)
    (0.75, 10, 4, 6),  # 10 - 4.5 = 5.5 -> 6 (half to even)
    (0.5, 10, 4, 7),
    (1 / 3, 100, 10, 70),
    (0.9, 4000, 1000, 1300),
    (0.5, 50, 50, 50),  # L_min = L_max: no difficulty
    (None, 96, 48, 96),  # unseen prompt
    (2.0, 96, 48, 48),  # clipped to p = 1
]


@pytest.mark.parametrize(("rate", "max_length", "min_length", "cap"), DA_CAPS)
def test_da_cap_hand_computed(rate, max_length, min_length, cap):
    assert da_cap(rate, max_length, min_length) == cap


def test_reward_cap_follows_the_trainers_pass_rate_and_falls_back_in_group():
    """The reward's cap for a running pass rate is ``da_cap``'s (correct at cap - 1 tokens earns 1, at cap 0);
    a prompt the trainer has not seen (None) uses its group's rate, and the mean cap is logged."""
    from rewards import DifficultyTruncation

    reward = DifficultyTruncation(max_length=96, min_length=48)
    rate, cap = 0.3, da_cap(0.3, 96, 48)  # 82 (DA_CAPS)
    logged: dict[str, float] = {}
    got = reward(completions=[r"\boxed{4}"] * 2, completion_ids=[[1] * (cap - 1), [1] * cap], answer=["4"] * 2,
                 problem_id=["a", "a"], pass_rate=[rate, rate], log_metric=logged.__setitem__)  # fmt: skip
    assert cap == 82 and got == [1.0, 0.0] and logged == {"difficulty/mean_cap": 82.0}
    # unseen: in-group rate 1/2 (one correct of two) -> cap 72; 71 tokens earn 1, 72 tokens would not
    got = reward(completions=[r"\boxed{4}", r"\boxed{5}"], completion_ids=[[1] * 71, [1] * 10],
                 answer=["4"] * 2, problem_id=["b", "b"], pass_rate=[None, None])  # fmt: skip
    assert da_cap(0.5, 96, 48) == 72 and got == [1.0, 0.0]


@given(st.floats(0, 1), st.floats(0, 1))
def test_da_cap_tightens_for_easier_prompts(a, b):
    lo, hi = sorted((a, b))
    assert 1000 <= da_cap(hi, 4000, 1000) <= da_cap(lo, 4000, 1000) <= 4000


@pytest.mark.parametrize(("max_length", "min_length"), [(100, 200), (100, 0)])
def test_da_cap_rejects_bad_bounds(max_length, min_length):
    with pytest.raises(ValueError):
        da_cap(0.5, max_length, min_length)


def test_state_round_trips_through_json():
    state = DifficultyState(PassRateTracker(), PromptPruner(skip_epochs=3, min_seen=1))
    state.observe("a", [True, True], epoch=1)
    state.observe("b", [True, False], epoch=1)
    state.stream_pos = 17
    restored = DifficultyState(PassRateTracker(), PromptPruner(skip_epochs=3, min_seen=1))
    restored.load_state_dict(json.loads(json.dumps(state.state_dict())))
    assert restored.state_dict() == state.state_dict()
    assert restored.tracker.rate("b") == 0.5 and restored.pruner.is_skipped("a", 2)
    assert restored.stream_pos == 17


def test_stream_pass_rate_counts_pruned_prompts_at_their_running_rate():
    # step of 4 prompts: a and b trained (group fractions 1/2 and 1), c pruned as solved, d pruned as failed
    trained = {"a": [True, False], "b": [True, True], "x": [False, False]}  # x: a substitute, not counted
    rate = stream_pass_rate(["a", "b", "c", "d"], trained, {"c": 1.0, "d": 0.0, "a": 0.2})
    assert rate == pytest.approx((0.5 + 1.0 + 1.0 + 0.0) / 4)
    # without pruning: the batch's fraction solved
    assert stream_pass_rate(["a", "b"], trained, {}) == pytest.approx(0.75)


def test_stream_pass_rate_rejects_unknown_prompts():
    with pytest.raises(ValueError, match="'c'"):
        stream_pass_rate(["a", "c"], {"a": [True]}, {})
    with pytest.raises(ValueError):
        stream_pass_rate([], {}, {})
