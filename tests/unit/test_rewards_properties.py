"""Property tests for every reward: monotone in length where the formula says so, no length effect at equal
lengths, correct never below incorrect at the same length, group rewards invariant to sample order."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import REWARDS, RewardFunction

RIGHT, WRONG = r"The answer is \boxed{4}.", r"The answer is \boxed{5}."
REQUIRED = {
    "truncation": {"max_length": 10},
    "difficulty_truncation": {"max_length": 10, "min_length": 4},
    "soft_overlong": {"max_length": 10, "cache_length": 4},
    "cosine": {"max_length": 10},
    "l1_exact": {"target_length": 5},
    "l1_max": {"target_length": 5},
}


def make(name: str, **kwargs) -> RewardFunction:
    return REWARDS[name](**{**REQUIRED.get(name, {}), **kwargs})


def batch(correct: list[bool], lengths: list[int], groups: list[str] | None = None) -> dict:
    """A TRL-style call (same as in test_rewards_formulas): gold "4", RIGHT/WRONG completions."""
    groups = groups or ["p"] * len(correct)
    return {
        "prompts": [f"question {g}" for g in groups],
        "completions": [RIGHT if ok else WRONG for ok in correct],
        "completion_ids": [[11] * n for n in lengths],
        "answer": ["4"] * len(correct),
        "problem_id": groups,
    }


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GROUP_REWARDS = ["kimi", "arora_zanette", "shorter_better", "grpo_lead", "difficulty_truncation"]
PER_SAMPLE = ["accuracy", "format", "truncation", "soft_overlong", "cosine", "l1_exact", "l1_max"]
LENGTH = st.integers(min_value=1, max_value=40)


def single(name: str, correct: bool, length: int, **kwargs) -> float:
    return make(name, **kwargs)(**batch([correct], [length]))[0]


# per-sample rewards: (name, which correctness, direction of the length effect on [1, 40]); L_max = 10 here
MONOTONE = [
    ("truncation", True, "down"),
    ("truncation", False, "down"),
    ("soft_overlong", True, "down"),
    ("cosine", True, "down"),
    ("cosine", False, "up-until-cap"),
    ("l1_max", True, "down"),
    ("accuracy", True, "flat"),
    ("accuracy", False, "flat"),
]


@pytest.mark.parametrize(("name", "correct", "direction"), MONOTONE)
@SETTINGS
@given(a=LENGTH, b=LENGTH)
def test_monotone_in_length(name, correct, direction, a, b):
    short, long = sorted((a, b))
    r_short, r_long = single(name, correct, short), single(name, correct, long)
    if direction == "down":
        assert r_long <= r_short
    elif direction == "flat":
        assert r_long == r_short
    elif long < 10:  # cosine, wrong answers: longer is penalised less, until the cap
        assert r_long >= r_short


@SETTINGS
@given(target=st.integers(1, 30), a=LENGTH, b=LENGTH)
def test_l1_exact_peaks_at_the_target(target, a, b):
    near, far = sorted((a, b), key=lambda n: abs(n - target))
    assert single("l1_exact", True, near, target_length=target) >= single(
        "l1_exact", True, far, target_length=target
    )


@pytest.mark.parametrize("name", PER_SAMPLE + GROUP_REWARDS)
@SETTINGS
@given(length=LENGTH, others=st.lists(LENGTH, max_size=4))
def test_correct_never_below_incorrect_at_the_same_length(name, length, others):
    """Within one group: a correct and an incorrect sample of the same length (plus arbitrary others)."""
    correct = [True, False] + [i % 2 == 0 for i in range(len(others))]
    out = make(name)(**batch(correct, [length, length, *others]))
    assert out[0] >= out[1]


@pytest.mark.parametrize("name", GROUP_REWARDS)
@SETTINGS
@given(length=LENGTH, correct=st.lists(st.booleans(), min_size=1, max_size=6))
def test_equal_lengths_give_no_length_effect(name, length, correct):
    """All lengths equal: the reward depends on correctness only, as in the length-free version."""
    out = make(name)(**batch(correct, [length] * len(correct)))
    by_correctness = {
        ok: {round(r, 9) for r, c in zip(out, correct, strict=True) if c == ok} for ok in (True, False)
    }
    assert all(len(values) <= 1 for values in by_correctness.values())
    neutral = {"kimi": (0.0, 0.0), "arora_zanette": (1 - 0.1 * 0.5, 0.0), "shorter_better": (2.0, 0.0),
               "grpo_lead": (1.0, -1.0)}  # fmt: skip
    if name in neutral:
        assert by_correctness[True] <= {neutral[name][0]} and by_correctness[False] <= {neutral[name][1]}


@pytest.mark.parametrize("name", PER_SAMPLE)
@SETTINGS
@given(length=LENGTH, correct=st.lists(st.booleans(), min_size=1, max_size=6))
def test_per_sample_rewards_at_equal_lengths_depend_on_correctness_only(name, length, correct):
    out = make(name)(**batch(correct, [length] * len(correct)))
    for ok in (True, False):
        assert len({r for r, c in zip(out, correct, strict=True) if c == ok}) <= 1


@pytest.mark.parametrize("name", GROUP_REWARDS)
@SETTINGS
@given(
    rows=st.lists(st.tuples(st.booleans(), LENGTH, st.sampled_from("abc")), min_size=1, max_size=10),
    data=st.data(),
)
def test_group_rewards_invariant_to_order_within_groups(name, rows, data):
    perm = data.draw(st.permutations(range(len(rows))))
    fn = make(name)
    correct, lengths, groups = (list(x) for x in zip(*rows, strict=True))
    base = fn(**batch(correct, lengths, groups))
    shuffled = fn(**batch([correct[i] for i in perm], [lengths[i] for i in perm], [groups[i] for i in perm]))
    assert shuffled == pytest.approx([base[i] for i in perm])


def test_every_registered_reward_has_a_property_test():
    assert set(PER_SAMPLE + GROUP_REWARDS) == set(REWARDS)
