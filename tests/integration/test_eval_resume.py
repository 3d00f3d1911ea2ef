"""`reasoner eval` killed mid-run (SIGKILL) and rerun: no duplicate rows, the same summary as an uninterrupted
run of the same command into another directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from evals.report import NOT_REPRODUCIBLE
from evals.rows import Row

GRID = (
    "--model tiny-random-qwen2 --engine hf --dtype float32 --limit 4 --budgets 12 24 --seeds 0 1 "
    "--batch-size 1 --strategies greedy majority:k=2 --no-report"
).split()
TOTAL_ROWS = 2 * 2 * 4 * 2  # strategies x budgets x problems x seeds
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # a shared 2-core box: no thread oversubscription


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "reasoner.cli", "eval", *GRID, "--out", str(out)]


def run(out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(out), capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def rows(out: Path) -> list[dict]:
    lines = (out / "samples.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def reproducible(summary: dict) -> dict:
    summary.pop("manifest")  # a record of the invocations (times, argv), not a result
    for cell in summary["cells"]:
        for key in NOT_REPRODUCIBLE:
            cell.pop(key)
    return summary


def row_key(row: dict) -> tuple:
    """A stored row's key (``evals.rows.Row.key``: strategy, budget, problem id, seed)."""
    return tuple(row[k] for k in ("strategy", "budget", "problem_id", "seed"))


def comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in NOT_REPRODUCIBLE}


def kill_after_first_rows(out: Path) -> int:
    """Start the command, SIGKILL it once samples.jsonl has rows (before it is complete); rows at that time."""
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if samples.is_file() and samples.stat().st_size > 0:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"the run ended before it could be killed (rc {proc.returncode})"
    )
    return len(samples.read_text().splitlines())


def test_sigkill_then_rerun_resumes(tmp_path):
    resumed, reference = tmp_path / "resumed", tmp_path / "reference"
    done_at_kill = kill_after_first_rows(resumed)
    assert 0 < done_at_kill < TOTAL_ROWS
    with (resumed / "samples.jsonl").open("a") as f:
        f.write('{"problem_id": "arith-test-s0-L1-0", "strat')  # as if the kill had torn a write
    second = run(resumed)
    assert "resuming" in second.stderr
    units = second.stdout.split("this invocation: ")[1].split(" work units")[0]
    ran, total = map(int, units.split("/"))
    assert 0 < ran < total == 8  # done units were not recomputed

    got = rows(resumed)  # every line parses: the torn tail was cut before appending
    assert [Row.from_json(r).key for r in got] == [row_key(r) for r in got]  # and reads as a Row
    keys = [row_key(r) for r in got]
    assert len(keys) == len(set(keys)) == TOTAL_ROWS

    run(reference)
    want = rows(reference)
    assert sorted(map(comparable, got), key=row_key) == sorted(map(comparable, want), key=row_key)
    summary = json.loads((resumed / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert (summary["manifest"]["invocations"], expected["manifest"]["invocations"]) == (2, 1)
    assert summary["manifest"]["changed"] == []  # same versions, engine and config in both invocations
    assert reproducible(summary) == reproducible(expected)
    assert summary["cost"]["spent_tokens"] < summary["cost"]["separate_tokens"]
