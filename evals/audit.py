r"""Auditing a finished run's grades against math-verify itself (``reasoner report --audit``).

**Audit** (``audit_run``): every completion is graded by math-verify directly, ``verify(parse(gold),
parse(response))`` on the whole response with its default extraction (``reasoner.verify.mathverify_many``,
in the verifier pool with hard timeouts), and compared with the verdict stored in the row. The result
(disagreement rate, counts in each direction, examples) goes to ``audit.json`` and into the report.
The report (``evals.report``) shows the audit a run holds; re-grading is ``evals.regrade``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from evals.rows import CONFIG_FILE, SAMPLES_FILE, Row, SampleRecord, read_rows

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.json"
EXAMPLES = 10
"""Disagreements an audit keeps as examples."""


def _require_texts(rows: list[Row], where: Path) -> None:
    missing = sum(1 for r in rows for s in r.samples if s.text is None)
    if missing:
        raise ValueError(
            f"{where}: {missing} completion(s) have no saved text (a run made before responses were kept); "
            "rerun it with `reasoner eval --fresh` to re-grade or audit it"
        )


def load_graded_rows(run_dir: str | Path) -> tuple[Path, list[Row]]:
    """The run directory and its rows; a ValueError when it has no rows or a completion without its text."""
    path = Path(run_dir)
    rows = read_rows(path / SAMPLES_FILE)
    if not rows:
        raise ValueError(f"{path / SAMPLES_FILE}: no rows (is {path} a run directory of `reasoner eval`?)")
    _require_texts(rows, path / SAMPLES_FILE)
    return path, rows


def audit_rows(rows: list[Row]) -> dict[str, Any]:
    """Stored completion verdicts vs math-verify's own on the whole response (module docstring)."""
    from reasoner.verify import mathverify_many

    samples = [(r, s) for r in rows for s in r.samples]
    direct = mathverify_many([r.gold for r, _ in samples], [s.text or "" for _, s in samples])
    by_cell: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    ours_only = theirs_only = 0
    examples: list[dict[str, Any]] = []
    for (row, s), v in zip(samples, direct, strict=True):
        cell = by_cell[row.cell]
        cell[1] += 1
        if bool(s.correct) == bool(v.correct):
            continue
        cell[0] += 1
        ours_only += bool(s.correct)
        theirs_only += bool(v.correct)
        if len(examples) < EXAMPLES:
            examples.append(_example(row, s, v))
    n = len(samples)
    return {
        "completions": n,
        "disagreements": ours_only + theirs_only,
        "rate": (ours_only + theirs_only) / n if n else 0.0,
        "ours_correct_mathverify_wrong": ours_only,
        "ours_wrong_mathverify_correct": theirs_only,
        "grader": rows[0].grader or "unknown",
        "by_cell": {k: {"disagreements": d, "completions": t} for k, (d, t) in by_cell.items()},
        "examples": examples,
    }


def _example(row: Row, sample: SampleRecord, direct: Any) -> dict[str, Any]:
    text = sample.text or ""
    return {
        "problem_id": row.problem_id,
        "strategy": row.strategy,
        "budget": row.budget,
        "seed": row.seed,
        "gold": row.gold,
        "ours": {"answer": sample.answer, "correct": sample.correct, "status": sample.status},
        "mathverify": {"answer": direct.extracted, "correct": direct.correct, "status": direct.status},
        "response_tail": text[-300:],
    }


def audit_run(run_dir: str | Path) -> dict[str, Any]:
    """Audit a run and write ``RUN_DIR/audit.json``; returns the audit."""
    path, rows = load_graded_rows(run_dir)
    if not (path / CONFIG_FILE).is_file():
        raise ValueError(f"{path}: no {CONFIG_FILE} (not a run directory of `reasoner eval`)")
    audit = audit_rows(rows)
    (path / AUDIT_FILE).write_text(json.dumps(audit, indent=2) + "\n", encoding="utf-8")
    log.info(
        "audit: %d of %d completions disagree with math-verify", audit["disagreements"], audit["completions"]
    )
    return audit


def read_audit(run_dir: str | Path) -> dict[str, Any] | None:
    """``RUN_DIR/audit.json`` if an audit was run, else None."""
    path = Path(run_dir) / AUDIT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def audit_lines(audit: dict[str, Any]) -> list[str]:
    """The audit as console lines: the rate, both directions, then one line per example."""
    lines = [
        f"audit vs math-verify (whole response, its default extraction): {audit['disagreements']} of "
        f"{audit['completions']} completions disagree ({100 * audit['rate']:.2f}%); ours correct and "
        f"math-verify wrong: {audit['ours_correct_mathverify_wrong']}, the reverse: "
        f"{audit['ours_wrong_mathverify_correct']} (grader {audit['grader']})"
    ]
    for ex in audit["examples"]:
        tail = " ".join(ex["response_tail"][-120:].split())
        lines.append(
            f"  {ex['strategy']}@{ex['budget']} {ex['problem_id']} seed {ex['seed']}: gold {ex['gold']!r}; ours "
            f"{ex['ours']['answer']!r} ({ex['ours']['correct']}), math-verify {ex['mathverify']['answer']!r} "
            f"({ex['mathverify']['correct']}); ...{tail}"
        )
    return lines


def audit_html(audit: dict[str, Any] | None) -> str:
    """The report's audit block (empty when no audit was run)."""
    import html

    if not audit:
        return ""
    head, *examples = audit_lines(audit)
    items = "".join(f"<li><code>{html.escape(e.strip())}</code></li>" for e in examples)
    return f"<h2>Grader audit</h2><p>{html.escape(head)}</p>" + (f"<ul>{items}</ul>" if items else "")
