"""Concise-CoT data tools with a scripted engine: shortest-correct selection, DAP parsing/outcomes/stats, I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasoner.distill import (
    DAPConfig,
    DistillError,
    RecordLog,
    TraceRow,
    correct_index,
    dap_rows,
    dap_stats,
    distill_dap,
    distill_shortest,
    load_rows,
    parse_difficulty,
    rewrite_outcome,
    sft_row,
    shortest_correct_index,
    shortest_rows,
    shortest_stats,
    write_dataset,
)
from reasoner.engines.fake import FakeEngine, Trace
from reasoner.types import Completion, Problem, SampleSpec

LEVELS = ["easy", "medium", "hard"]


@pytest.mark.parametrize(
    ("lengths", "correct", "finished", "expected"),
    [
        ([30, 10, 5], [True, True, False], None, 1),  # the shortest sample is wrong
        ([10, 10, 12], [True, True, True], None, 0),  # tie -> lowest index
        ([7, 3, 9], [True, True, True], [True, False, True], 0),  # truncated samples are never kept
        ([4, 5], [False, False], None, None),  # nothing correct
        ([4], [True], [False], None),  # correct but truncated
        ([], [], None, None),
    ],
)
def test_shortest_correct_index(lengths, correct, finished, expected):
    assert shortest_correct_index(lengths, correct, finished) == expected


@pytest.mark.parametrize(
    ("select", "expected"),
    [("shortest", 2), ("longest", 1)],  # 1 and 4 tie at the longest correct: the lowest index
)
def test_correct_index_selects_among_correct_finished_samples(select, expected):
    lengths, correct, finished = (
        [50, 30, 10, 40, 30, 60],
        [False, True, True, True, True, True],
        [True] * 5 + [False],
    )
    lengths[1] = lengths[4] = 45
    assert correct_index(lengths, correct, finished, select) == expected


def test_correct_index_random_is_uniform_over_correct_finished_and_seeded():
    import random

    lengths, correct, finished = [5, 6, 7, 8], [True, False, True, True], [True, True, True, False]
    picks = [correct_index(lengths, correct, finished, "random", random.Random(s)) for s in range(200)]
    assert set(picks) == {0, 2} and 70 < picks.count(0) < 130
    again = [correct_index(lengths, correct, finished, "random", random.Random(s)) for s in range(200)]
    assert picks == again
    assert correct_index([3], [False], None, "random", random.Random(0)) is None
    with pytest.raises(ValueError, match="rng"):
        correct_index(lengths, correct, finished, "random")
    with pytest.raises(ValueError, match="select"):
        correct_index(lengths, correct, finished, "median")  # type: ignore[arg-type]


def test_distill_shortest_select_longest_and_random(tmp_path: Path):
    spec = SampleSpec(n=3, max_tokens=24, temperature=0.0)
    longest = distill_shortest(FakeEngine(_sample_script), PROBLEMS, spec, RecordLog(tmp_path / "l", {}),
                               select="longest")  # fmt: skip
    by_id = {r["id"]: r for r in longest}
    p2 = by_id["p2"]
    ok = [j for j in range(3) if p2["sample_correct"][j] and p2["sample_finished"][j]]
    assert p2["num_tokens"] == max(p2["sample_tokens"][j] for j in ok)
    assert not by_id["p1"]["kept"]
    runs = [distill_shortest(FakeEngine(_sample_script), PROBLEMS, spec, RecordLog(tmp_path / f"r{i}", {}),
                             select="random", seed=3) for i in range(2)]  # fmt: skip
    assert [r["completion"] for r in runs[0]] == [r["completion"] for r in runs[1]]


def test_shortest_correct_index_rejects_ragged_input():
    with pytest.raises(ValueError, match="same length"):
        shortest_correct_index([1, 2], [True])


@pytest.mark.parametrize(
    ("reply", "level"),
    [
        ("easy", "easy"), ("  Hard.", "hard"), ("Difficulty: MEDIUM", "medium"), ("It is moderate.", "medium"),
        ("challenging, not easy", "hard"),  # the first level word wins
        ("simple", "easy"), ("2", "medium"), ("level 3 of 3", "hard"), ("7", None), ("no idea", None), ("", None),
        ("uneasy", None),  # whole words only
    ],
)  # fmt: skip
def test_parse_difficulty(reply, level):
    assert parse_difficulty(reply, LEVELS) == level


def test_parse_difficulty_with_custom_levels_ignores_default_synonyms():
    assert parse_difficulty("trivial", ["low", "high"]) is None
    assert parse_difficulty("HIGH", ["low", "high"]) == "high"
    assert parse_difficulty("1", ["low", "high"]) == "low"


def _completion(n: int, reason: str = "stop") -> Completion:
    return Completion(tuple(range(n)), "x", (), None, reason, 5)


@pytest.mark.parametrize(
    ("before", "after", "reason", "correct", "outcome"),
    [
        (100, 40, "stop", True, "rewritten"),
        (100, 40, "length", True, "kept_truncated"),
        (100, 40, "stop", False, "kept_incorrect"),
        (100, 100, "stop", True, "kept_longer"),
        (100, 140, "stop", True, "kept_longer"),
        (100, 140, "length", False, "kept_truncated"),
    ],
)
def test_rewrite_outcome(before, after, reason, correct, outcome):
    assert rewrite_outcome(before, _completion(after, reason), correct) == outcome


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budgets": {}}, "budgets: need at least one"),
        ({"budgets": {"easy": 0}}, "budgets: easy=0"),
        ({"budgets": {"Easy": 5}}, "lower-case"),
        ({"fallback": "extreme"}, "fallback: 'extreme' is not a level"),
        ({"cap_factor": 0.5}, "cap_factor: must be >= 1"),
    ],
)
def test_dap_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DAPConfig(**kwargs)


def test_dap_config_fallback_is_the_largest_budget_and_caps_round_up():
    config = DAPConfig(budgets={"easy": 10, "hard": 30, "medium": 20}, cap_factor=1.25)
    assert config.fallback_level == "hard" and config.cap("easy") == 13 and config.cap("hard") == 38


# ---------------------------------------------------------------- shortest-correct with a scripted engine

PROBLEMS = [Problem("p0", "What is 2 + 3?", "5"), Problem("p1", "What is 4 + 4?", "8"),
            Problem("p2", "What is 1 + 6?", "7")]  # fmt: skip
SAMPLES = {
    "2 + 3": ["let me think step by step first then the answer is \\boxed{5}", "so \\boxed{5}", "\\boxed{4}"],
    "4 + 4": ["\\boxed{9}", "the answer is \\boxed{7}", "wait"],
    "1 + 6": [Trace("\\boxed{7}", eos=False), "let me check the sum again: \\boxed{7}", "\\boxed{6}"],
}


def _sample_script(prompt: str, j: int):
    return next(samples[j] for key, samples in SAMPLES.items() if key in prompt)


def test_distill_shortest_keeps_the_shortest_correct_finished_sample(tmp_path: Path):
    engine = FakeEngine(_sample_script)
    records = RecordLog(tmp_path, {"method": "shortest-correct"})
    spec = SampleSpec(n=3, max_tokens=24, temperature=0.0)
    done = distill_shortest(engine, PROBLEMS, spec, records, batch_size=2)
    by_id = {r["id"]: r for r in done}
    assert by_id["p0"]["completion"] == "so \\boxed{5}" and by_id["p0"]["kept"]
    assert not by_id["p1"]["kept"] and by_id["p1"]["completion"] is None
    assert (
        by_id["p2"]["completion"] == "let me check the sum again: \\boxed{7}"
    )  # the truncated one is skipped
    assert by_id["p2"]["sample_finished"] == [False, True, True] and by_id["p2"]["sample_tokens"][0] == 24
    tok = engine.tokenizer
    assert (
        by_id["p0"]["num_tokens"] == len(tok.encode("so \\boxed{5}", add_special_tokens=False)) + 1
    )  # + EOS
    stats = shortest_stats(done)
    assert (stats["problems"], stats["samples"], stats["kept"], stats["skipped_no_correct"]) == (3, 9, 2, 1)
    assert stats["correct_samples"] == 4 and stats["truncated_samples"] == 1
    assert stats["mean_tokens_kept"] == pytest.approx(
        (by_id["p0"]["num_tokens"] + by_id["p2"]["num_tokens"]) / 2
    )
    rows = shortest_rows(done)
    assert [r["id"] for r in rows] == ["p0", "p2"]
    assert rows[0]["completion"] == [{"role": "assistant", "content": "so \\boxed{5}"}]
    assert rows[0]["prompt"][0]["role"] == "user" and "What is 2 + 3?" in rows[0]["prompt"][0]["content"]


def test_distill_shortest_resumes_without_regenerating(tmp_path: Path):
    settings = {"method": "shortest-correct", "n": 3}
    spec = SampleSpec(n=3, max_tokens=24, temperature=0.0)
    distill_shortest(FakeEngine(_sample_script), PROBLEMS[:2], spec, RecordLog(tmp_path, settings))

    def fail(prompt, j):
        raise AssertionError(f"regenerated {prompt!r}")

    engine = FakeEngine(lambda p, j: fail(p, j) if "2 + 3" in p or "4 + 4" in p else _sample_script(p, j))
    done = distill_shortest(engine, PROBLEMS, spec, RecordLog(tmp_path, settings))
    assert [r["id"] for r in done] == ["p0", "p1", "p2"]
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 3
    with pytest.raises(DistillError, match="n=3, this one has n=5"):
        RecordLog(tmp_path, {**settings, "n": 5})
    RecordLog(tmp_path, {**settings, "n": 5}, fresh=True)
    assert not (tmp_path / "records.jsonl").exists()


# ---------------------------------------------------------------- DAP with a scripted teacher

DAP_ROWS = [
    TraceRow(Problem("q0", "What is 2 + 3?", "5"), "first add two and three then check again the sum is five so \\boxed{5}"),
    TraceRow(Problem("q1", "What is 4 + 4?", "8"), None),  # the teacher writes this one
    TraceRow(Problem("q2", "What is 1 + 6?", "7"), "one plus six then check the sum again and again: \\boxed{7}"),
    TraceRow(Problem("q3", "What is 9 + 3?", "12"), "\\boxed{12}"),
]  # fmt: skip
RATINGS = {"2 + 3": "Easy.", "4 + 4": "This one is HARD", "1 + 6": "2", "9 + 3": "no idea"}
REWRITES = {
    "2 + 3": "so \\boxed{5}",  # correct and shorter -> rewritten
    "4 + 4": "\\boxed{9}",  # wrong -> original kept
    "1 + 6": Trace("the sum ", eos=False),  # runs into the cap -> original kept
    "9 + 3": "nine plus three is twelve, let me check again: \\boxed{12}",  # longer than the original
}


def _teacher(prompt: str, j: int):
    key = next(k for k in RATINGS if k in prompt)
    if "Difficulty:" in prompt:
        return RATINGS[key]
    if "Concise solution:" in prompt:
        assert "Long solution:" in prompt
        return REWRITES[key]
    return "let me think step by step: four plus four is eight, the answer is \\boxed{8}"


def test_distill_dap_outcomes_levels_and_stats(tmp_path: Path):
    engine = FakeEngine(_teacher)
    config = DAPConfig(budgets={"easy": 8, "medium": 16, "hard": 32})
    done = distill_dap(engine, DAP_ROWS, config, RecordLog(tmp_path, {"method": "dap"}), batch_size=3)
    by_id = {r["id"]: r for r in done}
    assert {k: (r["level"], r["outcome"]) for k, r in by_id.items()} == {
        "q0": ("easy", "rewritten"),
        "q1": ("hard", "kept_incorrect"),
        "q2": ("medium", "kept_truncated"),
        "q3": ("hard", "kept_longer"),  # unrated -> the hardest level
    }
    tok = engine.tokenizer
    q0 = by_id["q0"]
    assert q0["tokens_before"] == len(tok.encode(DAP_ROWS[0].trace, add_special_tokens=False))
    assert (
        q0["tokens_after"] == q0["tokens_rewrite"] < q0["tokens_before"]
        and q0["completion"] == "so \\boxed{5}"
    )
    assert (
        by_id["q2"]["tokens_rewrite"] == config.cap("medium")
        and by_id["q2"]["completion"] == DAP_ROWS[2].trace
    )
    assert by_id["q1"]["trace_generated"] and by_id["q1"]["original_correct"] and by_id["q1"]["final_correct"]
    assert by_id["q1"]["completion"].endswith("\\boxed{8}")
    stats = dap_stats(done, config)
    assert (stats["levels"]["easy"]["rewritten"], stats["levels"]["hard"]["kept"]) == (1, 2)
    assert stats["levels"]["hard"]["kept_incorrect"] == 1 and stats["levels"]["hard"]["kept_longer"] == 1
    assert stats["levels"]["medium"]["kept_truncated"] == 1
    overall = stats["overall"]
    assert overall["tokens_before_total"] == sum(r["tokens_before"] for r in done)
    assert overall["tokens_after_total"] == overall["tokens_before_total"] - (
        q0["tokens_before"] - q0["tokens_after"]
    )
    assert (stats["unrated"], stats["traces_generated"], stats["final_correct"]) == (1, 1, 4)
    rows = dap_rows(done, config)
    assert [r["completion"][0]["content"] for r in rows][0] == "so \\boxed{5}"
    assert {r["level"] for r in rows} == {"easy", "medium", "hard"}


def test_dap_require_correct_drops_rows_whose_kept_trace_is_wrong(tmp_path: Path):
    rows = [TraceRow(Problem("w", "What is 2 + 3?", "5"), "it is \\boxed{6}")]
    engine = FakeEngine(lambda p, j: "easy" if "Difficulty:" in p else "\\boxed{7}")
    done = distill_dap(engine, rows, DAPConfig(), RecordLog(tmp_path, {}))
    assert done[0]["outcome"] == "kept_incorrect" and not done[0]["final_correct"]
    assert dap_rows(done, DAPConfig(), require_correct=True) == []
    assert dap_stats(done, DAPConfig(), require_correct=True)["dropped_incorrect"] == 1


# ---------------------------------------------------------------- input rows and the output dataset


def test_load_rows_from_jsonl_and_dataset_dir(tmp_path: Path):
    import datasets

    path = tmp_path / "rows.jsonl"
    lines = [{"id": 7, "problem": "What is 1 + 1?", "answer": "2", "trace": "\\boxed{2}"},
             {"question": "What is 2 + 2?", "answer": 4}]  # fmt: skip
    path.write_text("\n".join(json.dumps(x) for x in lines))
    rows = load_rows(path)
    assert [(r.problem.id, r.problem.question, r.problem.answer, r.trace) for r in rows] == [
        ("7", "What is 1 + 1?", "2", "\\boxed{2}"),
        ("row-1", "What is 2 + 2?", "4", None),
    ]
    out = tmp_path / "ds"
    write_dataset(out, [sft_row("What is 3 + 3?", "\\boxed{6}") | {"id": "a", "answer": "6", "question": "What is 3 + 3?"}],
                  {"method": "test"})  # fmt: skip
    assert datasets.load_from_disk(str(out)).column_names == [
        "prompt",
        "completion",
        "id",
        "answer",
        "question",
    ]
    back = load_rows(out, trace_key="completion")
    assert back[0].trace == "\\boxed{6}" and back[0].problem.question == "What is 3 + 3?"
    assert json.loads((out / "stats.json").read_text()) == {"method": "test"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "q"}\n', "row 0: no gold answer in field 'answer'"),
        ('{"answer": "1"}\n', "row 0: no question"),
        (
            '{"id": 1, "question": "q", "answer": 1}\n{"id": 1, "question": "r", "answer": 2}\n',
            "id '1' occurs",
        ),
        ("not json\n", "invalid JSON"),
        ("", "no rows"),
    ],
)
def test_load_rows_errors_name_the_row_or_field(tmp_path: Path, content, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(DistillError, match=message):
        load_rows(path)


def test_load_rows_missing_path_is_an_error(tmp_path: Path):
    with pytest.raises(DistillError, match="does not exist"):
        load_rows(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(("limit", "count"), [(None, 64), (5, 5)])
def test_distill_generated_benchmark_size_is_limit_else_the_documented_64(limit, count):
    import argparse

    from reasoner.distill.cliargs import problems_from as _problems

    args = argparse.Namespace(data=None, benchmark="arith", levels="1,2", limit=limit, seed=0, split="test",
                              data_dir=None)  # fmt: skip
    assert len(_problems(args)) == count
