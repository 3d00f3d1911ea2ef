"""The fidelity table's targets (bench/fidelity_targets.py) on hand-made measured tables."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    """A bench module by file (bench/ is on ``sys.path`` while it imports its siblings, as when run as a script)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


T = _load("fidelity_targets")

SHORT = dict(maj_acc=90.0, s1_acc=88.5, s3_acc=90.0, maj_thinking=1000, s1_thinking=600, maj_wall=10.0,
             s3_wall=6.7, shortest_acc=80.0, longest_acc=70.0)  # fmt: skip


def test_short_m_met_at_the_edges_and_missed_past_each():
    assert T.short_m(SHORT) == T.MET
    for key, value in [("s1_acc", 87.9), ("s1_thinking", 601), ("s3_acc", 89.9), ("s3_wall", 6.71),
                       ("shortest_acc", 70.0)]:  # fmt: skip
        assert T.short_m(SHORT | {key: value}) == T.MISSED, key


def test_deer_and_deepconf():
    deer = dict(deer_acc=78.0, full_acc=80.0, deer_tokens=700, full_tokens=1000)
    assert T.deer(deer) == T.MET
    assert T.deer(deer | {"deer_tokens": 701}) == T.MISSED
    assert T.deer(deer | {"deer_acc": 77.9}) == T.MISSED
    dc = dict(dc_acc=96.0, maj_acc=98.0, dc_tokens=70, maj_tokens=100)
    assert T.deepconf(dc) == T.MET
    assert T.deepconf(dc | {"dc_tokens": 71}) == T.MISSED
    assert T.deepconf(dc | {"dc_acc": 95.0}) == T.MISSED


def test_budget_forcing_is_reported():
    assert T.budget_forcing({"32": {"acc": 10.0}}) == T.REPORTED


def test_fractured_counts_matched_budgets():
    full = [[100, 50.0], [200, 60.0], [300, 70.0], [400, 72.0]]
    frac = [[150, 65.0], [300, 72.0], [450, 80.0]]  # none by 100; >= at 200, 300 and 400
    assert T.matched_budgets(frac, full) == 3
    m = dict(frac_curve=frac, full_curve=full, half_acc=75.0, chain_acc=80.0)
    assert T.fractured(m) == T.MET
    assert T.fractured(m | {"half_acc": 74.9}) == T.MISSED
    assert T.fractured(m | {"frac_curve": [[150, 59.0], [300, 72.0]]}) == T.MISSED  # 2 budgets


def test_entropy_branch_needs_fewer_tokens_and_rising_branches():
    m = dict(
        eb_tokens=60,
        par_tokens=100,
        eb_pass=90.0,
        par_pass=90.0,
        branches_by_level={"1": 1.0, "2": 1.0, "3": 2.5},
    )
    assert T.entropy_branch(m) == T.MET
    assert T.entropy_branch(m | {"eb_tokens": 61}) == T.MISSED
    assert T.entropy_branch(m | {"eb_pass": 89.0}) == T.MISSED
    assert T.entropy_branch(m | {"branches_by_level": {"1": 2.0, "2": 2.0}}) == T.MISSED  # flat
    assert (
        T.entropy_branch(m | {"branches_by_level": {"1": 1.0, "2": 3.0, "10": 2.0}}) == T.MISSED
    )  # 10 sorts last


def test_every_row_has_a_target_and_pending_rows_are_not_judged():
    assert set(T.TARGETS).isdisjoint(T.PENDING)
    assert len(T.TARGETS) + len(T.PENDING) == 14  # the table
    with pytest.raises(TypeError, match="maj_acc"):
        T.short_m(SHORT | {"maj_acc": "90"})


def _ev(acc: float, length: float, **levels: tuple[float, float]) -> dict:
    return {
        "acc": acc,
        "length": length,
        "by_level": {k[1:]: {"acc": a, "length": n} for k, (a, n) in levels.items()},
    }


def test_dler_halves_length_within_two_points():
    m = {"before": _ev(80.0, 100.0), "after": _ev(78.0, 50.0)}
    assert T.dler(m) == T.MET
    assert T.dler(m | {"after": _ev(78.0, 50.1)}) == T.MISSED
    assert T.dler(m | {"after": _ev(77.9, 50.0)}) == T.MISSED


def test_ablations_full_dler_best_or_tied_within_two_points():
    m = {"DLER": _ev(80.0, 60.0), "group norm": _ev(82.0, 70.0), "no clip-higher": _ev(70.0, 50.0)}
    assert T.ablations(m) == T.MET
    assert T.ablations(m | {"group norm": _ev(82.1, 70.0)}) == T.MISSED
    assert T.ablations({"DLER": _ev(80.0, 60.0)}) == T.MISSED  # nothing to compare with


def test_da_dler_easy_levels_shorter_and_hardest_as_accurate():
    dler = _ev(
        80.0, 60.0, L1=(90.0, 40.0), L2=(85.0, 50.0), L10=(70.0, 80.0)
    )  # L10 is the hardest (numeric order)
    da = _ev(80.0, 55.0, L1=(90.0, 30.0), L2=(85.0, 49.0), L10=(70.0, 90.0))
    assert T.da_dler({"dler": dler, "da": da}) == T.MET
    da_tied = _ev(80.0, 55.0, L1=(90.0, 30.0), L2=(85.0, 50.0), L10=(70.0, 90.0))
    assert T.da_dler({"dler": dler, "da": da_tied}) == T.MISSED  # level 2 not shorter
    da_worse = _ev(80.0, 55.0, L1=(90.0, 30.0), L2=(85.0, 49.0), L10=(69.9, 90.0))
    assert T.da_dler({"dler": dler, "da": da_worse}) == T.MISSED


def test_merge_keeps_sixty_percent_of_the_cut_at_base_accuracy():
    m = {"base": _ev(75.0, 130.0), "dler": _ev(85.0, 30.0), "merged": _ev(75.0, 70.0)}  # kept (130-70)/100
    assert T.merge(m) == T.MET
    assert T.merge(m | {"merged": _ev(75.0, 70.1)}) == T.MISSED
    assert T.merge(m | {"merged": _ev(74.9, 70.0)}) == T.MISSED
    assert T.merge(m | {"dler": _ev(85.0, 130.0)}) == T.MISSED  # DLER cut nothing


F = _load("fidelity_train")


@pytest.mark.parametrize(
    ("values", "parts", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], 4, [1.5, 3.5, 5.5, 7.5]),
        (
            [1, 2, 3, 4, 5, 6, 7, 8, 9],
            4,
            [1.5, 3.5, 5.5, 7.5],
        ),  # the tail that does not fill a window is left out
        ([2, 4], 4, [2.0, 4.0]),  # fewer steps than windows: one step per window
        ([], 4, []),
    ],
)
def test_over_steps_means_equal_windows(values, parts, expected):
    history = [{"step": i, "entropy": v} for i, v in enumerate(values)] + [{"step": 99, "loss": 0.1}]
    assert F.over_steps(history, "entropy", parts) == expected
