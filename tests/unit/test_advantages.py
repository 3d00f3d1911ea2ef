"""Invariant and hand-computed tests for reasoner.advantages (pure tensor functions)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.advantages import (
    d3s_select_samples,
    d3s_token_mask,
    dynamic_sampling_mask,
    group_advantages,
    group_layout,
    rho_schedule,
)

F64 = torch.float64
FAST = settings(max_examples=60, deadline=None)  # per test, not a global profile


@st.composite
def grouped_rewards(draw, max_groups=4, max_gen=6, values=None):
    """(rewards float64, num_generations): sometimes binary (ties, constant groups), sometimes real."""
    n = draw(st.integers(1, max_gen))
    g = draw(st.integers(1, max_groups))
    elem = values or st.one_of(st.sampled_from([0.0, 1.0]), st.floats(-10, 10, allow_nan=False))
    xs = draw(st.lists(elem, min_size=n * g, max_size=n * g))
    return torch.tensor(xs, dtype=F64), n


def t(xs, dtype=F64):
    return torch.tensor(xs, dtype=dtype)


# ---------------------------------------------------------------- group_advantages: hand tables

HAND_TABLE = [
    # [1,0,0,0]: mean .25, c = [.75,-.25,-.25,-.25], var = (.5625 + 3*.0625)/3 = .25, std .5
    ([1, 0, 0, 0], 4, "group", None, [1.5, -0.5, -0.5, -0.5]),
    # two groups [1,0]: c = [.5,-.5], std = sqrt(.5/1) = 1/sqrt2 -> A = +-1/sqrt2
    ([1, 0, 1, 0], 2, "group", None, [2**-0.5, -(2**-0.5), 2**-0.5, -(2**-0.5)]),
    # Dr. GRPO: centred only; [3,1] -> [1,-1]; constant [2,2] -> [0,0]
    ([3, 1, 2, 2], 2, "none", None, [1, -1, 0, 0]),
    # DLER batch: c = [.5,-.5,0,0], m = 0, var = (.25+.25)/(4-1) = 1/6 -> A = .5*sqrt6 = sqrt(1.5)
    ([1, 0, 2, 2], 2, "batch", None, [1.5**0.5, -(1.5**0.5), 0, 0]),
    # token-weighted, w = [1,3,1,1]: c = [.5,-.5,.5,-.5]; m = (.5-1.5+.5-.5)/6 = -1/6;
    # c-m = [2/3,-1/3,2/3,-1/3]; sum w(c-m)^2 = (4+3+4+1)/9 = 4/3; V1 = 6, V2 = 12, denom = 6-2 = 4;
    # var = 1/3 -> A = (c-m)*sqrt3 = [2/sqrt3, -1/sqrt3, 2/sqrt3, -1/sqrt3]
    ([1, 0, 1, 0], 2, "batch", [1, 3, 1, 1], [2 / 3**0.5, -(3**-0.5), 2 / 3**0.5, -(3**-0.5)]),
]


@pytest.mark.parametrize(("rewards", "n", "normalize", "lengths", "expected"), HAND_TABLE)
def test_group_advantages_hand_table(rewards, n, normalize, lengths, expected):
    lengths = None if lengths is None else torch.tensor(lengths)
    adv = group_advantages(t(rewards), n, normalize=normalize, eps=0.0, token_lengths=lengths)
    torch.testing.assert_close(adv, t(expected))


def test_group_mode_matches_trl_default_eps():
    # TRL: (r - mean) / (std + 1e-4); [1,0,0,0] -> 1.5 * .5 / (.5 + 1e-4)
    adv = group_advantages(t([1, 0, 0, 0]), 4)
    torch.testing.assert_close(adv, t([0.75, -0.25, -0.25, -0.25]) / (0.5 + 1e-4))


def test_constant_group_gets_zero_advantage_and_singletons_are_finite():
    assert torch.equal(group_advantages(t([1.0, 1.0, 1.0]), 3), t([0.0, 0.0, 0.0]))
    for mode in ("group", "batch", "none"):
        assert torch.equal(group_advantages(t([0.3, 0.7]), 1, normalize=mode), t([0.0, 0.0]))


def test_integer_rewards_and_float32_are_accepted():
    adv = group_advantages(torch.tensor([1, 0, 0, 0]), 4, eps=0.0)
    assert adv.dtype == torch.get_default_dtype()
    torch.testing.assert_close(adv, torch.tensor([1.5, -0.5, -0.5, -0.5]))
    assert group_advantages(t([1, 0], torch.float32), 2).dtype == torch.float32


# ---------------------------------------------------------------- group_advantages: invariants


@FAST
@given(grouped_rewards(), st.sampled_from(["group", "batch", "none"]))
def test_zero_mean_per_group(data, normalize):
    rewards, n = data
    adv = group_advantages(rewards, n, normalize=normalize)
    assert adv.shape == rewards.shape
    torch.testing.assert_close(adv.view(-1, n).mean(dim=1), torch.zeros(len(rewards) // n, dtype=F64))


@FAST
@given(grouped_rewards(max_groups=1))
def test_batch_equals_group_for_a_single_group(data):
    rewards, n = data
    torch.testing.assert_close(
        group_advantages(rewards, n, normalize="batch"), group_advantages(rewards, n, normalize="group")
    )


@FAST
@given(grouped_rewards())
def test_none_is_centred_only(data):
    rewards, n = data
    centred = (rewards.view(-1, n) - rewards.view(-1, n).mean(dim=1, keepdim=True)).reshape(-1)
    torch.testing.assert_close(group_advantages(rewards, n, normalize="none"), centred)


@FAST
@given(grouped_rewards(), st.integers(1, 4000))
def test_token_weighted_equals_unweighted_for_equal_lengths(data, length):
    rewards, n = data
    lengths = torch.full_like(rewards, float(length))
    torch.testing.assert_close(
        group_advantages(rewards, n, normalize="batch", token_lengths=lengths),
        group_advantages(rewards, n, normalize="batch"),
    )


@FAST
@given(grouped_rewards(), st.data())
def test_token_weighted_batch_mean_is_zero_and_std_is_one(data, draw):
    rewards, n = data
    lengths = t(draw.draw(st.lists(st.integers(1, 50), min_size=len(rewards), max_size=len(rewards))))
    adv = group_advantages(rewards, n, normalize="batch", token_lengths=lengths, eps=0.0)
    assert abs(float((lengths * adv).sum() / lengths.sum())) < 1e-9
    v1, v2 = lengths.sum(), (lengths**2).sum()
    var = (lengths * adv**2).sum() / (v1 - v2 / v1)
    if bool(torch.isfinite(adv).all()) and float(adv.abs().max()) > 0:
        assert float(var) == pytest.approx(1.0, rel=1e-9)


@FAST
@given(grouped_rewards(), st.floats(-100, 100), st.floats(0.1, 10))
def test_group_mode_is_invariant_to_affine_rewards(data, shift, scale):
    rewards, n = data
    a = group_advantages(rewards, n, eps=0.0)
    b = group_advantages(rewards * scale + shift, n, eps=0.0)
    spread = rewards.view(-1, n).std(dim=1) if n > 1 else torch.zeros(1, dtype=F64)
    if bool((spread > 1e-3).all()):  # skip near-constant groups, where c / std is ill-conditioned
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- group_layout


def test_group_layout_contiguous_ids_give_identity():
    layout = group_layout(torch.tensor([4, 4, 4, 9, 9, 9]))
    assert torch.equal(layout.perm, torch.arange(6)) and layout.num_generations == 3


def test_group_layout_round_trip_matches_direct_computation():
    ids = torch.tensor([7, 3, 7, 3, 5, 5])
    rewards = t([1, 0, 0, 1, 2, 4])
    layout = group_layout(ids)
    # groups by first appearance: 7 -> rows 0, 2; 3 -> rows 1, 3; 5 -> rows 4, 5
    assert layout.perm.tolist() == [0, 2, 1, 3, 4, 5] and layout.num_generations == 2
    adv = group_advantages(rewards[layout.perm], 2, normalize="none")[layout.inverse]
    torch.testing.assert_close(adv, t([0.5, -0.5, -0.5, 0.5, -1, 1]))


@FAST
@given(st.integers(1, 5), st.integers(1, 5), st.randoms(use_true_random=False))
def test_group_layout_makes_any_shuffle_contiguous(g, n, rnd):
    ids = [gid * 10 for gid in range(g) for _ in range(n)]
    rnd.shuffle(ids)
    layout = group_layout(torch.tensor(ids))
    grouped = torch.tensor(ids)[layout.perm].view(g, n)
    assert layout.num_generations == n and bool((grouped == grouped[:, :1]).all())
    assert torch.equal(layout.perm[layout.inverse], torch.arange(g * n))


# ---------------------------------------------------------------- dynamic_sampling_mask

DS_TABLE = [
    ([0.1 + 0.2, 0.3], 2, [False]),  # differ by one ulp in float64: still "constant"
    ([1.0, 1.0, 0.0, 1.0], 2, [False, True]),
    ([0.0, 0.0, 0.0, 0.0], 4, [False]),
    ([0.0, 1e-3], 2, [True]),  # a small but real spread is a signal
    ([0.3, 0.3, 0.3, 0.7, 0.7, 0.7], 3, [False, False]),
    ([0.5, 0.2], 1, [False, False]),  # a group of one has no spread
]


@pytest.mark.parametrize(("rewards", "n", "expected"), DS_TABLE)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dynamic_sampling_table(rewards, n, expected, dtype):
    mask = dynamic_sampling_mask(t(rewards, dtype), n)
    assert mask.dtype == torch.bool and mask.tolist() == expected


def test_dynamic_sampling_near_constant_differs_from_exact_zero_test():
    rewards = t([0.1 + 0.2, 0.3])
    assert rewards[0] != rewards[1]  # an `== 0` test on the spread would call this informative
    assert dynamic_sampling_mask(rewards, 2).tolist() == [False]
    assert dynamic_sampling_mask(torch.tensor([1, 1, 0, 1]), 2).tolist() == [False, True]


# ---------------------------------------------------------------- D3S sample level


def _brute_force_max_var(values: list[float], k: int) -> float:
    return max(
        torch.tensor(c, dtype=F64).var(unbiased=False).item() for c in itertools.combinations(values, k)
    )


@FAST
@given(grouped_rewards(max_groups=3, max_gen=8), st.data())
def test_d3s_subset_maximises_variance_against_brute_force(data, draw):
    adv, n = data
    k = draw.draw(st.integers(1, n))
    idx = d3s_select_samples(adv, n, k)
    assert idx.dtype == torch.long and idx.shape == (len(adv) // n * k,)
    for gi, chosen in enumerate(idx.view(-1, k)):
        assert chosen.tolist() == sorted(set(chosen.tolist()))  # distinct, ascending
        assert bool(((chosen >= gi * n) & (chosen < (gi + 1) * n)).all())  # stays in its group
        best = _brute_force_max_var(adv[gi * n : (gi + 1) * n].tolist(), k)
        assert adv[chosen].var(unbiased=False).item() == pytest.approx(best, rel=1e-9, abs=1e-12)


D3S_TABLE = [
    # {0,1,10}: mean 11/3, var = (121+64+361)/27 = 20.2 beats {0,3,10}: 17.6, {2,3,10}: 12.7, {0,1,2}: .67
    ([0, 1, 2, 3, 10], 5, 3, [0, 1, 4]),
    ([0, 1, 2, 3, 10], 5, 2, [0, 4]),  # extremes
    # two groups of 3, k = 2: extremes of each, global indices
    ([5, 1, 3, -1, 0, 4], 3, 2, [0, 1, 3, 5]),
    # ties: stable sort puts 0s (rows 3,4,5) before 1s (rows 0,1,2); j = 1 wins -> lowest 0, highest 1
    ([1, 1, 1, 0, 0, 0], 6, 2, [2, 3]),
    ([2, 7, 1], 3, 3, [0, 1, 2]),  # k = n keeps everything
]


@pytest.mark.parametrize(("adv", "n", "k", "expected"), D3S_TABLE)
def test_d3s_select_hand_table(adv, n, k, expected):
    assert d3s_select_samples(t(adv), n, k).tolist() == expected


def test_d3s_select_is_deterministic_on_ties():
    adv = t([0.0, 1.0] * 8)
    first = d3s_select_samples(adv, 8, 4)
    assert all(torch.equal(first, d3s_select_samples(adv.clone(), 8, 4)) for _ in range(3))
    assert adv[first].view(-1, 4).sum(dim=1).tolist() == [2.0, 2.0]  # balanced: two 0s, two 1s


# ---------------------------------------------------------------- D3S token level


def test_token_mask_hand_table():
    adv = t([1.0, -2.0])
    ent = t([[0.1, 0.5, 0.2], [0.3, 0.1, 0.0]])
    mask = torch.ones(2, 3, dtype=torch.long)
    # scores |A| * H = [[.1, .5, .2], [.6, .2, 0]]
    # batch, rho = 1/3: ceil(6/3) = 2 tokens -> .6 (row 1, t 0) and .5 (row 0, t 1)
    assert d3s_token_mask(adv, ent, mask, 1 / 3).tolist() == [[False, True, False], [True, False, False]]
    # sequence, rho = .5: ceil(1.5) = 2 per row -> row 0: .5, .2; row 1: .6, .2
    got = d3s_token_mask(adv, ent, mask, 0.5, scope="sequence")
    assert got.tolist() == [[False, True, True], [True, True, False]]


def test_token_mask_guarantees_one_token_per_sequence_with_signal():
    adv = t([5.0, 0.01, 0.0])
    ent = t([[1.0, 1.0, 1.0, 1.0], [0.1, 0.3, 0.2, 0.0], [2.0, 2.0, 2.0, 2.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]])
    got = d3s_token_mask(adv, ent, mask, 0.1)  # ceil(11 * .1) = 2: both from row 0
    # row 0: first two (ties go to the earlier token); row 1: its best (.003 at t 1); row 2: A = 0, nothing
    assert got.tolist() == [[True, True, False, False], [False, True, False, False], [False] * 4]


def test_token_mask_rho_one_is_the_input_mask_and_padding_is_never_kept():
    gen = torch.Generator().manual_seed(0)
    ent = torch.rand(4, 7, generator=gen)
    mask = torch.rand(4, 7, generator=gen) > 0.3
    adv = torch.randn(4, generator=gen)
    for scope in ("batch", "sequence"):
        assert torch.equal(d3s_token_mask(adv, ent, mask, 1.0, scope=scope), mask)
        assert not bool((d3s_token_mask(adv, ent, mask, 0.2, scope=scope) & ~mask).any())


@FAST
@given(
    st.integers(1, 5),
    st.integers(1, 9),
    st.floats(0.01, 1.0),
    st.sampled_from(["batch", "sequence"]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_token_mask_keeps_the_right_fraction_and_the_top_scores(b, tlen, rho, scope, per_token, seed):
    gen = torch.Generator().manual_seed(seed)
    ent = torch.rand(b, tlen, generator=gen, dtype=F64)
    mask = torch.rand(b, tlen, generator=gen) > 0.25
    adv = torch.randn(b, tlen if per_token else 1, generator=gen, dtype=F64) * (
        torch.rand(b, 1, generator=gen) > 0.2
    )
    got = d3s_token_mask(adv.squeeze(1) if not per_token else adv, ent, mask, rho, scope=scope)
    score = torch.where(mask, adv.abs() * ent, -math.inf)
    has_signal = (mask & (adv.abs() > 0)).any(dim=1)
    rows = range(b) if scope == "sequence" else [None]
    for r in rows:
        sel = (slice(None),) if r is None else (r,)
        s, m, g = score[sel].reshape(-1), mask[sel].reshape(-1), got[sel].reshape(-1)
        n_keep = math.ceil(rho * int(m.sum()))
        extra = int(has_signal.sum()) if r is None else int(bool(has_signal[r]))
        assert n_keep <= int(g.sum()) <= n_keep + extra
        top = torch.sort(s, descending=True, stable=True).indices[:n_keep]
        assert bool(g[top].all())  # the top scores are kept
        if n_keep < int(m.sum()) and int(g.sum()) == n_keep:
            assert float(s[g].min()) >= float(s[m & ~g].max())  # nothing skipped is better
    for r in range(b):  # the per-sequence guarantee
        assert bool(got[r].any()) or not bool(has_signal[r])


# ---------------------------------------------------------------- rho schedule

SCHED_TABLE = [
    (0, 100, 0.2, 1.0, "linear", 0.2),
    (50, 100, 0.2, 1.0, "linear", 0.6),  # .2 + .8 * .5
    (100, 100, 0.2, 1.0, "linear", 1.0),
    (250, 100, 0.2, 1.0, "linear", 1.0),  # holds after total_steps
    (50, 100, 0.2, 1.0, "cosine", 0.6),  # (1 - cos(pi/2)) / 2 = .5
    (25, 100, 0.2, 1.0, "cosine", 0.2 + 0.8 * (1 - math.cos(math.pi / 4)) / 2),
    (7, 10, 0.5, 0.5, "cosine", 0.5),
]


@pytest.mark.parametrize(("step", "total", "start", "end", "kind", "expected"), SCHED_TABLE)
def test_rho_schedule_table(step, total, start, end, kind, expected):
    assert rho_schedule(step, total, start, end, kind=kind) == pytest.approx(expected)


@FAST
@given(
    st.integers(1, 1000),
    st.floats(0.01, 1.0),
    st.floats(0.01, 1.0),
    st.sampled_from(["linear", "cosine"]),
)
def test_rho_schedule_bounded_and_monotone(total, a, b, kind):
    steps = [*range(0, total, max(1, total // 50)), total, total + 2]
    values = [rho_schedule(s, total, a, b, kind=kind) for s in steps]
    assert all(min(a, b) <= v <= max(a, b) for v in values)
    assert values[0] == pytest.approx(a) and values[-1] == pytest.approx(b)
    pairs = list(zip(values, values[1:], strict=False))
    assert all(y >= x for x, y in pairs) if a <= b else all(y <= x for x, y in pairs)


# ---------------------------------------------------------------- invalid arguments

ENT = torch.ones(2, 3)
MASK = torch.ones(2, 3, dtype=torch.bool)

INVALID = [
    (lambda: group_advantages(torch.ones(5), 2), "num_generations=2 does not divide len\\(rewards\\)=5"),
    (lambda: group_advantages(torch.ones(4), 0), "num_generations must be an int >= 1, got 0"),
    (lambda: group_advantages(torch.ones(4), True), "num_generations"),
    (lambda: group_advantages(torch.ones(2, 2), 2), "rewards must be a non-empty 1-D tensor"),
    (lambda: group_advantages(torch.ones(0), 2), "rewards must be a non-empty 1-D tensor"),
    (lambda: group_advantages(torch.ones(4), 2, normalize="std"), "normalize must be .* got 'std'"),
    (lambda: group_advantages(torch.ones(4), 2, eps=-1.0), "eps must be"),
    (lambda: group_advantages(t([1, math.nan]), 2), "rewards must be finite"),
    (lambda: group_advantages(torch.ones(4), 2, "batch", token_lengths=torch.ones(3)), "token_lengths must"),
    (lambda: group_advantages(torch.ones(2), 2, "batch", token_lengths=t([-1, 2])), "token_lengths must"),
    (lambda: group_advantages(torch.ones(4), 2, "group", token_lengths=torch.ones(4)), "token_lengths is"),
    (lambda: dynamic_sampling_mask(torch.ones(3), 2), "num_generations=2 does not divide"),
    (lambda: dynamic_sampling_mask(torch.ones(4), 2, eps=math.inf), "eps must be"),
    (lambda: d3s_select_samples(torch.ones(8), 4, 5), "k=5 exceeds the group size num_generations=4"),
    (lambda: d3s_select_samples(torch.ones(8), 4, 0), "k must be an int >= 1, got 0"),
    (lambda: d3s_select_samples(torch.ones(7), 4, 2), "does not divide len\\(advantages\\)=7"),
    (lambda: d3s_token_mask(torch.ones(2), ENT, MASK, 0.0), "rho must be in \\(0, 1\\], got 0.0"),
    (lambda: d3s_token_mask(torch.ones(2), ENT, MASK, 1.5), "rho must be in \\(0, 1\\], got 1.5"),
    (lambda: d3s_token_mask(torch.ones(2), ENT, MASK, math.nan), "rho must be"),
    (lambda: d3s_token_mask(torch.ones(2), ENT, MASK, "half"), "rho must be"),
    (lambda: d3s_token_mask(torch.ones(3), ENT, MASK, 0.5), "advantages must be"),
    (lambda: d3s_token_mask(torch.ones(2, 2), ENT, MASK, 0.5), "advantages must be"),
    (lambda: d3s_token_mask(torch.ones(2), ENT, MASK[:, :2], 0.5), "entropies and mask"),
    (lambda: d3s_token_mask(torch.ones(2), ENT, MASK, 0.5, scope="group"), "scope must be"),
    (lambda: d3s_token_mask(torch.ones(2), ENT * math.nan, MASK, 0.5), "must be finite"),
    (lambda: group_layout(torch.tensor([1, 1, 2])), "group_ids: groups must have equal sizes"),
    (lambda: rho_schedule(0, 10, 0.0, 1.0), "rho_start must be in \\(0, 1\\], got 0.0"),
    (lambda: rho_schedule(0, 10, 0.5, 1.2), "rho_end must be in \\(0, 1\\], got 1.2"),
    (lambda: rho_schedule(0, 0, 0.5, 1.0), "total_steps must be an int >= 1, got 0"),
    (lambda: rho_schedule(-1, 10, 0.5, 1.0), "step must be an int >= 0, got -1"),
    (lambda: rho_schedule(1, 10, 0.5, 1.0, kind="exp"), "kind must be 'linear' or 'cosine', got 'exp'"),
]


@pytest.mark.parametrize(("call", "match"), INVALID)
def test_invalid_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()
