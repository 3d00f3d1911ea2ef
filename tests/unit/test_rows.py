"""Eval rows and summary cells as data (evals.rows, evals.cells): today's JSONL/JSON format read and written back
unchanged, strict reading (the field and the line named), and a fake-engine sweep whose files round-trip."""

from __future__ import annotations

import json
import zlib

import pytest

import evals.runner
from evals.cells import Summary, load_summary
from evals.report import NOT_REPRODUCIBLE, write_summary
from evals.rows import Row, RowFormatError, read_rows
from evals.runner import RunDir, run_sweep
from evals.sweep import EvalConfig
from reasoner.engines.fake import FakeEngine, Trace
from reasoner.types import Problem

LINE = (
    '{"problem_id": "p0", "strategy": "majority:k=2", "budget": 24, "seed": 0, "answer": "4", "gold": "0", '
    '"tokens": {"generated": 17, "prefilled": 63, "thinking": 0, "answer": 17, "sequential": 17}, "spent": 17, '
    '"wall_s": 0.0006, "measured_s": 0.0005, "samples": [{"tokens": 17, "finish": "stop", "answer": "4", '
    '"correct": false, "status": "ok", "text": "a a \\\\boxed{4} é"}, {"tokens": 12, "finish": "length", '
    '"answer": null, "correct": false, "status": "no_answer", "text": "a a \\\\"}], "correct": false, '
    '"status": "ok", "grader": "lenient"}\n'
)
"""One line of samples.jsonl as runs write it today (a copy of a real fake-engine run's line, two samples)."""


def test_a_stored_row_round_trips_to_the_same_dict_and_bytes():
    data = json.loads(LINE)
    row = Row.from_json(data, "x")
    assert row.to_json() == data and list(row.to_json()) == list(data)
    assert row.to_line() == LINE
    assert row.key == ("majority:k=2", 24, "p0", 0) and row.samples[1].answer is None
    assert row.tokens.generated == 17 and row.samples[0].text == "a a \\boxed{4} é"


def test_old_rows_without_optional_fields_load_with_their_defaults():
    data = json.loads(LINE)
    for key in ("status", "grader", "spent", "measured_s"):
        del data[key]
    for sample in data["samples"]:
        del sample["status"], sample["text"]
    row = Row.from_json(data, "x")
    assert (row.status, row.grader, row.spent, row.measured_s) == (None, None, 0, 0.0)
    assert row.samples[0].text is None and row.samples[0].status is None
    assert row.to_json() == data | {"spent": 0, "measured_s": 0.0}  # the report's defaults, written back


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(extra=1), "line 2: unknown field 'extra' \\(known fields: problem_id, strategy,"),
        (lambda d: d.pop("gold"), "line 2: missing field 'gold'"),
        (
            lambda d: d.update(budget="24"),
            "line 2: field 'budget': Input should be a valid integer, got '24'",
        ),
        (lambda d: d.update(correct=1), "line 2: field 'correct': Input should be a valid boolean, got 1"),
        (lambda d: d.update(wall_s=True), "line 2: field 'wall_s': Input should be a valid number, got True"),
        (lambda d: d.update(samples={}), "line 2: field 'samples': Input should be a valid array, got {}"),
        # in a nested sample: missing, wrong type, unknown
        (lambda d: d["samples"][1].pop("finish"), "line 2: missing field 'samples.1.finish'"),
        (
            lambda d: d["samples"][1].update(tokens=True),
            "line 2: field 'samples.1.tokens': Input should be a valid integer, got True",
        ),
        (
            lambda d: d["samples"][0].update(text=None, status=1),
            "line 2: field 'samples.0.status': Input should "
            "be a valid string, got 1; field 'samples.0.text': absent or a value, never null, got None",
        ),
        (
            lambda d: d["samples"][0].update(words=3),
            "line 2: unknown field 'samples.0.words' \\(known fields: "
            "tokens, finish, answer, correct, status, text\\)",
        ),
        # in the TokenCount (a stdlib dataclass): strict too
        (
            lambda d: d["tokens"].update(words=3),
            "line 2: unknown field 'tokens.words' \\(known fields: generated,",
        ),
        (
            lambda d: d["tokens"].update(generated=17.0),
            "line 2: field 'tokens.generated': Input should be a valid integer, got 17.0",
        ),
        (
            lambda d: d["tokens"].update(thinking=False),
            "line 2: field 'tokens.thinking': Input should be a valid integer, got False",
        ),
        (
            lambda d: d["tokens"].pop("answer"),
            "line 2: field 'tokens': every TokenCount field is stored; missing: answer",
        ),
    ],
)
def test_a_malformed_stored_row_names_the_field_file_and_line(tmp_path, edit, message):
    data = json.loads(LINE)
    edit(data)
    path = tmp_path / "samples.jsonl"
    path.write_text(LINE + json.dumps(data) + "\n" + LINE[:40])
    with pytest.raises(RowFormatError, match=f"{path} {message}"):
        read_rows(path)
    path.write_text(LINE + LINE + LINE[:40])  # a duplicate key is dropped, a torn tail skipped
    assert len(read_rows(path)) == 1


def script(prompt: str, j: int) -> Trace | str:
    if prompt.endswith("\\boxed{"):
        return "4}"
    h = zlib.crc32(prompt.encode()) + 7 * j
    body = " ".join(["a"] * (2 + h % 23))
    return Trace(f"{body} \\boxed{{{h % 3 * 2}}}", eos=h % 5 != 0)


def _sweep(path, monkeypatch) -> RunDir:
    problems = [Problem(f"p{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(3)]
    monkeypatch.setattr(evals.runner, "sweep_problems", lambda config: problems)
    cfg = EvalConfig(model="fake", benchmark="arith", limit=3, budgets=[6, 24], seeds=[0, 1], batch_size=2,
                     strategies=["greedy", "majority:k=3", "budget-forcing"])  # fmt: skip
    run = RunDir(path)
    run.prepare(cfg)
    run_sweep(cfg, run, engine=FakeEngine(script), progress=False)
    write_summary(run.path)
    return run


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in NOT_REPRODUCIBLE and k != "manifest"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def test_a_fake_sweeps_files_read_back_and_written_again_are_equal(tmp_path, monkeypatch):
    """samples.jsonl and summary.json through the dataclasses and back are byte for byte the files; a second
    run equals the first apart from wall-clock fields."""
    one, two = _sweep(tmp_path / "one", monkeypatch), _sweep(tmp_path / "two", monkeypatch)
    text = one.samples_path.read_text(encoding="utf-8")
    rows = one.read_rows()
    assert "".join(r.to_line() for r in rows) == text and len(rows) == 3 * 2 * 3 * 2
    assert {r.correct for r in rows} == {True, False}  # both verdicts occur
    stored = json.loads((one.path / "summary.json").read_text())
    assert Summary.from_json(stored).to_json() == stored
    assert (
        json.dumps(load_summary(one.path).to_json(), indent=2) + "\n"
        == (one.path / "summary.json").read_text()
    )
    assert any(c.tokens_per_correct == float("inf") for c in load_summary(one.path).cells)  # null in JSON
    assert [_timeless(r.to_json()) for r in two.read_rows()] == [_timeless(r.to_json()) for r in rows]
    assert _timeless(json.loads((two.path / "summary.json").read_text())) == _timeless(stored)


def test_a_malformed_summary_names_the_cell_field_and_file(tmp_path, monkeypatch):
    run = _sweep(tmp_path / "run", monkeypatch)
    stored = json.loads((run.path / "summary.json").read_text())
    majority = next(i for i, c in enumerate(stored["cells"]) if "maj@3" in c)
    for edit, message in [
        (lambda d: d["cells"][1].update(budget="6"), "field 'cells.1.budget': Input should be a valid int"),
        (lambda d: d["cells"][0].update(extra=1), "unknown field 'cells.0.extra'"),
        (lambda d: d["cells"][majority].update({"maj@5": 0.5}), f"unknown field 'cells.{majority}.maj@5'"),
        (lambda d: d["cells"][0].pop("pareto"), "missing field 'cells.0.pareto'"),
        (lambda d: d.pop("rows"), "missing field 'rows'"),
    ]:
        data = json.loads(json.dumps(stored))
        edit(data)
        bad = tmp_path / "bad"
        bad.mkdir(exist_ok=True)
        (bad / "summary.json").write_text(json.dumps(data))
        with pytest.raises(RowFormatError, match=f"{bad / 'summary.json'}: {message}"):
            load_summary(bad)
