"""A finished run keeps its responses: `reasoner regrade` (both modes) and `reasoner report --audit` work from
them without generating; the run manifest lands in manifest.json, summary.json and the report header.

The engine is the scripted FakeEngine (no model needed: what is tested is grading, not generation); sample j of
every problem answers in style j: boxed, "The answer is N.", an unmarked sentence ("we get N in total"), and
a digit inside a word ("AZYUK<N>A"), so the two extraction modes and math-verify see different things."""

from __future__ import annotations

import json
import re

import pytest

from evals.audit import audit_run
from evals.manifest import MANIFEST_FILE, read_manifest
from evals.regrade import regrade_run
from evals.report import write_report
from evals.runner import RunDir, run_sweep
from evals.sweep import EvalConfig
from reasoner.cli import main
from reasoner.engines.fake import FakeEngine

PAIRS = [(2, 3), (10, 7), (4, 4), (12, 30)]


def script(prompt: str, j: int) -> str:
    if prompt.endswith("\\boxed{"):
        return "4}"
    a, b = map(int, re.search(r"What is (\d+) \+ (\d+)\?", prompt).groups())
    s = a + b
    styles = [
        f"Adding gives \\boxed{{{s}}}.",
        f"We add them. The answer is {s}.",
        f"Adding {a} and {b} we get {s} in total",
        f"I think it is AZYUK{s}A",
    ]
    return styles[j % len(styles)]


def _run(root, grader: str):
    data = root / "data" / "gsm8k"
    data.mkdir(parents=True)
    lines = [
        json.dumps({"question": f"What is {a} + {b}?", "answer": f"{a} + {b}\n#### {a + b}"})
        for a, b in PAIRS
    ]
    (data / "test.jsonl").write_text("\n".join(lines) + "\n")
    config = EvalConfig(
        grader=grader,
        model="fake",
        benchmark="gsm8k",
        data_dir=str(root / "data"),
        limit=None,
        budgets=[64],
        strategies=["majority:k=4", "sample"],
        batch_size=4,
    )
    run = RunDir(root / f"run-{grader}")
    run.prepare(config)
    run_sweep(config, run, engine=FakeEngine(script), progress=False)
    write_report(run.path)
    return run.path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("regrade"), "lenient")


def _verdicts(path) -> list:
    rows = sorted(RunDir(path).read_rows(), key=lambda r: (r.strategy, r.problem_id))
    return [(r.answer, r.correct, r.grader, [(s.answer, s.correct) for s in r.samples]) for r in rows]


def test_eval_with_strict_grader_equals_a_strict_regrade(tmp_path, run_dir):
    direct = _run(tmp_path, "strict")
    regraded = run_dir / "regrade-strict"
    if not regraded.exists():
        regrade_run(run_dir, "strict")
    assert _verdicts(direct) == _verdicts(regraded)


def _sample_verdicts(path) -> list[tuple[str | None, bool]]:
    rows = sorted(RunDir(path).read_rows(), key=lambda r: (r.strategy, r.problem_id))
    return [(s.answer, s.correct) for r in rows if r.strategy.startswith("majority") for s in r.samples]


def test_rows_keep_texts_and_the_grader(run_dir):
    rows = RunDir(run_dir).read_rows()
    assert {r.grader for r in rows} == {"lenient"}
    texts = [s.text for r in rows for s in r.samples]
    assert any("AZYUK" in t for t in texts) and all(isinstance(t, str) and t for t in texts)
    # lenient: boxed, "answer is" and the unmarked sentence are read; the digit inside a word is not
    per_problem = [v for v in _sample_verdicts(run_dir)]
    assert [c for _, c in per_problem] == [True, True, True, False] * len(PAIRS)
    assert all(a is None for a, _ in per_problem[3::4])


def test_regrade_strict_then_lenient(run_dir, capsys):
    out, changed = regrade_run(run_dir, "strict")
    assert out == run_dir / "regrade-strict"
    assert changed["completions"] == len(PAIRS) * (4 + 1)
    assert changed["samples"] == len(PAIRS)  # only the unmarked sentence flips (to no answer)
    strict = _sample_verdicts(out)
    assert [c for _, c in strict] == [True, True, False, False] * len(PAIRS)
    assert [a for a, _ in strict][2::4] == [None] * len(PAIRS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["grader"] == "strict" and (out / "report.html").is_file()
    majority = next(c for c in summary["cells"] if c["strategy"].startswith("majority"))
    assert majority["accuracy"] == 1.0 and majority["sample_acc"] == 0.5  # 2 of 4 votes still win
    # lenient again reproduces the original verdicts exactly
    assert main(["regrade", str(run_dir), "--mode", "lenient"]) == 0
    assert _verdicts(run_dir / "regrade-lenient") == _verdicts(run_dir)  # finals too
    assert "0 verdicts" in capsys.readouterr().out


def test_regrade_refuses_runs_without_texts(tmp_path, run_dir):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_bytes((run_dir / "config.yaml").read_bytes())
    rows = [
        r.model_copy(update={"samples": tuple(s.model_copy(update={"text": None}) for s in r.samples)})
        for r in RunDir(run_dir).read_rows()
    ]  # rows as runs wrote them before texts were kept
    RunDir(old).append(rows)
    with pytest.raises(ValueError, match="no saved text"):
        regrade_run(old, "strict")


def test_audit_agrees_for_lenient_and_counts_strict_misses(run_dir, capsys):
    audit = audit_run(run_dir)
    assert audit["completions"] == len(PAIRS) * 5 and audit["disagreements"] == 0
    strict_dir = run_dir / "regrade-strict"
    if not strict_dir.exists():
        regrade_run(run_dir, "strict")
    assert main(["report", str(strict_dir), "--audit"]) == 0
    out = capsys.readouterr().out
    strict = json.loads((strict_dir / "audit.json").read_text())
    # math-verify reads the unmarked sentence; strict mode does not: one miss per problem (majority rows)
    assert strict["disagreements"] == len(PAIRS) and strict["ours_wrong_mathverify_correct"] == len(PAIRS)
    assert strict["examples"] and strict["examples"][0]["mathverify"]["correct"] is True
    assert "disagree" in out
    html = (strict_dir / "report.html").read_text()
    assert "Grader audit" in html and "in total" in html


def test_manifest_recorded(run_dir):
    records = read_manifest(run_dir)
    assert len(records) == 1 and (run_dir / MANIFEST_FILE).is_file()
    m = records[0]
    assert m["engine"]["name"] == "fake" and m["grader"] == "lenient" and m["seeds"] == [0]
    assert m["benchmark"] == {"name": "gsm8k", "split": "test", "limit": None}
    assert {"torch", "vllm", "transformers", "trl", "math-verify"} <= set(m["packages"])
    assert m["packages"]["math-verify"] and m["packages"]["torch"]
    assert m["reasoner"]["git"] is None or len(m["reasoner"]["git"]["sha"]) == 40
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["manifest"]["invocations"] == 1 and summary["manifest"]["changed"] == []
    html = (run_dir / "report.html").read_text()
    assert "grader lenient" in html and "engine fake" in html
