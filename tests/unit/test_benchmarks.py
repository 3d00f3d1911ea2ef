"""Tests for evals.benchmarks: gold normalisation (the verifier's ``problem_gold``), local loaders on the shared
data, bad files, the Hub call, evals.arith."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from evals import arith, benchmarks
from evals.arith import ARITH_LEVELS, generate_arith
from evals.benchmarks import BENCHMARKS, DATA_DIR_ENV, BenchmarkDataError, HubBenchmark, load_benchmark
from reasoner.verify.extract import last_boxed
from reasoner.verify.gold import problem_gold

# CI keeps the shared data beside the repo (../shared/data); $REASONER_DATA_DIR points elsewhere.
_DATA = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).parents[2].parent / "shared" / "data")


@pytest.fixture
def data_dir() -> Path:
    if not _DATA.is_dir():
        pytest.skip(f"benchmark data folder {_DATA} is absent (set ${DATA_DIR_ENV})")
    return _DATA


# ---------------------------------------------------------------- gold normalisation (pure)
# These tables tested the loader's own normaliser (canonical_number, to_math_string, last_boxed, gold_answer)
# before it was replaced by reasoner.verify.gold; rows marked "differs" are where the two rules disagreed.


@pytest.mark.parametrize(
    ("text", "expected"),
    [("18", "18"), ("025", "25"), ("27.0", "27"), ("-1.0", "-1"), ("1.50", "1.5"), (" 7 ", "7"), ("+3", "3")]
    + [("0.006", "0.006"), ("", None)]
    + [("1,000", "1000"), ("x", "$x$"), ("1e5", "$1\\times10^{5}$")],  # differs: canonical_number gave None
)
def test_numbers_are_canonical(text: str, expected: str | None) -> None:
    assert problem_gold(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (27.0, "27"),  # AMC floats
        (-1.0, "-1"),
        (2.5, "2.5"),
        (1e-07, "0.0000001"),  # plain decimal notation, not 1e-07
        (12, "12"),
        ("025", "25"),  # AIME leading zeros
        ("$166$", "166"),  # a delimited plain number is a plain number
        ("\\frac{14}{3}", "$\\frac{14}{3}$"),  # bare LaTeX gets delimiters (else math-verify misreads it)
        ("3\\sqrt{13}", "$3\\sqrt{13}$"),
        ("336^\\circ", "$336^\\circ$"),
        ("$69$,$84$", "$69, 84$"),  # differs: was kept as "$69$,$84$" (both parse as {69, 84})
        ("\\$18.90", "18.9"),  # differs: was "$\\$18.90$"; the verifier drops currency
        ("$221,$8$", "$221,8$"),  # unbalanced delimiters (OlympiadBench data error) dropped
        ("a+$ $b", "$a+ b$"),  # stray mid-text delimiters (Minerva data error) dropped
        ("4.5e33", "$4.5\\times10^{33}$"),  # differs: was "$4.5 \\times 10^{33}$" (same value)
        ("3.3E-12", "$3.3\\times10^{-12}$"),
        ("$3 n$", "$3 n$"),  # a number times a variable, not 3 and a unit word
        ("$11,\\! 111,\\! 111,\\! 100$", "11111111100"),  # LaTeX thousands separators (MATH-500)
        (None, None),
        ("", None),
        ("  $ $ ", None),
        (float("nan"), None),
        (True, None),
    ],
)
def test_problem_gold(raw: object, expected: str | None) -> None:
    assert problem_gold(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{1.6} \\mathrm{~cm}$", "1.6"),
        ("\\boxed{1} then \\boxed{\\frac{a}{b^{2}}}", "\\frac{a}{b^{2}}"),  # the last one, nested braces
        ("\\fbox{204} minutes", "204"),
        ("no box here", None),
        ("\\boxed{unclosed", None),
        ("\\boxed{}", None),
        ("\\boxed{1} then \\boxed{unclosed", "1"),  # differs: the loader's rule gave None (last box unclosed)
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("row", "benchmark", "expected"),
    [
        ({"answer": "She pays 2 * 3 = <<2*3=6>>6\n#### 1,450,000"}, "gsm8k", "1450000"),
        ({"answer": "#### -3"}, "gsm8k", "-3"),
        ({"answer": "no final line"}, "gsm8k", None),
        ({"answer": "#### about 5"}, "gsm8k", None),
        ({"answer": "\\frac{3}{56}", "solution": "\\boxed{9}"}, "math500", "$\\frac{3}{56}$"),  # answer wins
        ({"solution": "Thus $s=\\boxed{1.6}$ cm"}, "minerva_math", "1.6"),
        ({"answer": "", "solution": "\\boxed{2^{10}}"}, "math500", "$2^{10}$"),
        ({"solution": "nothing boxed"}, "math500", None),
        ({"answer": 27.0}, "amc23", "27"),
        ({}, "aime24", None),
        ({"final_answer": ["$2n-2$"]}, "olympiadbench", "$2n-2$"),
        ({"final_answer": ["$3$", "$x+1$"]}, "olympiadbench", "$3, x+1$"),
        ({"final_answer": []}, "olympiadbench", None),
    ],
)
def test_row_gold(row: dict, benchmark: str, expected: str | None) -> None:
    assert BENCHMARKS[benchmark].gold(row) == expected


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
        ("minerva_math", "test", 272, {0: ("minerva_math-0", "1.6"), 1: ("minerva_math-1", "$4.5\\times10^{33}$")}),
        ("olympiadbench", "test", 675, {0: ("olympiadbench-1606", "2"), 13: ("olympiadbench-1664", "$69, 84$")}),
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


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).mkdir()
    path = tmp_path / name / "test.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_invalid_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "gsm8k", '{"question": "Q1", "answer": "#### 1"}\n\n{"question": "Q2" "answer": 2}\n'
    )
    with pytest.raises(BenchmarkDataError) as info:
        load_benchmark("gsm8k", data_dir=tmp_path)
    assert str(info.value) == f"{path} line 3: invalid JSON (Expecting ',' delimiter: column 19)"
    assert isinstance(info.value, ValueError)  # the CLIs turn ValueErrors into one line


def test_a_row_that_is_not_an_object_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "aime25", '{"problem": "Q", "answer": "1"}\n[1, 2]\n')
    with pytest.raises(BenchmarkDataError, match=f"{path} line 2: expected a JSON object, got list"):
        load_benchmark("aime25", data_dir=tmp_path)


def test_no_row_with_the_fields_names_them_and_lists_the_fields_present(tmp_path: Path) -> None:
    rows = [{"question": "Q1", "solution": "#### 1"}, {"question": "Q2", "solution": "#### 2"}]
    path = _write(tmp_path, "gsm8k", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchmarkDataError) as info:
        load_benchmark("gsm8k", data_dir=tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path} line 1: no 'answer' field; gsm8k reads the question from")
    assert message.endswith("the rows have fields: question, solution")
    with pytest.raises(
        BenchmarkDataError, match="no 'problem' or 'question' field and no 'final_answer' field"
    ):
        BENCHMARKS["olympiadbench"].from_rows([{"text": "Q", "answer": "1"}], "test", source="hub:x")


def test_rows_missing_a_field_in_a_usable_file_are_skipped_with_their_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = '{"problem": "Q1", "answer": "1"}\n{"problem": "Q2"}\n{"problem": "Q3", "answer": "3"}\n'
    _write(tmp_path, "aime25", text)
    with caplog.at_level(logging.WARNING, logger="evals.benchmarks"):
        result = load_benchmark("aime25", data_dir=tmp_path)
    assert ([p.answer for p in result], result.skipped) == (["1", "3"], 1)
    assert "skipped 1 rows (1 with no 'answer' field (first: line 2))" in caplog.text


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "aime25", "\n")
    with pytest.raises(BenchmarkDataError, match=f"{path}: the file has no rows"):
        load_benchmark("aime25", data_dir=tmp_path)
    assert len(load_benchmark("aime25", limit=0, data_dir=tmp_path)) == 0


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


@pytest.mark.parametrize(
    "limit, options, count",
    [
        (None, {}, 50),
        (100, {}, 100),
        (7, {}, 7),
        (None, {"n": 12}, 12),
        (5, {"n": 12}, 5),
        (30, {"n": 12}, 12),
    ],
)
def test_generated_benchmark_size(limit: int | None, options: dict, count: int) -> None:
    """A generated benchmark has no natural size: ``limit`` alone sets it (no silent cap at the default 50)."""
    assert len(load_benchmark("multistep", "test", limit, **options)) == count


def test_load_problems_is_the_one_loader_and_its_errors_name_the_benchmark_and_split(tmp_path):
    """``load_problems``: the problems (generator options for generated benchmarks only); an unknown name, a
    missing local split or an empty split is a ValueError naming the benchmark and the split."""
    from evals.benchmarks import load_problems

    problems = load_problems("arith", "train", limit=5, n=8, seed=3, levels=[1, 2])
    assert problems == list(load_benchmark("arith", "train", 5, n=8, seed=3, levels=(1, 2)).problems)
    assert len(problems) == 5
    with pytest.raises(ValueError, match=r"benchmark 'nope' split 'test': unknown benchmark"):
        load_problems("nope")
    with pytest.raises(ValueError, match=r"benchmark 'gsm8k' split 'dev': .*no local copy"):
        load_problems("gsm8k", "dev", data_dir=tmp_path, levels=[1])  # levels: ignored off generators
    with pytest.raises(ValueError, match=r"benchmark 'arith' split 'test': no problems"):
        load_problems("arith", limit=0)
