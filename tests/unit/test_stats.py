"""evals.stats: bootstrap intervals over problems and paired comparisons (hand-computed tables, brute
force, invariants, and a coverage check on simulated data)."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.stats import EXACT_MAX, bootstrap_ci, paired_comparison, sign_flip_p_value


def brute_force_p(d: list[float]) -> float:
    """Two-sided sign-flip p over all 2^m sign patterns of the non-zero differences, by enumeration."""
    nz = [x for x in d if x != 0]
    observed = abs(sum(nz))
    hits = sum(
        abs(sum(s * x for s, x in zip(signs, nz, strict=True))) >= observed - 1e-9
        for signs in itertools.product((1, -1), repeat=len(nz))
    )
    return hits / 2 ** len(nz)


# ---------------------------------------------------------------- sign-flip test


@pytest.mark.parametrize(
    "d, p",
    [
        ([1, 1, 1, 1, 1], 2 / 32),  # only all-plus and all-minus reach |sum| = 5
        ([-1] * 10, 2 / 1024),
        ([1, 1, 0, 0], 2 / 4),  # zeros are dropped: m = 2
        ([2, 1, 1], 2 / 8),  # signed sums 4, 2, 2, 0, 0, -2, -2, -4
        ([1, 1, 1, 0.5, 1, 0], 2 / 32),  # 4.5: flipping the 0.5 gives 3.5 < 4.5
        ([3, 1, 1, -1], 8 / 16),  # |3 + x| >= 4 for x = sum of three signs >= 1 (4 ways), and mirrored
        ([1, -1], 1.0),  # observed 0: every pattern is at least as extreme
        ([0, 0, 0], 1.0),
        ([], 1.0),
    ],
)
def test_sign_flip_exact_table(d, p):
    assert sign_flip_p_value(d) == pytest.approx(p, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-1.0, -0.5, -1 / 3, 0.0, 1 / 3, 0.5, 1.0]), min_size=1, max_size=10))
def test_sign_flip_exact_matches_brute_force(d):
    assert sign_flip_p_value(d) == pytest.approx(brute_force_p(d), abs=1e-12)


def test_sign_flip_monte_carlo_beyond_exact_max():
    ones = np.ones(EXACT_MAX + 5)
    assert sign_flip_p_value(ones, n_perm=999) == 1 / 1000  # no hits: (0 + 1) / (999 + 1), never 0
    rng = np.random.default_rng(7)
    d = rng.choice([-1.0, -0.5, 0.5, 1.0], size=22) + np.r_[[0.5] * 4, [0.0] * 18]
    exact = sign_flip_p_value(d, exact_max=22)
    mc = sign_flip_p_value(d, n_perm=20_000, seed=3)
    assert 0.01 < exact < 0.99 and mc == pytest.approx(exact, abs=0.02)
    assert sign_flip_p_value(d, n_perm=2000, seed=3) == sign_flip_p_value(d, n_perm=2000, seed=3)
    with pytest.raises(ValueError, match="n_perm"):
        sign_flip_p_value(d, n_perm=0)


# ---------------------------------------------------------------- bootstrap CI


def test_bootstrap_hand_table():
    # two problems: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> the 2.5% and 97.5%
    # quantiles of 2000 draws are 0 and 1
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], level=0.4) == (0.5, 0.5)  # 30% and 70% quantiles: inside the 1/2 mass


@pytest.mark.parametrize("values", [[0.7], [0.25] * 10, [1.0, 1.0], [0.0] * 3])
def test_bootstrap_degenerate_inputs(values):
    lo, hi = bootstrap_ci(values)
    assert lo == hi == values[0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=40))
def test_bootstrap_ci_contains_the_mean(values):
    lo, hi = bootstrap_ci(values, n_boot=500)
    mean = float(np.mean(values))
    assert lo - 1e-12 <= mean <= hi + 1e-12


def test_bootstrap_narrows_with_more_problems():
    rng = np.random.default_rng(1)
    widths = []
    for n in (25, 100, 400):
        lo, hi = bootstrap_ci(rng.random(n) < 0.6)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.35)  # width ~ 1/sqrt(P)


def test_bootstrap_seeds_reproduce_and_differ_slightly():
    x = np.random.default_rng(2).random(60)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    a, b = bootstrap_ci(x, seed=5), bootstrap_ci(x, seed=6)
    assert a != b and max(abs(a[0] - b[0]), abs(a[1] - b[1])) < 0.03


def test_bootstrap_other_statistic_and_bad_arguments():
    lo, hi = bootstrap_ci([0.0, 0.0, 1.0, 1.0, 1.0], statistic=np.median)
    assert lo == 0.0 and hi == 1.0
    for kwargs, message in [({"level": 1.0}, "level"), ({"level": 0}, "level"), ({"n_boot": 0}, "n_boot")]:
        with pytest.raises(ValueError, match=message):
            bootstrap_ci([0.0, 1.0], **kwargs)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])


def test_bootstrap_coverage_on_simulated_bernoulli():
    """200 datasets of 100 Bernoulli(0.6) problems: the 95% interval covers 0.6 in 90-99% of them."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(123)
    covered = 0
    for i in range(200):
        lo, hi = bootstrap_ci(rng.random(100) < 0.6, n_boot=1000, seed=i)
        covered += lo <= 0.6 <= hi
    assert 0.90 <= covered / 200 <= 0.99
    assert time.perf_counter() - t0 < 5


# ---------------------------------------------------------------- paired comparison


def test_paired_identical_strategies():
    a = [1.0, 0.5, 0.0, 1.0]
    tokens = [10, 30, 50, 20]
    r = paired_comparison(a, a, tokens_a=tokens, tokens_b=tokens)
    assert r["diff"] == 0 and r["diff_ci"] == (0, 0) and r["p_value"] == 1
    assert r["token_ratio"] == 1 and r["token_ratio_ci"] == (1, 1)
    assert r["token_saving"] == 0 and r["token_saving_ci"] == (0, 0) and r["problems"] == 4


def test_paired_hand_table():
    r = paired_comparison(
        [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], tokens_a=[10, 20, 30, 40, 50], tokens_b=[20, 40, 60, 80, 100]
    )
    assert r == {
        "problems": 5,
        "diff": 1.0,
        "diff_ci": (1.0, 1.0),  # every difference is 1
        "p_value": 2 / 32,
        "token_ratio": 0.5,
        "token_ratio_ci": (0.5, 0.5),  # tokens_b = 2 tokens_a on every problem, so in every resample
        "token_saving": 0.5,
        "token_saving_ci": (0.5, 0.5),
    }


def test_paired_cis_share_the_resampled_problems():
    rng = np.random.default_rng(4)
    a, b = rng.random(40) < 0.7, rng.random(40) < 0.5
    ta, tb = rng.integers(50, 150, 40), rng.integers(100, 300, 40)
    r = paired_comparison(a, b, tokens_a=ta, tokens_b=tb, n_boot=800, seed=9, level=0.9)
    diff = a.astype(float) - b.astype(float)
    assert r["diff"] == pytest.approx(diff.mean())
    assert r["diff_ci"] == bootstrap_ci(diff, n_boot=800, seed=9, level=0.9)
    assert r["diff_ci"][0] <= r["diff"] <= r["diff_ci"][1]
    assert r["token_ratio"] == pytest.approx(ta.sum() / tb.sum())
    lo, hi = r["token_ratio_ci"]
    assert lo < r["token_ratio"] < hi
    assert r["token_saving_ci"] == pytest.approx((1 - hi, 1 - lo))
    assert r == paired_comparison(a, b, tokens_a=ta, tokens_b=tb, n_boot=800, seed=9, level=0.9)
    other = paired_comparison(a, b, tokens_a=ta, tokens_b=tb, n_boot=800, seed=10, level=0.9)
    assert other["diff"] == r["diff"] and other["token_ratio_ci"] != r["token_ratio_ci"]  # diffs: a 1/40 grid


def test_paired_baseline_without_tokens_gives_nan_ratio():
    r = paired_comparison([1, 0], [0, 0], tokens_a=[5, 5], tokens_b=[0, 0])
    assert math.isnan(r["token_ratio"]) and all(math.isnan(x) for x in r["token_ratio_ci"])


@pytest.mark.parametrize(
    "a, b, ta, tb, message",
    [
        ([1, 0, 1], [1, 0], [1, 1, 1], [1, 1, 1], "a=3, b=2, tokens_a=3, tokens_b=3"),
        ([1, 0], [1, 0], [1, 1], [1], "a=2, b=2, tokens_a=2, tokens_b=1"),
        ([], [], [], [], "a=0, b=0"),
    ],
)
def test_paired_rejects_unequal_or_empty(a, b, ta, tb, message):
    with pytest.raises(ValueError, match=message):
        paired_comparison(a, b, tokens_a=ta, tokens_b=tb)
