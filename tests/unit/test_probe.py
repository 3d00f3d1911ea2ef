"""Predicted-difficulty allocation: the probe's math (ridge, AUROC, pass rates), the allocation rule, the probe
file, and the adaptive:* strategies on the FakeEngine with a stand-in probe."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from fake_scripts import P1, P2, SPEC, fake_probe, per_sample, thinking

from evals.sweep import EvalConfig, StrategyEntry
from reasoner.engines.fake import FakeEngine
from reasoner.probe.fit import auroc, fit_one, pass_rates, ridge, select, split_validation, standardise
from reasoner.strategies import build_strategy
from reasoner.strategies.difficulty import (
    PROBE_FILE,
    LinearProbe,
    ProbeMissingError,
    allocate,
    allocate_by,
    allocate_marginal,
    allocation_weights,
    majority_accuracy,
    probe_path,
)
from reasoner.types import Problem

# ---------------------------------------------------------------- AUROC, pass rates


@pytest.mark.parametrize(
    "scores, labels, expect",
    [
        ([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], 1.0),
        ([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0], 0.0),
        ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5),  # all ties
        ([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0], 0.75),  # pairs: (.9>.6)(.9>.1)(.4<.6)(.4>.1) = 3/4
        ([0.7, 0.5, 0.5, 0.2], [1, 1, 0, 0], 0.875),  # (.7>.5)(.7>.2)(.5=.5 -> .5)(.5>.2) = 3.5/4
        ([0.3, 0.6, 0.6, 0.6, 0.1], [1, 0, 1, 0, 0], 0.5),  # .3 vs (.6,.6,.1): 0,0,1; .6 vs them: .5,.5,1
    ],
)
def test_auroc_hand_computed(scores, labels, expect):
    assert auroc(scores, [bool(y) for y in labels]) == pytest.approx(expect)


def test_auroc_one_class_is_nan_and_matches_rank_formula():
    assert math.isnan(auroc([0.1, 0.2], [True, True]))
    rng = random.Random(0)
    s = [rng.choice([0.1, 0.2, 0.3, 0.4]) for _ in range(40)]
    y = [rng.random() < 0.5 for _ in range(40)]
    ranks = {v: np.mean([i + 1 for i, w in enumerate(sorted(s)) if w == v]) for v in set(s)}  # midranks
    pos = sum(y)
    u = sum(ranks[v] for v, t in zip(s, y, strict=True) if t) - pos * (pos + 1) / 2
    assert auroc(s, y) == pytest.approx(u / (pos * (len(s) - pos)))


def test_pass_rates_pool_seeds_and_skip_empty():
    records = [
        ("a", [True, False, True, True]),
        ("b", [False] * 3),
        ("a", [False, False, True, True]),
        ("c", []),
    ]
    assert pass_rates(records) == {"a": (5 / 8, 8), "b": (0.0, 3)}


# ---------------------------------------------------------------- ridge


def test_ridge_recovers_a_planted_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)) * [1, 5, 0.1, 2, 1, 3] + [0, 10, -3, 0, 1, 0]
    w_true = np.array([0.2, 0.0, -0.1, 0.05, 0.0, 0.0])
    mu, sigma = standardise(x)
    z = (x - mu) / sigma
    y = 0.6 + z @ w_true + rng.normal(scale=0.01, size=400)
    w, b = ridge(z, y, alpha=1e-4)
    assert b == pytest.approx(y.mean())
    assert np.allclose(w, w_true, atol=0.005)
    w_big, _ = ridge(z, y, alpha=100.0)  # shrinks towards the mean
    assert np.linalg.norm(w_big) < 0.05 * np.linalg.norm(w_true)


def test_ridge_primal_equals_dual():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(5, 8)), rng.random(5)
    w_dual, b = ridge(z, y, 0.3)  # d > n: dual form
    w_primal = np.linalg.solve(z.T @ z + 0.3 * 5 * np.eye(8), z.T @ (y - y.mean()))
    assert np.allclose(w_dual, w_primal) and b == pytest.approx(y.mean())
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ridge(z, y, 0.0)


def test_select_picks_the_informative_layer_on_validation():
    rng = np.random.default_rng(2)
    n = 300
    signal = rng.random(n)
    noise_layer = rng.normal(size=(n, 4))
    good_layer = np.c_[signal * 3 + rng.normal(scale=0.05, size=n), rng.normal(size=(n, 3))]
    ids = [f"p{i}" for i in range(n)]
    val = split_validation(ids, 0.25)
    assert 40 < sum(val) < 110 and split_validation(ids, 0.25) == val  # stable, about a quarter
    best, fits = select(np.stack([noise_layer, good_layer]), signal, [0, 1], [0.01, 1.0], val)
    assert (best.layer, best.alpha) == (1, 0.01) and len(fits) == 4
    assert best.validation["pearson"] > 0.95 and best.validation["mse"] < 0.01
    assert fit_one(noise_layer, signal, 0.01, 0, val).validation["pearson"] < 0.3


# ---------------------------------------------------------------- the probe file


def test_probe_round_trip_and_prediction(tmp_path):
    probe = LinearProbe(-1, (1.0, 0.0), (2.0, 1.0), (0.5, -0.25), 0.5, {"model": "m"})
    path = probe.save(tmp_path / "p.json")
    back = LinearProbe.load(path)
    assert back == probe
    # z = ((3-1)/2, (2-0)/1) = (1, 2): 0.5 + 0.5 - 0.5 = 0.5; z = (5, 0): 0.5 + 2.5 -> clipped to 1
    assert back.predict([[3.0, 2.0], [11.0, 0.0], [-9.0, 0.0]]) == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError, match=r"features \[N, 2\]"):
        back.predict([[1.0, 2.0, 3.0]])


def test_probe_path_default_and_errors(tmp_path):
    with pytest.raises(
        ProbeMissingError, match=rf"no difficulty probe at {tmp_path / PROBE_FILE}.*reasoner probe fit"
    ):
        probe_path(str(tmp_path))
    (tmp_path / PROBE_FILE).write_text("{}")
    assert probe_path(str(tmp_path)) == tmp_path / PROBE_FILE
    with pytest.raises(ProbeMissingError, match="not a local directory.*probe=PATH"):
        probe_path("org/some-hub-model")
    assert probe_path("org/some-hub-model", str(tmp_path / PROBE_FILE)) == tmp_path / PROBE_FILE


# ---------------------------------------------------------------- allocation


@pytest.mark.parametrize(
    "weights, total, lo, hi, expect",
    [
        ([1, 1, 1, 1], 8, 1, 8, [2, 2, 2, 2]),
        ([0, 0, 1, 3], 12, 1, 16, [1, 1, 3, 7]),  # rest 8: 2 and 6
        ([0, 0, 1, 3], 12, 1, 5, [1, 1, 5, 5]),  # 7 capped at 5, the 2 left move to the next
        ([0, 0, 0, 0], 6, 1, 8, [2, 2, 1, 1]),  # no signal: even, remainders to the lower index
        ([1, 2], 4, 1, 8, [2, 2]),  # x = 1.67, 2.33: floors 1, 2; one left -> largest fraction (.67)
        ([0.2, 0.2, 0.6], 5, 0, 5, [1, 1, 3]),
        ([5, 1], 2, 1, 1, [1, 1]),  # lo == hi
    ],
)
def test_allocate_hand_computed(weights, total, lo, hi, expect):
    assert allocate(weights, total, lo, hi) == expect


def test_allocate_invariants_random():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 30)
        lo = rng.randint(0, 3)
        hi = lo + rng.randint(0, 10)
        w = [rng.choice([0.0, rng.random(), rng.random() * 10]) for _ in range(n)]
        total = rng.randint(n * lo, n * hi)
        ks = allocate(w, total, lo, hi)
        assert sum(ks) == total and all(lo <= k <= hi for k in ks)
        for i in range(n):  # monotone: more weight never gets fewer samples
            for j in range(n):
                if w[i] > w[j]:
                    assert ks[i] >= ks[j], (w, total, lo, hi, ks)


@pytest.mark.parametrize(
    "weights, total, lo, hi, fragment",
    [([1, 1], 1, 1, 4, "cannot be spread"), ([1, 1], 9, 1, 4, "cannot be spread"),
     ([1, -1], 4, 1, 4, ">= 0"), ([1], 1, 3, 2, "min_k <= max_k")],
)  # fmt: skip
def test_allocate_errors(weights, total, lo, hi, fragment):
    with pytest.raises(ValueError, match=fragment):
        allocate(weights, total, lo, hi)


@pytest.mark.parametrize(
    "passes, rule, expect",
    [
        ([1.0, 0.75, 0.0], "difficulty", [0.0, 0.25, 1.0]),
        ([1.0, 0.5, 0.0, 1.2], "uncertainty", [0, 0.25, 0, 0]),
    ],
)
def test_allocation_weights(passes, rule, expect):
    assert allocation_weights(passes, rule) == pytest.approx(expect)


@pytest.mark.parametrize(
    "p, k, expect",
    [(0.8, 1, 0.8), (0.8, 2, 0.8), (0.8, 3, 0.896), (0.8, 4, 0.8**4 + 4 * 0.8**3 * 0.2 + 3 * 0.8**2 * 0.2**2),
     (0.5, 3, 0.5), (1.0, 5, 1.0), (0.0, 5, 0.0), (0.6, 5, 0.68256)],
)  # fmt: skip
def test_majority_accuracy_hand_computed(p, k, expect):
    assert majority_accuracy(p, k) == pytest.approx(expect)


def test_allocate_marginal_hand_computed_and_invariants():
    # gains per sample of 1 -> 3: p=.8: (.896-.8)/2 = .048; p=.5: 0; p=.99: (.999702-.99)/2 = .0049
    assert allocate_marginal([0.8, 0.5, 0.99], 5, 1, 8) == [3, 1, 1]
    # then 3 -> 5 for p=.8: (.94208-.896)/2 = .023 still beats .0049
    assert allocate_marginal([0.8, 0.5, 0.99], 7, 1, 8) == [5, 1, 1]
    assert allocate_marginal([0.8, 0.5, 0.99], 7, 1, 4) == [3, 1, 3]  # capped at 4: 3 -> 4 gains 0 (a tie)
    assert allocate_marginal([0.7, 0.7, 0.7, 0.7], 12, 1, 8) == [3, 3, 3, 3]  # equal p: even, odd counts
    assert allocate_marginal([1.0, 1.0], 4, 1, 8) == [2, 2]  # no gain anywhere: spread evenly
    rng = random.Random(1)
    for _ in range(100):
        n, lo = rng.randint(1, 12), rng.randint(1, 2)
        hi = lo + rng.randint(0, 6)
        total = rng.randint(n * lo, n * hi)
        ks = allocate_marginal([rng.random() for _ in range(n)], total, lo, hi)
        assert sum(ks) == total and all(lo <= k <= hi for k in ks)
    assert allocate_by([0.0, 1.0], "difficulty", 4, 1, 4) == [3, 1]
    with pytest.raises(ValueError, match="cannot be spread"):
        allocate_marginal([0.5], 9, 1, 8)


# ---------------------------------------------------------------- the strategies


def test_adaptive_majority_spends_by_predicted_difficulty(monkeypatch):
    problems = [Problem(f"q{i}", f"What is {i}+1?", str(i + 1)) for i in range(4)]
    asked = fake_probe(monkeypatch, passes=[1.0, 0.0, 0.5, 1.0])
    engine = FakeEngine(per_sample([thinking(3 + j, "5") for j in range(16)]))
    strategy = build_strategy("adaptive:majority", {"mean": "3", "min_k": "1", "max_k": "8"})
    results = strategy.run_batch(engine, problems, SPEC)
    # total 12; floor 1 each, rest 8 by difficulty (0, 1, .5, 0): x = 1, 6.33, 3.67, 1; floors sum to 11, the
    # one left goes to the largest fraction (.67)
    assert [r.extra["k"] for r in results] == [1, 6, 4, 1]
    assert sum(len(r.completions) for r in results) == 12
    assert [r.extra["predicted_pass"] for r in results] == [1.0, 0.0, 0.5, 1.0]
    assert len(asked) == 1 and len(asked[0]) == 4
    plain = build_strategy("majority", {"k": "6"}).run(engine, problems[1], SPEC)
    r = results[1]
    assert (
        r.tokens == plain.tokens and r.answer == plain.answer
    )  # the wrapped strategy's accounting, same seeds


def test_adaptive_short_m_and_its_params(monkeypatch):
    fake_probe(monkeypatch, passes=[0.9, 0.1])
    engine = FakeEngine(per_sample([thinking(3 + 2 * j, "5") for j in range(8)]))
    s = build_strategy("adaptive:short-m@k", {"mean": "3", "min_k": "2", "max_k": "4", "m": "2"})
    r1, r2 = s.run_batch(engine, [P1, P2], SPEC)
    assert (r1.extra["k"], r2.extra["k"]) == (2, 4)
    assert len(r2.completions) == 4 and len(r2.extra["finishers"]) == 2 and s.live
    for params, fragment in [({"m": "3", "min_k": "2"}, "m must be <= min_k=2"),
                             ({"mean": "20"}, "mean must be in"), ({"max_k": "0"}, "max_k"),
                             ({"rule": "nope"}, "rule")]:  # fmt: skip
        with pytest.raises(ValueError, match=fragment):
            build_strategy("adaptive:short-m@k", params)


def test_adaptive_without_probe_names_the_path_and_the_command(tmp_path):
    engine = FakeEngine(per_sample([thinking(3, "5")] * 4))
    engine.model_name = str(tmp_path)
    with pytest.raises(ProbeMissingError, match=rf"{tmp_path / PROBE_FILE}.*reasoner probe fit RUN_DIR"):
        build_strategy("adaptive:majority", {"mean": "2"}).run(engine, P1, SPEC)


def test_eval_entries_take_names_with_a_colon():
    entry = StrategyEntry.parse("adaptive:short-m@k:mean=2.8,m=1,min_k=1,max_k=8", 8)
    assert entry.name == "adaptive:short-m@k" and dict(entry.params)["mean"] == "2.8"
    assert StrategyEntry.parse("adaptive:majority", 8).label == "adaptive:majority"
    assert StrategyEntry.parse("short-m@k:m=3", 8).label == "short-m@k:k=8,m=3"  # unchanged for the others
    cfg = EvalConfig(strategies=["majority", "adaptive:majority:mean=5.6,max_k=16"])
    assert cfg.strategies == ["majority:k=8", "adaptive:majority:mean=5.6,max_k=16"]
    with pytest.raises(ValueError, match="unknown strategy 'adaptive'"):
        StrategyEntry.parse("adaptive:k=3", 8)
