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


def test_every_row_of_the_issue_has_a_target_and_a_measurement():
    assert len(T.TARGETS) == 14  # the issue's table
    assert set(_load("fidelity").ROWS) == set(T.TARGETS)
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


def _ev_lengths(acc: float, length: float, **levels: float) -> dict:
    return {
        "acc": acc,
        "length": length,
        "by_level": {k[1:]: {"acc": acc, "length": v} for k, v in levels.items()},
    }


def test_shortest_sft_orders_accuracy_and_length():
    m = {"shortest": _ev_lengths(80.0, 50), "random": _ev_lengths(80.0, 50), "longest": _ev_lengths(79.9, 51)}
    assert T.shortest_sft(m) == T.MET  # ties at the boundary
    assert (
        T.shortest_sft(m | {"random": _ev_lengths(80.1, 50)}) == T.MISSED
    )  # random more accurate than shortest
    assert (
        T.shortest_sft(m | {"longest": _ev_lengths(80.1, 51)}) == T.MISSED
    )  # longest more accurate than random
    assert (
        T.shortest_sft(m | {"shortest": _ev_lengths(80.0, 50.1)}) == T.MISSED
    )  # shortest longer than random
    assert T.shortest_sft(m | {"longest": _ev_lengths(79.0, 49.9)}) == T.MISSED  # longest shorter than random


def test_dap_needs_half_the_tokens_within_two_points_and_rising_levels():
    m = {"original": _ev_lengths(80.0, 200), "dap": _ev_lengths(78.0, 100, L1=50, L2=50, L10=150)}
    assert T.dap(m) == T.MET  # 10 sorts after 2; flat then rising counts as rising
    assert T.dap(m | {"dap": _ev_lengths(78.0, 100.1, L1=50, L2=150)}) == T.MISSED  # over 0.5x
    assert T.dap(m | {"dap": _ev_lengths(77.9, 100, L1=50, L2=150)}) == T.MISSED  # more than 2 points lost
    assert T.dap(m | {"dap": _ev_lengths(78.0, 100, L1=50, L2=50)}) == T.MISSED  # flat
    assert (
        T.dap(m | {"dap": _ev_lengths(78.0, 100, L1=50, L2=150, L10=140)}) == T.MISSED
    )  # falls at the hardest


TRACE = """<think>
Step A: add 2. 3 + 2 = 5
Step B: multiply by 3. 5 * 3 = 15
Wait, let me double-check.
Step A: add 2. 3 + 2 = 5
Step B: multiply by 3. 5 * 3 = 15
Yes.
Wait, let me double-check.
Step A: add 2. 3 + 2 = 5
Step B: multiply by 3. 5 * 3 = 16
Hmm, no: it is 16.
</think>

The final answer is \\boxed{16}."""


def test_scripted_teacher_keeps_the_chain_then_whole_rechecks_within_the_budget():
    _load("fidelity_common")
    S = _load("fidelity_sft")
    lines = len  # characters stand in for tokens
    minimal = S.compress(TRACE, 0, lines)  # nothing fits: the chain alone, boxed at its last value
    assert S.RECHECK not in minimal and minimal.endswith("\\boxed{15}.") and "5 * 3 = 15\n</think>" in minimal
    one = S.compress(TRACE, lines(minimal) + 100, lines)
    assert one.count(S.RECHECK) == 1 and one.endswith("\\boxed{15}.")
    assert S.compress(TRACE, lines(one) - 1, lines) == minimal  # one character short of a re-check
    full = S.compress(TRACE, 10_000, lines)  # the false correction kept: the teacher never sees the gold
    assert full.count(S.RECHECK) == 2 and full.endswith("\\boxed{16}.")


def test_scripted_teacher_through_the_real_dap_pipeline():
    import tempfile

    from reasoner.distill import DAPConfig, RecordLog, TraceRow, distill_dap
    from reasoner.organism.build import build_tokenizer, sft_rows
    from reasoner.organism.problems import generate_multistep

    _load("fidelity_common")
    S = _load("fidelity_sft")
    rows, problems = sft_rows(48), generate_multistep(48, split="train")
    traces = [TraceRow(p, r["completion"][0]["content"]) for p, r in zip(problems, rows, strict=True)]
    config = DAPConfig(budgets=S.DAP_BUDGETS)
    teacher = S.OrganismTeacher(build_tokenizer())
    records = distill_dap(teacher, traces, config, RecordLog(tempfile.mkdtemp(), {}), batch_size=16)
    for p, r, row in zip(problems, records, rows, strict=True):
        assert r["rated"] and r["level"] == S.RATING[p.meta["level"] + 1]
        kept = r["completion"].count(S.RECHECK)
        if r["outcome"] == "rewritten":
            assert r["final_correct"] and kept == (0 if r["level"] != "hard" else min(1, row["rechecks"]))
            assert r["tokens_after"] <= config.budgets[r["level"]] or kept == 0
        else:
            assert r["completion"] == row["completion"][0]["content"]  # the original is kept
            assert r["outcome"] != "kept_incorrect" or (r["level"] == "hard" and row["flipped"])
    assert {r["outcome"] for r in records} >= {"rewritten", "kept_longer"}


def test_evaluating_another_model_closes_the_organisms_engine_first(tmp_path, monkeypatch):
    """Closing a vLLM engine tore down the parallel state of the organism's live engine: the shortest-correct row
    (sample with the organism, evaluate three students, then the organism) failed at the organism's evaluation."""
    import reasoner.engines
    from reasoner.types import SampleSpec

    C = _load("fidelity_common")
    events = []

    class Engine:
        def __init__(self, name):
            self.name = name

        def close(self):
            events.append(f"close {self.name}")

    def load_engine(kind, model_dir, **kw):
        events.append(f"load {model_dir}")
        return Engine(model_dir)

    monkeypatch.setattr(reasoner.engines, "load_engine", load_engine)
    monkeypatch.setattr(C, "held_out", lambda engine, problems, spec: {"engine": engine.name})
    ctx = C.Ctx([], SampleSpec(), 1, load=lambda: Engine("organism"), model=lambda: "organism", out=tmp_path)
    ctx.engine = Engine("organism")
    assert ctx.evaluated("student", "student-dir") == {"engine": "student-dir"}
    assert events == ["close organism", "load student-dir", "close student-dir"] and ctx.engine is None
    assert ctx.evaluated("base", "organism") == {"engine": "organism"}  # reloaded


_load("fidelity_common")  # fidelity_grpo's import, found in sys.modules
G = _load("fidelity_grpo")


def test_final_value_is_the_mean_of_the_last_tenth():
    assert G.final_value([0.0] * 18 + [0.5, 1.0]) == pytest.approx(0.75)  # ceil(0.1 * 20) = 2
    assert G.final_value([0.0] * 9 + [0.4, 0.6]) == pytest.approx(0.5)  # ceil(1.1) = 2
    assert G.final_value([0.3]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        G.final_value([])


def test_first_reach_needs_a_full_trailing_window_at_or_above_the_target():
    values = [0.2, 0.6, 0.2, 0.4, 0.6, 0.8]
    assert G.first_reach(values, 0.5, window=2) == 4  # trailing means 0.4, 0.4, 0.3, 0.5 (index 4), 0.7
    assert G.first_reach(values, 0.5, window=1) == 1  # a single step's spike counts only with window 1
    assert G.first_reach(values, 0.71, window=2) is None  # best trailing mean (0.6 + 0.8) / 2 = 0.7
    assert G.first_reach(values, 0.7, window=2) == 5  # met exactly at the boundary
    assert G.first_reach([0.9], 0.5, window=2) is None  # no full window
    # a run always reaches its own final value (the same mean over its last window)
    run = [0.1 * (i % 7) for i in range(40)]
    assert G.first_reach(run, G.final_value(run, 0.25), window=10) is not None
    with pytest.raises(ValueError):
        G.first_reach(values, 0.5, window=0)


def test_cost_to_reach_sums_costs_through_the_reaching_step():
    values, costs = [0.0, 0.4, 0.6, 0.8], [10, 20, 30, 40]
    assert G.cost_to_reach(values, costs, 0.5, window=2) == 60  # reached at index 2: 10 + 20 + 30
    assert G.cost_to_reach(values, costs, 0.9, window=2) is None
    with pytest.raises(ValueError):
        G.cost_to_reach(values, costs[:3], 0.5, window=2)


def test_series_refuses_steps_without_the_metric():
    assert G.series([{"reward": 1}, {"reward": 0.5}], "reward") == [1.0, 0.5]
    with pytest.raises(KeyError, match="step 1"):
        G.series([{"reward": 1}, {"loss": 0.5}], "reward")


D3S_ROW = {"grpo": {"cost": 1000.0, "acc": 80.0}, "d3s": {"cost": 700.0, "acc": 78.0}}


def test_d3s_met_at_the_edges_and_missed_past_each():
    assert T.d3s(D3S_ROW) == T.MET
    assert T.d3s(D3S_ROW | {"d3s": {"cost": 701.0, "acc": 78.0}}) == T.MISSED
    assert T.d3s(D3S_ROW | {"d3s": {"cost": 700.0, "acc": 77.9}}) == T.MISSED
    assert T.d3s(D3S_ROW | {"d3s": {"cost": None, "acc": 90.0}}) == T.MISSED  # never reached GRPO's reward


def test_prune_met_at_the_edge_missed_past_it_or_never_reached():
    row = {"grpo": {"cost": 3200.0}, "prune": {"cost": 2560.0}}
    assert T.prune(row) == T.MET
    assert T.prune(row | {"prune": {"cost": 2561.0}}) == T.MISSED
    assert T.prune(row | {"prune": {"cost": None}}) == T.MISSED
    with pytest.raises(TypeError, match="prune"):
        T.prune(row | {"prune": 2560.0})


def test_grpo_rows_registered_with_targets():
    assert set(G.GRPO_ROWS) <= set(T.TARGETS)


class _FakeCtx:
    """``Ctx.trained`` from hand-made histories: label -> per-step (reward, stream rate, loss tokens, groups)."""

    def __init__(self, runs):
        self.runs = runs

    def trained(self, label, recipe, overrides=()):
        steps = [{"reward": r, "reasoner/stream_pass_rate": s, "reasoner/loss_tokens": t,
                  "reasoner/generated_groups": g, "reasoner/substituted": 0.0, "completions/clipped_ratio": 0.0,
                  "frac_reward_zero_std": 0.5,
                  "completions/mean_length": 100.0} for r, s, t, g in self.runs[label]]  # fmt: skip
        return {"history": steps, "steps": len(steps), "train_s": 1.0, "eval": {"acc": 80.0, "length": 100.0}}


def test_rows_measure_cost_to_grpos_final_reward():
    flat = [(0.5, 0.5, 100, 4)] * 10
    rising = [(0.5, 0.5, 100, 4)] * 10 + [
        (0.9, 0.9, 100, 4)
    ] * 10  # R = 0.9, first 10-step mean of it: 20th step
    fast = [(0.9, 0.6, 30, 4)] * 20  # reward 0.9 from the start at 30 tokens a step; stream rate never 0.9
    ctx = _FakeCtx({"grpo": rising, "d3s": fast, "prune": flat + flat})
    d3s = G.row_d3s(ctx)
    assert d3s["target_reward"] == pytest.approx(0.9)
    assert (d3s["grpo"]["step"], d3s["grpo"]["cost"]) == (19, 2000)
    assert (d3s["d3s"]["step"], d3s["d3s"]["cost"]) == (9, 300)
    assert T.d3s(d3s) == T.MET
    ctx.runs["prune"] = fast
    prune = G.row_prune(ctx)
    assert prune["grpo"]["cost"] == 20 * 32 and prune["prune"]["cost"] is None  # judged on the stream rate
    assert prune["prune"]["raw"]["cost"] == 10 * 32 and prune["prune"]["bias"] == pytest.approx(0.3)
    assert T.prune(prune) == T.MISSED
    assert "never reached" in G.show_prune(prune) and "0.15x" in G.show_d3s(d3s)
