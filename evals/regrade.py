r"""Re-grading a finished run without generating (``reasoner regrade``). Auditing its grades against
math-verify itself (``reasoner report --audit``) is ``evals.audit``.

Both read the completion texts that ``samples.jsonl`` keeps (runs made before texts were kept cannot be
re-graded: that is an error naming the run).

**Regrade** (``regrade_run``): every completion is graded again with the chosen extraction policy
(``reasoner.verify``: ``lenient`` or ``strict``). A row's final answer is re-derived where it is a function of
its completions' answers alone (``evals.grading.REVOTE``): greedy and sample take their one completion's answer,
majority votes again (``reasoner.strategies.voting.vote``, the strategy's own equivalence); ``reasoner eval
--grader strict`` derives them the same way, so its rows equal a strict regrade of a lenient run. Other strategies decided their answer
while decoding (short-m@k from the first finishers, budget forcing from a forced continuation, weighted
votes): their answer is kept and graded again. The re-graded run is written to its own directory (default
``RUN_DIR/regrade-<mode>``) with a full summary and report, so both can be compared side by side.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evals.audit import load_graded_rows
from evals.manifest import MANIFEST_FILE
from evals.rows import Row
from evals.runner import RunDir

if TYPE_CHECKING:
    from reasoner.verify.extract import GraderMode

log = logging.getLogger(__name__)


def regrade_rows(rows: Sequence[Row], mode: GraderMode) -> tuple[list[Row], dict[str, int]]:
    """Rows graded again with ``mode`` (module docstring) and counts of what changed."""
    from evals.grading import grade_finals, grade_samples

    new = grade_finals(grade_samples(rows, mode), mode, rederive=True)
    changed: Counter[str] = Counter()
    for old, row in zip(rows, new, strict=True):
        for a, b in zip(old.samples, row.samples, strict=True):
            changed["samples"] += a.correct != b.correct
            changed["extractions"] += a.answer != b.answer
        changed["finals"] += old.correct != row.correct
    return new, {"rows": len(new), "completions": sum(len(r.samples) for r in new), **changed}


def regrade_run(
    run_dir: str | Path, mode: GraderMode, out: str | Path | None = None
) -> tuple[Path, dict[str, int]]:
    """Write the re-graded run (config with ``grader: mode``, manifest, rows, summary, report) to ``out``
    (default ``RUN_DIR/regrade-<mode>``); returns the directory and the change counts."""
    from evals.report import write_report

    path, rows = load_graded_rows(run_dir)
    run = RunDir(path)
    target = RunDir(Path(out) if out else run.path / f"regrade-{mode}")
    if target.path.resolve() == run.path.resolve():
        raise ValueError(f"--out must differ from the run directory {run.path} (the original rows are kept)")
    new, changed = regrade_rows(rows, mode)
    target.reset()
    target.path.mkdir(parents=True, exist_ok=True)
    config = run.load_config()
    config.grader = mode
    target.write_config(config)
    if (run.path / MANIFEST_FILE).is_file():
        shutil.copyfile(run.path / MANIFEST_FILE, target.path / MANIFEST_FILE)
    target.append(new)
    (target.path / "regraded_from.json").write_text(
        json.dumps({"run": str(run.path.resolve()), "mode": mode, "changed": changed}, indent=2) + "\n",
        encoding="utf-8",
    )
    write_report(target.path)
    return target.path, changed
