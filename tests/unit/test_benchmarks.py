"""Tests for evals.benchmarks: gold normalisation, local loaders on the shared data, the Hub call, evals.arith."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from evals import arith, benchmarks
from evals.arith import ARITH_LEVELS, generate_arith
from evals.benchmarks import (
    BENCHMARKS,
    DATA_DIR_ENV,
    HubBenchmark,
    canonical_number,
    gold_answer,
    last_boxed,
    load_benchmark,
    to_math_string,
)

# CI keeps the shared data beside the repo (../shared/data); $REASONER_DATA_DIR points elsewhere.
_DATA = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).parents[2].parent / "shared" / "data")


@pytest.fixture
def data_dir() -> Path:
    if not _DATA.is_dir():
        pytest.skip(f"benchmark data folder {_DATA} is absent (set ${DATA_DIR_ENV})")
    return _DATA


# ---------------------------------------------------------------- gold normalisation (pure)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("18", "18"), ("025", "25"), ("27.0", "27"), ("-1.0", "-1"), ("1.50", "1.5"), (" 7 ", "7"), ("+3", "3")]
    + [("0.006", "0.006"), ("1,000", None), ("x", None), ("", None), ("1e5", None)],
)
def test_canonical_number(text: str, expected: str | None) -> None:
    assert canonical_number(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (27.0, "27"),  # AMC floats
        (-1.0, "-1"),
        (2.5, "2.5"),
        (12, "12"),
        ("025", "25"),  # AIME leading zeros
        ("$166$", "166"),  # a delimited plain number is a plain number
        ("\\frac{14}{3}", "$\\frac{14}{3}$"),  # bare LaTeX gets delimiters (else math-verify misreads it)
        ("3\\sqrt{13}", "$3\\sqrt{13}$"),
        ("336^\\circ", "$336^\\circ$"),
        ("$69$,$84$", "$69$,$84$"),  # already delimited: kept
        ("\\$18.90", "$\\$18.90$"),  # escaped dollar is currency, not a delimiter
        ("$221,$8$", "$221,8$"),  # unbalanced delimiters (OlympiadBench data error) dropped
        ("a+$ $b", "$a+ b$"),  # stray mid-text delimiters (Minerva data error) dropped
        ("4.5e33", "$4.5 \\times 10^{33}$"),  # scientific notation (Minerva) as LaTeX
        ("3.3E-12", "$3.3 \\times 10^{-12}$"),
        (None, None),
        ("", None),
        ("  $ $ ", None),
        (float("nan"), None),
        (True, None),
    ],
)
def test_to_math_string(raw: object, expected: str | None) -> None:
    assert to_math_string(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{1.6} \\mathrm{~cm}$", "1.6"),
        ("\\boxed{1} then \\boxed{\\frac{a}{b^{2}}}", "\\frac{a}{b^{2}}"),  # the last one, nested braces
        ("\\fbox{204} minutes", "204"),
        ("no box here", None),
        ("\\boxed{unclosed", None),
        ("\\boxed{}", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("row", "kind", "expected"),
    [
        ({"answer": "She pays 2 * 3 = <<2*3=6>>6\n#### 1,450,000"}, "gsm8k", "1450000"),
        ({"answer": "#### -3"}, "gsm8k", "-3"),
        ({"answer": "no final line"}, "gsm8k", None),
        ({"answer": "#### about 5"}, "gsm8k", None),
        ({"answer": "\\frac{3}{56}", "solution": "\\boxed{9}"}, "boxed", "$\\frac{3}{56}$"),  # answer wins
        ({"solution": "Thus $s=\\boxed{1.6}$ cm"}, "boxed", "1.6"),
        ({"answer": "", "solution": "\\boxed{2^{10}}"}, "boxed", "$2^{10}$"),
        ({"solution": "nothing boxed"}, "boxed", None),
        ({"answer": 27.0}, "answer", "27"),
        ({}, "answer", None),
        ({"final_answer": ["$2n-2$"]}, "list", "$2n-2$"),
        ({"final_answer": ["$3$", "$x+1$"]}, "list", "$3, x+1$"),
        ({"final_answer": []}, "list", None),
    ],
)
def test_gold_answer(row: dict, kind: str, expected: str | None) -> None:
    assert gold_answer(row, kind) == expected  # type: ignore[arg-type]


# ---------------------------------------------------------------- local files (../shared/data)


@pytest.mark.parametrize(
    ("name", "split", "count", "known"),
    [
        ("gsm8k", "test", 1319, {0: ("gsm8k-test-0", "18"), 146: ("gsm8k-test-146", "2125")}),
        ("gsm8k", "train", 7473, {0: ("gsm8k-train-0", "72")}),
        ("math500", "test", 500, {0: ("math500-test/precalculus/807.json", "$\\left( 3, \\frac{\\pi}{2} \\right)$")}),
        ("aime24", "test", 30, {0: ("aime24-60", "204"), 7: ("aime24-67", "25")}),
        ("aime25", "test", 30, {0: ("aime25-test-0", "468"), 4: ("aime25-test-4", "$336^\\circ$")}),
        ("amc23", "test", 40, {0: ("amc23-0", "27"), 15: ("amc23-17", "-1")}),
        ("minerva_math", "test", 272, {0: ("minerva_math-0", "1.6"), 1: ("minerva_math-1", "$4.5 \\times 10^{33}$")}),
        ("olympiadbench", "test", 675, {0: ("olympiadbench-1606", "2"), 13: ("olympiadbench-1664", "$69$,$84$")}),
    ],
)  # fmt: skip
def test_local_loader(data_dir: Path, name: str, split: str, count: int, known: dict) -> None:
    result = load_benchmark(name, split=split, data_dir=data_dir)
    assert (len(result), result.skipped) == (count, 0)
    assert result.source.endswith(f"{name}/{split}.jsonl")
    assert all(p.question.strip() and p.answer.strip() for p in result)
    assert len({p.id for p in result}) == count
    assert all(p.meta["benchmark"] == name and p.meta["split"] == split for p in result)
    for index, (problem_id, answer) in known.items():
        assert (result.problems[index].id, result.problems[index].answer) == (problem_id, answer)


def test_local_meta_columns(data_dir: Path) -> None:
    math500 = load_benchmark("math500", data_dir=data_dir).problems[0]
    assert (math500.meta["subject"], math500.meta["level"]) == ("Precalculus", 2)
    olympiad = load_benchmark("olympiadbench", data_dir=data_dir).problems[137]
    assert (olympiad.meta["unit"], olympiad.answer) == ("minute", "45")


def test_limit_takes_a_prefix(data_dir: Path) -> None:
    full = load_benchmark("math500", data_dir=data_dir)
    assert load_benchmark("math500", limit=5, data_dir=data_dir).problems == full.problems[:5]
    assert len(load_benchmark("math500", limit=0, data_dir=data_dir)) == 0
    with pytest.raises(ValueError, match="limit"):
        load_benchmark("math500", limit=-1, data_dir=data_dir)


def test_data_dir_defaults_to_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "aime25").mkdir()
    (tmp_path / "aime25" / "test.jsonl").write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    result = load_benchmark("aime25")
    assert [(p.id, p.question, p.answer) for p in result] == [("aime25-test-0", "1+1?", "2")]


def test_bad_rows_are_skipped_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        {"question": "Q1", "answer": "work\n#### 1,000"},
        {"question": "Q2", "answer": "no final answer"},
        {"question": "", "answer": "#### 3"},
        {"question": "Q4", "answer": "#### 4"},
    ]
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="evals.benchmarks"):
        result = load_benchmark("gsm8k", data_dir=tmp_path)
    assert [(p.id, p.answer) for p in result] == [("gsm8k-test-0", "1000"), ("gsm8k-test-3", "4")]
    assert result.skipped == 2
    assert "skipped 2 rows" in caplog.text


def test_missing_local_split_names_the_hub_id(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="openai/gsm8k"):
        load_benchmark("gsm8k", split="validation", data_dir=tmp_path)


def test_unknown_benchmark_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'") as info:
        load_benchmark("gsm9k")
    for name in ("arith", "gsm8k", "math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench"):
        assert name in str(info.value)


# ---------------------------------------------------------------- Hub path


@pytest.mark.parametrize(
    ("name", "call", "row"),
    [
        ("gsm8k", ("openai/gsm8k", "main", "test"), {"question": "Q", "answer": "#### 5"}),
        ("math500", ("HuggingFaceH4/MATH-500", None, "test"), {"problem": "Q", "answer": "5", "unique_id": "u"}),
        ("aime24", ("HuggingFaceH4/aime_2024", None, "train"), {"id": 60, "problem": "Q", "answer": "005"}),
        ("aime25", ("yentinglin/aime_2025", None, "train"), {"problem": "Q", "answer": "5"}),
        ("amc23", ("math-ai/amc23", None, "test"), {"id": 0, "question": "Q", "answer": 5.0}),
        ("minerva_math", ("math-ai/minervamath", None, "test"), {"question": "Q", "answer": "5"}),
        ("olympiadbench", ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
         {"id": 1, "question": "Q", "final_answer": ["$5$"], "context": None}),
    ],
)  # fmt: skip
def test_hub_path_calls_load_dataset(
    monkeypatch: pytest.MonkeyPatch, name: str, call: tuple, row: dict
) -> None:
    # The one mock in this file: there is no network in tests, so datasets.load_dataset is replaced by a
    # recorder that returns rows with the Hub's column names. It checks the call the real path makes.
    import datasets

    calls: list[tuple] = []

    def fake_load_dataset(path: str, name: str | None = None, *, split: str) -> list[dict]:
        calls.append((path, name, split))
        return [row]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    result = load_benchmark(name)
    assert calls == [call]
    assert [(p.question, p.answer) for p in result] == [("Q", "5")]
    assert result.source.startswith(f"hub:{call[0]}")


# ---------------------------------------------------------------- arith (offline, reasoning-gym)


def test_arith_is_deterministic_with_stable_ids() -> None:
    first = generate_arith(20, seed=3)
    assert first == generate_arith(20, seed=3)
    assert generate_arith(10, seed=3) == first[:10]  # a larger n extends a smaller one
    assert len({p.id for p in first}) == 20
    assert first[0].id == "arith-test-s3-L1-0"
    assert [p.meta["level"] for p in first[:5]] == [1, 2, 3, 4, 5]
    assert [p.question for p in generate_arith(20, seed=4)] != [p.question for p in first]
    assert {p.question for p in generate_arith(20, seed=3, split="train")}.isdisjoint(
        p.question for p in first
    )


def test_arith_levels_differ() -> None:
    by_level = {lvl: generate_arith(8, seed=0, levels=[lvl]) for lvl in ARITH_LEVELS}
    for lvl, problems in by_level.items():
        assert {p.meta["level"] for p in problems} == {lvl}
        assert {p.meta["generator"] for p in problems} == {ARITH_LEVELS[lvl][0]}
    assert all(p.meta["expression"].count(" ") == 2 for p in by_level[1])  # "a +- b"
    assert all("=" in p.meta["equation"] for p in by_level[4])
    assert max(abs(int(p.answer)) for p in by_level[5]) > max(abs(int(p.answer)) for p in by_level[1])
    questions = [{p.question for p in ps} for ps in by_level.values()]
    assert sum(len(q) for q in questions) == len(set().union(*questions))


def test_arith_golds_parse_with_math_verify() -> None:
    from math_verify import parse

    for problem in generate_arith(30, seed=1):
        parsed = parse(problem.answer, parsing_timeout=None)
        assert parsed and parsed[0] == int(problem.answer), problem


def test_arith_rechecks_gold_exactly() -> None:
    # reasoning-gym's basic_arithmetic floor-divides; such items must be rejected.
    bad = {"answer": "-1", "metadata": {"expression": "-33 / 179"}}
    good = {"answer": "-40", "metadata": {"expression": "( 49 + 11 ) / 3 + -60"}}
    equation = {"answer": "12", "metadata": {"equation": "3 - 16*x = -189", "variable": "x"}}
    assert [arith._arith_gold_ok(item) for item in (bad, good, equation)] == [False, True, True]


def test_arith_through_the_registry() -> None:
    result = load_benchmark("arith", n=40, seed=7, levels=(1, 3))
    assert (len(result), result.skipped) == (40, 0)
    assert len(load_benchmark("arith", limit=6)) == 6
    assert BENCHMARKS["arith"] is benchmarks.get_benchmark("arith")


@pytest.mark.parametrize("levels", [(), (0,), (6,), (1, 1)])
def test_arith_rejects_bad_levels(levels: tuple) -> None:
    with pytest.raises(ValueError, match="levels"):
        generate_arith(5, levels=levels)


def test_hub_benchmark_from_rows_without_ids() -> None:
    spec = HubBenchmark("demo", "org/demo", "answer")
    result = spec.from_rows([{"problem": "Q", "answer": "1"}, {"problem": "Q2"}], split="test")
    assert ([p.id for p in result], result.skipped) == (["demo-test-0"], 1)
