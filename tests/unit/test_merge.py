"""Update-selective merging (DLER) and linear interpolation on small tensors, with exact expectations."""

from __future__ import annotations

import math

import pytest
import torch

from reasoner.train.merge import (
    MergeError,
    check_compatible,
    interpolate_state_dicts,
    keep_count,
    kth_largest_abs,
    select_update,
    selective_merge,
    top_abs_mask,
)

BASE = {
    "a.weight": torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    "b.bias": torch.tensor([0.0, 0.0, 0.0, 0.0]),
}
DELTA = {
    "a.weight": torch.tensor([[0.1, -0.5, 0.0], [0.3, -0.2, 0.05]]),
    "b.bias": torch.tensor([1.0, -0.01, 0.4, 0.02]),
}
TUNED = {k: BASE[k] + DELTA[k] for k in BASE}


def _brute_mask(delta: torch.Tensor, k: int) -> torch.Tensor:
    """Reference: stable order by -|delta|, lower flat index first on ties."""
    flat = delta.reshape(-1).tolist()
    order = sorted(range(len(flat)), key=lambda i: (-abs(flat[i]), i))
    mask = torch.zeros(len(flat), dtype=torch.bool)
    mask[order[:k]] = True
    return mask.reshape(delta.shape)


@pytest.mark.parametrize(
    ("numel", "keep", "k"),
    [(10, 0.0, 0), (10, 1.0, 10), (10, 0.3, 3), (10, 0.25, 3), (10, 0.24, 2), (4, 0.5, 2), (3, 0.5, 2),
     (7, 0.1, 1), (7, 0.05, 0), (1, 0.5, 1)],
)  # fmt: skip
def test_keep_count_rounds_half_up(numel, keep, k):
    assert keep_count(numel, keep) == k


@pytest.mark.parametrize("keep", [-0.1, 1.01, math.nan])
def test_keep_outside_unit_interval_is_an_error(keep):
    with pytest.raises(MergeError, match="keep must be in"):
        keep_count(10, keep)


@pytest.mark.parametrize("scope", ["tensor", "global"])
def test_keep_zero_gives_base_and_keep_one_gives_tuned(scope):
    merged0, r0 = selective_merge(BASE, TUNED, 0.0, scope)
    merged1, r1 = selective_merge(BASE, TUNED, 1.0, scope)
    for name in BASE:
        assert torch.equal(merged0[name], BASE[name])
        assert torch.equal(merged1[name], TUNED[name])
    assert (r0.kept, r0.update_energy) == (0, 0.0)
    assert (r1.kept, r1.total, r1.update_energy) == (10, 10, 1.0)
    assert r1.changed == 9  # one update entry is exactly zero


def test_keep_one_is_bit_exact_in_bfloat16():
    base = {"w": torch.tensor([1.0, 1000.0, -3.0]).bfloat16()}
    tuned = {"w": torch.tensor([1.0078125, 1008.0, 65504.0]).bfloat16()}
    merged, _ = selective_merge(base, tuned, 1.0)
    assert merged["w"].dtype == torch.bfloat16 and torch.equal(merged["w"], tuned["w"])


@pytest.mark.parametrize(
    ("keep", "expected_a", "expected_b"),
    [
        # per tensor: a has 6 entries, b has 4; k = round-half-up(keep * numel) within each tensor
        (0.2, [[False, True, False], [False, False, False]], [True, False, False, False]),
        (0.5, [[False, True, False], [True, True, False]], [True, False, True, False]),
        (0.7, [[True, True, False], [True, True, False]], [True, False, True, True]),
    ],
)
def test_tensor_scope_keeps_exactly_the_top_delta_entries(keep, expected_a, expected_b):
    masks = select_update(DELTA, keep, "tensor")
    assert masks["a.weight"].tolist() == expected_a
    assert masks["b.bias"].tolist() == expected_b
    merged, report = selective_merge(BASE, TUNED, keep, "tensor")
    for name, mask in masks.items():
        assert torch.equal(merged[name], torch.where(mask, TUNED[name], BASE[name]))
    assert report.kept == sum(int(m.sum()) for m in masks.values())


@pytest.mark.parametrize(
    ("keep", "expected_a", "expected_b"),
    [
        # global: all 10 |delta| ranked together: 1.0 (b0), 0.5 (a1), 0.4 (b2), 0.3 (a3), 0.2 (a4), 0.1 (a0), ...
        (0.2, [[False, True, False], [False, False, False]], [True, False, False, False]),
        (0.3, [[False, True, False], [False, False, False]], [True, False, True, False]),
        (0.5, [[False, True, False], [True, True, False]], [True, False, True, False]),
        (0.6, [[True, True, False], [True, True, False]], [True, False, True, False]),
    ],
)
def test_global_scope_ranks_over_all_tensors(keep, expected_a, expected_b):
    masks = select_update(DELTA, keep, "global")
    assert masks["a.weight"].tolist() == expected_a
    assert masks["b.bias"].tolist() == expected_b


def test_tensor_and_global_scopes_differ_as_expected():
    """b's update is concentrated in one big entry: global keeps it and little of a; per tensor keeps k of each."""
    per_tensor = select_update(DELTA, 0.3, "tensor")
    global_ = select_update(DELTA, 0.3, "global")
    assert [int(per_tensor[n].sum()) for n in sorted(DELTA)] == [2, 1]  # round(1.8), round(1.2)
    assert [int(global_[n].sum()) for n in sorted(DELTA)] == [1, 2]  # the 3 largest overall


def test_ties_are_broken_by_flat_index_then_tensor_name():
    deltas = {"z": torch.tensor([0.5, 0.5, 0.5]), "a": torch.tensor([0.5, 0.5, 0.1])}
    assert select_update(deltas, 0.34, "tensor")["z"].tolist() == [True, False, False]
    g = select_update(deltas, 0.5, "global")  # k = 3 of 6 ties among five 0.5s: "a" sorts first
    assert g["a"].tolist() == [True, True, False] and g["z"].tolist() == [True, False, False]


@pytest.mark.parametrize("seed", range(3))
def test_top_abs_mask_matches_a_brute_force_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    for shape in [(1,), (7,), (2, 3, 4)]:
        # few distinct values -> many ties; mixed magnitudes across float exponents
        delta = (
            torch.randint(-4, 5, shape, generator=gen).float()
            * torch.tensor(10.0) ** torch.randint(-6, 4, shape, generator=gen).float()
        )
        for k in range(delta.numel() + 1):
            assert torch.equal(top_abs_mask(delta, k), _brute_mask(delta, k)), (shape, k)


def test_kth_largest_abs_is_exact_across_tensors():
    x = [torch.tensor([3.0, -7.0, 1e-30]), torch.tensor([[7.0, 0.0], [2.5, -3.0]])]
    values = sorted((abs(v) for t in x for v in t.reshape(-1).tolist()), reverse=True)
    for k in range(1, len(values) + 1):
        threshold, above = kth_largest_abs(x, k)
        assert threshold == values[k - 1]
        assert above == sum(v > threshold for v in values)
    with pytest.raises(ValueError, match="k must be"):
        kth_largest_abs(x, 0)


def test_global_kept_count_is_exact_over_many_tensors():
    gen = torch.Generator().manual_seed(0)
    deltas = {f"t{i}": torch.randn(n, generator=gen).round(decimals=1) for i, n in enumerate([13, 1, 40, 7])}
    flat = [(n, j, abs(v)) for n in sorted(deltas) for j, v in enumerate(deltas[n].tolist())]
    for keep in [0.0, 0.1, 0.33, 0.5, 0.9, 1.0]:
        k = keep_count(len(flat), keep)
        masks = select_update(deltas, keep, "global")
        chosen = {(n, j) for n in masks for j, m in enumerate(masks[n].tolist()) if m}
        ranked = sorted(flat, key=lambda e: -e[2])  # stable: name order, then index, on ties
        assert chosen == {(n, j) for n, j, _ in ranked[:k]}


@pytest.mark.parametrize(
    ("alpha", "expected_b"),
    [(0.0, [0.0, 0.0, 0.0, 0.0]), (0.5, [0.5, -0.005, 0.2, 0.01]), (1.0, [1.0, -0.01, 0.4, 0.02])],
)
def test_linear_interpolation(alpha, expected_b):
    merged, report = interpolate_state_dicts(BASE, TUNED, alpha)
    assert torch.allclose(merged["b.bias"], torch.tensor(expected_b))
    if alpha in (0.0, 1.0):  # exact at the ends
        ref = BASE if alpha == 0 else TUNED
        assert all(torch.equal(merged[n], ref[n]) for n in BASE)
    assert report.method == "linear" and report.update_energy == pytest.approx(alpha**2)


@pytest.mark.parametrize("alpha", [-0.5, 1.5])
def test_alpha_outside_unit_interval_is_an_error(alpha):
    with pytest.raises(MergeError, match="alpha must be in"):
        interpolate_state_dicts(BASE, TUNED, alpha)


@pytest.mark.parametrize(
    ("tuned", "message"),
    [
        ({"a.weight": TUNED["a.weight"]}, "'b.bias' is in the base model but not in the tuned model"),
        ({**TUNED, "c": torch.zeros(1)}, "'c' is in the tuned model but not in the base model"),
        (
            {**TUNED, "a.weight": torch.zeros(3, 2)},
            r"'a.weight': base shape \(2, 3\) != tuned shape \(3, 2\)",
        ),
    ],
)
def test_mismatched_models_name_the_tensor(tuned, message):
    with pytest.raises(MergeError, match=message):
        check_compatible(BASE, tuned)
    with pytest.raises(MergeError, match=message):
        selective_merge(BASE, tuned, 0.5)


def test_non_finite_update_names_the_tensor():
    tuned = {**TUNED, "b.bias": torch.tensor([math.nan, 0.0, 0.0, 0.0])}
    with pytest.raises(MergeError, match="'b.bias'.*non-finite"):
        selective_merge(BASE, tuned, 0.5)


def test_unknown_scope_is_an_error():
    with pytest.raises(MergeError, match="scope must be one of"):
        select_update(DELTA, 0.5, "layer")  # type: ignore[arg-type]


def test_update_energy_is_the_kept_share_of_the_squared_norm():
    _, report = selective_merge(BASE, TUNED, 0.2, "global")  # keeps 1.0 and -0.5
    total = sum(float(d.square().sum()) for d in DELTA.values())
    assert report.update_energy == pytest.approx((1.0 + 0.25) / total)
    assert report.kept == 2
