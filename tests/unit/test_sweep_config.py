"""Budget-sweep configuration: strategy entries and labels, field validation that names the field, YAML
loading, and the grid of work units with their seeds."""

from __future__ import annotations

from typing import get_args

import pytest

from evals.sweep import EvalConfig, StrategyEntry, WorkUnit, load_config, work_units
from reasoner.engines import ENGINES
from reasoner.types import Problem

PROBLEMS = [Problem(f"p{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(5)]


def test_strategy_entries_labels_and_errors():
    assert StrategyEntry.parse("greedy", 4).label == "greedy"
    assert StrategyEntry.parse("majority", 4).label == "majority:k=4"
    assert StrategyEntry.parse("majority:k=8", 4).label == "majority:k=8"
    assert StrategyEntry.parse("short-m@k:m=1,mode=simulated", 6).label == "short-m@k:k=6,m=1,mode=simulated"
    assert (
        StrategyEntry.parse({"name": "best-of-n", "score": "logprob"}, 2).label
        == "best-of-n:n=2,score=logprob"
    )
    assert StrategyEntry.parse("budget-forcing", 4).build(77).config.budget == 77
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        StrategyEntry.parse("nope", 4)
    with pytest.raises(ValueError, match="expected key=value, got 'k'"):
        StrategyEntry.parse("majority:k", 4)
    with pytest.raises(ValueError, match="'budget' comes from the budgets"):
        StrategyEntry.parse("budget-forcing:budget=5", 4)
    with pytest.raises(ValueError, match="unknown parameter 'kk'"):
        EvalConfig(strategies=["majority:kk=3"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("budgets", [64, 0], "budgets.1: Input should be greater than or equal to 1 (got 0)"),
        ("budgets", [], "budgets: List should have at least 1 item"),
        ("budgets", ["x"], "budgets.0: Input should be a valid integer"),
        ("seeds", [1, 1], "seeds: must be distinct (got [1, 1])"),
        ("seeds", [-1], "seeds.0: Input should be greater than or equal to 0"),
        ("n", 0, "n: Input should be greater than or equal to 1 (got 0)"),
        ("batch_size", "0", "batch_size: Input should be greater than or equal to 1"),
        ("limit", 0, "limit: Input should be greater than or equal to 1"),
        ("temperature", -1.0, "temperature: Input should be greater than or equal to 0"),
        ("top_p", 0, "top_p: Input should be greater than 0"),
        ("grader", "loose", "grader: Input should be 'lenient' or 'strict'"),
        ("engine", "tpu", "engine: Input should be 'auto', 'vllm' or 'hf'"),
        ("strategies", ["greedy", "greedy"], "strategies: must be distinct"),
        ("strategies", ["majority", "majority:k=8"], "labels ['majority:k=8', 'majority:k=8']"),
        ("strategies", [], "strategies: List should have at least 1 item"),
        ("strategies", ["short-m@k:m=9"], "m must be in [1, k=8], got 9"),
    ],
)
def test_config_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError) as err:
        EvalConfig.from_dict({field: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_normalises_budgets_and_seeds():
    cfg = EvalConfig(budgets=[256, "64", 128, 64], seeds=3, strategies="greedy", limit="all")
    assert cfg.budgets == [64, 128, 256] and cfg.seeds == [3] and cfg.strategies == ["greedy"]
    assert cfg.limit is None and EvalConfig.from_dict({"limit": "None"}).limit is None
    assert EvalConfig().strategies == [
        "greedy", "majority:k=8", "short-m@k:k=8,m=1", "short-m@k:k=8,m=3", "budget-forcing",
    ]  # fmt: skip
    assert all(EvalConfig.model_fields[name].description for name in EvalConfig.model_fields)
    assert get_args(EvalConfig.model_fields["engine"].annotation) == ENGINES


def test_config_assignment_is_validated():
    cfg = EvalConfig()
    cfg.grader = "strict"
    with pytest.raises(ValueError, match="grader"):
        cfg.grader = "loose"


def test_strategy_entry_live_is_the_strategys():
    live = {e.label: e.live for e in EvalConfig().entries()}
    assert live == {
        "greedy": False, "majority:k=8": False, "short-m@k:k=8,m=1": True, "short-m@k:k=8,m=3": True,
        "budget-forcing": False,
    }  # fmt: skip
    assert StrategyEntry.parse("short-m@k:mode=simulated", 4).live is False
    assert StrategyEntry.parse("deepconf:mode=online", 4).live is True


def test_yaml_config_loading(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "model: tiny-random-qwen2\nbudgets: [32, 16]\nstrategies:\n  - greedy\n"
        "  - {name: short-m@k, m: 1, mode: simulated}\nn: 3\n"
    )
    cfg = load_config(path, {"seeds": [0, 1]})
    assert cfg.model == "tiny-random-qwen2" and cfg.budgets == [16, 32] and cfg.seeds == [0, 1]
    assert cfg.strategies == ["greedy", "short-m@k:k=3,m=1,mode=simulated"]
    assert EvalConfig.from_dict(cfg.to_dict()) == cfg


def test_yaml_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: smollm2-135m\nbudget: [64]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown config key 'budget'; valid keys: model, "):
        load_config(path)


def test_work_units_grid_and_seeds():
    units = work_units(PROBLEMS, [0, 1], batch_size=2)
    assert [(u.index, u.seed, [p.id for p in u.problems]) for u in units[:3]] == [
        (0, 0, ["p0", "p1"]),
        (1, 0, ["p2", "p3"]),
        (2, 0, ["p4"]),
    ]
    assert len(units) == 6 and {u.seed for u in units[3:]} == {1}
    keys = units[0].keys(["greedy", "majority:k=4"], [64, 128])
    assert len(keys) == 2 * 2 * 2 and ("majority:k=4", 128, "p1", 0) in keys
    # the sampling seed depends on (seed, problems), not on where the unit sits in a run
    moved = WorkUnit(index=7, seed=0, problems=units[0].problems)
    assert moved.spec_seed == units[0].spec_seed != units[3].spec_seed
    assert len({u.spec_seed for u in units}) == len(units)
