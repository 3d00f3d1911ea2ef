"""Tests for evals.metrics: hand-computed tables, closed forms, brute force, invariants."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.metrics import (
    accuracy,
    accuracy_per_1k_tokens,
    auc_accuracy_vs_budget,
    maj_at_k,
    mean_maj_at_k,
    mean_pass_at_k,
    mean_token_counts,
    pareto_front,
    pass_at_k,
    tokens_per_correct,
    wall_time_stats,
)
from reasoner.types import TokenCount

# ---------------------------------------------------------------- pass@k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 0, 1, 0.0),
        (10, 10, 1, 1.0),
        (10, 3, 1, 0.3),
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (5, 1, 2, 0.4),  # 1 - C(4,2)/C(5,2) = 1 - 6/10
        (5, 1, 5, 1.0),
        (5, 4, 2, 1.0),  # n - c < k: every pair holds a correct sample
        (6, 2, 3, 0.8),  # 1 - C(4,3)/C(6,3) = 1 - 4/20
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_pass_at_k_table(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_closed_form_with_comb() -> None:
    for n in range(1, 31):
        for c in range(n + 1):
            for k in range(1, n + 1):
                closed = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12), (n, c, k)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8])
def test_pass_at_k_matches_brute_force_over_all_subsets(n: int) -> None:
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(samples, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n() -> None:
    n, c, k = 10_000, 7, 500
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9)


@given(n=st.integers(1, 60), data=st.data())
@settings(max_examples=150, deadline=None)
def test_pass_at_k_invariants(n: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n))
    values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[0] == pytest.approx(c / n)  # pass@1 == c/n
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))  # monotone in k
    assert values[-1] == (1.0 if c > 0 else 0.0)  # pass@n: any correct at all
    k = data.draw(st.integers(1, n))
    by_c = [pass_at_k(n, cc, k) for cc in range(n + 1)]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(by_c))  # monotone in c


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6), (0, 0, 1)])
def test_pass_at_k_rejects_bad_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_pass_at_k_averages_per_problem() -> None:
    groups = [[True, False, False, False], [True, True, False, False]]  # pass@2: 1/2 and 5/6
    assert mean_pass_at_k(groups, 2) == pytest.approx((0.5 + 5 / 6) / 2)
    with pytest.raises(ValueError):
        mean_pass_at_k([[True]], 2)


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    ("correct", "expected"),
    [
        ([True, False, True, True], 0.75),  # flat: one sample per problem
        ([[True, False], [True, True, True, False]], 0.625),  # (1/2 + 3/4) / 2: problems weigh the same
        ([[False, False]], 0.0),
        ([[True]], 1.0),
        ([1, 0], 0.5),
    ],
)
def test_accuracy_table(correct: list, expected: float) -> None:
    assert accuracy(correct) == pytest.approx(expected)


def test_accuracy_equals_mean_pass_at_1() -> None:
    groups = [[True, False, True], [False, False, False], [True, True, True]]
    assert accuracy(groups) == pytest.approx(mean_pass_at_k(groups, 1))


@pytest.mark.parametrize("bad", [[], [[]], [[True], []]])
def test_accuracy_rejects_empty(bad: list) -> None:
    with pytest.raises(ValueError):
        accuracy(bad)


# ---------------------------------------------------------------- majority (the majority strategy's vote)


def _verdicts(answers: list, right: set[str]) -> list[bool]:
    return [a in right for a in answers]


@pytest.mark.parametrize(
    ("answers", "k", "expected"),
    [
        (["1", "2", "2"], None, True),
        (["1", "2", "2"], 1, False),
        (["1", "2", "2"], 2, False),  # tie 1-1: "1" seen first
        (["2", "1", "1"], 2, True),
        ([None, None, "2"], 2, False),  # no answer among the first 2
        ([None, "5", None, "2", "2", None, None], None, True),  # None does not vote even if most frequent
        (["3", "3", "2"], None, False),  # "3" is wrong
        (["2.0", "2", "3", "3", "2.00"], None, True),  # equal numbers vote together: 3 for "2" vs 2 for "3"
        ([None, None], None, False),
    ],
)
def test_maj_at_k_table(answers: list, k: int | None, expected: bool) -> None:
    assert maj_at_k(answers, _verdicts(answers, {"2", "2.0", "2.00"}), k) is expected


def test_maj_at_k_groups_equivalent_answers_as_the_majority_strategy_does() -> None:
    # As strings, every answer has one vote and "3" (seen first) would win; as values 1/2 has two votes.
    answers = ["3", "\\frac{1}{2}", "0.5"]
    assert maj_at_k(answers, [False, True, True]) is True
    from reasoner.strategies.voting import vote

    assert vote(answers).answer == "\\frac{1}{2}"


def test_maj_at_k_groups_answers_as_the_grader_compares_them() -> None:
    # The grader (``answers_equivalent``, math-verify's tolerance) takes 0.5000001 for 0.5. The vote used to
    # compare plain decimals exactly on its own path: three groups of one, "7" (seen first) won and maj@3 was
    # False although two of three samples were graded correct with the same value.
    from reasoner.strategies.voting import vote
    from reasoner.verify import answers_equivalent

    answers = ["7", "0.5", "0.5000001"]
    assert answers_equivalent("0.5", "0.5000001")
    assert maj_at_k(answers, [False, True, True]) is True
    assert vote(answers).groups == ((0,), (1, 2))


def test_vote_groups_are_the_graders_equivalence_classes() -> None:
    from reasoner.strategies.voting import vote
    from reasoner.verify import answers_equivalent, asserted_value

    answers = ["\\frac{1}{2}", "0.5", "3", "x = 3", "0.5000001", "\\sqrt{4}", "2", "1,000", "1000"]
    groups = vote(answers).groups
    values = [asserted_value(a) for a in answers]
    for g in groups:
        assert all(answers_equivalent(values[g[0]], values[i]) for i in g)
    for g, h in itertools.combinations(groups, 2):
        assert not answers_equivalent(values[g[0]], values[h[0]])


def test_maj_at_k_errors() -> None:
    with pytest.raises(ValueError, match="1 <= k"):
        maj_at_k(["1"], [True], k=2)
    with pytest.raises(ValueError, match="one verdict per answer"):
        maj_at_k(["1", "2"], [True])


@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=12))
@settings(max_examples=100, deadline=None)
def test_maj_at_1_is_first_sample(answers: list) -> None:
    verdicts = _verdicts(answers, {"1"})
    assert maj_at_k(answers, verdicts, k=1) is (answers[0] is not None and verdicts[0])


def test_mean_maj_at_k() -> None:
    answers = [["1", "2", "2"], ["1", "1", "2"]]
    verdicts = [[False, True, True], [True, True, False]]
    assert mean_maj_at_k(answers, verdicts) == 1.0
    assert mean_maj_at_k(answers, verdicts, k=1) == 0.5
    with pytest.raises(ValueError):
        mean_maj_at_k(answers, verdicts[:1])


# ---------------------------------------------------------------- tokens


def test_mean_token_counts() -> None:
    counts = [
        TokenCount(generated=100, prefilled=20, thinking=80, answer=20, sequential=100),
        TokenCount(generated=300, prefilled=20, thinking=200, answer=100, sequential=150),
    ]
    assert mean_token_counts(counts) == {
        "generated": 200.0,
        "prefilled": 20.0,
        "thinking": 140.0,
        "answer": 60.0,
        "sequential": 125.0,
    }
    with pytest.raises(ValueError):
        mean_token_counts([])


@pytest.mark.parametrize(
    ("correct", "tokens", "per_correct", "per_1k"),
    [
        ([True, False, True, False], [100, 200, 300, 400], 500.0, 2.0),
        ([True], [250], 250.0, 4.0),
        ([False, False], [10, 30], math.inf, 0.0),
        ([True, True], [1000, 1000], 1000.0, 1.0),
    ],
)
def test_token_efficiency_table(correct: list, tokens: list, per_correct: float, per_1k: float) -> None:
    assert tokens_per_correct(correct, tokens) == pytest.approx(per_correct)
    assert accuracy_per_1k_tokens(correct, tokens) == pytest.approx(per_1k)
    if per_1k:
        assert accuracy_per_1k_tokens(correct, tokens) == pytest.approx(1000 / per_correct)


def test_token_efficiency_errors_and_zero_tokens() -> None:
    assert tokens_per_correct([True], [0]) == 0.0
    with pytest.raises(ValueError):
        accuracy_per_1k_tokens([True], [0])
    with pytest.raises(ValueError):
        tokens_per_correct([True, False], [1])
    with pytest.raises(ValueError):
        tokens_per_correct([True], [-1])


# ---------------------------------------------------------------- area under accuracy-vs-budget


@pytest.mark.parametrize(
    ("budgets", "accs", "area", "normalised"),
    [
        ([0, 100, 200], [0.0, 0.5, 1.0], 100.0, 0.5),
        ([200, 0, 100], [1.0, 0.0, 0.5], 100.0, 0.5),  # order of input does not matter
        ([256, 512, 1024], [0.2, 0.4, 0.4], 0.3 * 256 + 0.4 * 512, (0.3 * 256 + 0.4 * 512) / 768),
        ([128, 4096], [0.7, 0.7], 0.7 * 3968, 0.7),  # constant accuracy -> normalised = accuracy
        ([512], [0.3], 0.0, 0.3),  # a single budget: no area; normalised -> its accuracy
    ],
)
def test_auc_table(budgets: list, accs: list, area: float, normalised: float) -> None:
    assert auc_accuracy_vs_budget(budgets, accs) == pytest.approx(area)
    assert auc_accuracy_vs_budget(budgets, accs, normalize=True) == pytest.approx(normalised)


@pytest.mark.parametrize(("budgets", "accs"), [([], []), ([1, 2], [0.5]), ([1, 1], [0.2, 0.3])])
def test_auc_rejects_bad_input(budgets: list, accs: list) -> None:
    with pytest.raises(ValueError):
        auc_accuracy_vs_budget(budgets, accs)


# ---------------------------------------------------------------- Pareto front


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([(100, 0.5), (200, 0.6), (150, 0.4), (300, 0.6)], [0, 1]),
        ([(300, 0.9), (100, 0.1), (200, 0.5)], [1, 2, 0]),  # all on the front, sorted by tokens
        ([(100, 0.5), (100, 0.7)], [1]),  # same tokens: the more accurate dominates
        ([(100, 0.5), (100, 0.5), (50, 0.2)], [2, 0, 1]),  # exact duplicates both kept
        ([(100, 0.5)], [0]),
        ([], []),
    ],
)
def test_pareto_front_table(points: list, front: list) -> None:
    assert pareto_front(points) == front


def _dominates(p: tuple, q: tuple) -> bool:
    return p[0] <= q[0] and p[1] >= q[1] and p != q


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5)), max_size=25))
@settings(max_examples=150, deadline=None)
def test_pareto_front_matches_brute_force(points: list) -> None:
    front = pareto_front(points)
    expected = {i for i, q in enumerate(points) if not any(_dominates(p, q) for p in points)}
    assert set(front) == expected
    assert [points[i][0] for i in front] == sorted(points[i][0] for i in front)


# ---------------------------------------------------------------- wall time


def test_wall_time_stats() -> None:
    stats = wall_time_stats([1.0, 2.0, 3.0, 4.0, 10.0])
    assert stats == pytest.approx({"total": 20.0, "mean": 4.0, "median": 3.0, "p90": 7.6, "max": 10.0})
    with pytest.raises(ValueError):
        wall_time_stats([])
