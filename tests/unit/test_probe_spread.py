"""``pass_rate_spread``: how much of the pass rates' variance across problems is binomial noise."""

from __future__ import annotations

import random

import pytest

from reasoner.probe.fit import pass_rate_spread


@pytest.mark.parametrize(
    ("rates", "k", "variance", "noise", "zero", "one"),
    [
        ([0.0, 1.0, 0.0, 1.0], 8, 0.25, 0.0, 0.5, 0.5),  # all-or-nothing: all of it is between problems
        ([0.5, 0.5], 2, 0.0, 0.25, 0.0, 0.0),  # 0.25 / (2 - 1)
        ([0.25, 0.75], 4, 0.0625, 0.0625, 0.0, 0.0),  # (0.1875 + 0.1875) / 2 / 3
        ([0.0, 0.5, 1.0], 2, 1 / 6, 1 / 12, 1 / 3, 1 / 3),
    ],
)
def test_spread_hand_computed(rates, k, variance, noise, zero, one):
    s = pass_rate_spread(rates, k)
    assert s.variance == pytest.approx(variance)
    assert s.noise == pytest.approx(noise)
    assert s.between == pytest.approx(variance - noise)
    assert (s.zero, s.one) == (pytest.approx(zero), pytest.approx(one))


@pytest.mark.parametrize(("true_rates", "between"), [((0.3,), 0.0), ((0.1, 0.9), 0.16), ((0.0, 0.5), 0.0625)])
def test_spread_recovers_true_variance(true_rates, between):
    """Rates measured on k = 8 samples: ``between`` estimates the variance of the true rates, noise the rest."""
    rng = random.Random(0)
    k, n = 8, 4000
    truth = [true_rates[i % len(true_rates)] for i in range(n)]
    rates = [sum(rng.random() < p for _ in range(k)) / k for p in truth]
    s = pass_rate_spread(rates, k)
    assert s.between == pytest.approx(between, abs=0.01)
    assert s.noise == pytest.approx(sum(p * (1 - p) for p in truth) / n / k, abs=0.003)


@pytest.mark.parametrize(("rates", "k", "field"), [([0.5], 1, "k"), ([], 8, "no pass rates")])
def test_spread_errors(rates, k, field):
    with pytest.raises(ValueError, match=field):
        pass_rate_spread(rates, k)
