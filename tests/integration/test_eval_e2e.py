"""`reasoner eval` and `reasoner report` end to end on the tiny model: files, summary fields, the HTML report,
the plots, the help text and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasoner.cli import main

REASONER = [sys.executable, "-m", "reasoner.cli"]
PNG = b"\x89PNG\r\n\x1a\n"


def reasoner(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a shared 2-core box: no thread oversubscription
    return subprocess.run([*REASONER, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "run"
    proc = reasoner(
        "eval",
        "--model",
        "tiny-random-qwen2",
        "--engine",
        "hf",
        "--limit",
        "4",
        "--budgets",
        "8",
        "16",
        "--strategies",
        "greedy",
        "majority:k=2",
        "short-m@k:k=2,mode=simulated",
        "budget-forcing:answer_tokens=4",
        "--batch-size",
        "4",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep cost:" in proc.stdout and "majority:k=2" in proc.stdout
    assert "paired comparisons: strategy - baseline (majority:k=2)" in proc.stdout
    return out


def test_eval_writes_summary_report_and_plots(run_dir):
    for name in ("config.yaml", "samples.jsonl", "summary.json", "summary.csv", "report.html"):
        assert (run_dir / name).is_file(), name
    for name in ("pareto.png", "accuracy_vs_budget.png", "lengths.png"):
        assert (run_dir / name).read_bytes().startswith(PNG), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rows"] == 4 * 2 * 4
    labels = ["greedy", "majority:k=2", "short-m@k:k=2,mode=simulated", "budget-forcing:answer_tokens=4"]
    assert [c["strategy"] for c in summary["cells"]] == [s for s in labels for _ in (8, 16)]
    assert list(summary["strategies"]) == labels
    for cell in summary["cells"]:
        assert {
            "accuracy",
            "generated",
            "thinking",
            "answer",
            "sequential",
            "tokens_per_correct",
            "acc_per_1k",
            "wall_s",
            "pareto",
            "truncated",
        } <= set(cell)
        assert 0 <= cell["accuracy"] <= 1
        lo, hi = cell["accuracy_ci"]
        assert 0 <= lo <= cell["accuracy"] <= hi <= 1
    majority = next(c for c in summary["cells"] if c["strategy"] == "majority:k=2")
    assert {"pass@1", "pass@2", "maj@2", "sample_acc"} <= set(majority)
    assert any(c["pareto"] for c in summary["cells"]) and summary["pareto"]
    assert 0 < summary["cost"]["ratio"] < 1
    bf = [c for c in summary["cells"] if c["strategy"].startswith("budget-forcing")]
    assert all(c["thinking"] <= c["budget"] for c in bf)
    csv_head = (run_dir / "summary.csv").read_text().splitlines()[0]
    assert csv_head.startswith("strategy,budget,problems,rows,accuracy") and "auc_norm" in csv_head
    assert "accuracy_lo,accuracy_hi" in csv_head and "pass@1_lo" in csv_head
    # paired comparisons with the default baseline (the first majority strategy), at each budget
    assert summary["statistics"]["baseline"] == "majority:k=2"
    others = [s for s in labels if s != "majority:k=2"]
    assert [(c["strategy"], c["budget"]) for c in summary["comparisons"]] == [
        (s, b) for s in others for b in (8, 16)
    ]
    assert all(c["problems"] == 4 and 0 < c["p_value"] <= 1 for c in summary["comparisons"])
    assert len((run_dir / "comparisons.csv").read_text().splitlines()) == 1 + 6
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page and "tokens_per_correct" in page
    assert "Paired comparisons (strategy - baseline majority:k=2)" in page


def test_report_command_rewrites_outputs(run_dir, capsys):
    (run_dir / "report.html").unlink()
    (run_dir / "lengths.png").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file() and (run_dir / "lengths.png").is_file()
    assert "wrote" in capsys.readouterr().out


def test_eval_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--engine",
        "--dtype",
        "--benchmark",
        "--split",
        "--data-dir",
        "--limit",
        "--strategies",
        "--budgets",
        "--seeds",
        "-n N, --k N",
        "--temperature",
        "--top-p",
        "--batch-size",
        "--config",
        "--out",
        "--resume",
        "--fresh",
        "--no-report",
        "REASONER_DATA_DIR",
        "short-m@k: k=8, m=1, mode=live",
    ):
        assert flag in text, flag


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategies", "majority:kk=2"], "unknown parameter 'kk'"),
        (["--budgets", "0"], "budgets.0: Input should be greater than or equal to 1 (got '0')"),
        (["-n", "0"], "n: Input should be greater than or equal to 1 (got '0')"),
        (["--limit", "0"], "limit: Input should be greater than or equal to 1 (got '0')"),
        (["--resume", "--out", "/nonexistent/run"], "nothing to resume in /nonexistent/run"),
    ],
)
def test_eval_errors_are_one_line(args, message, capsys):
    assert main(["eval", *args]) == 2
    err = capsys.readouterr().err
    assert "reasoner eval: error: " in err and message in err


def test_eval_config_file_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text("model: tiny-random-qwen2\nbudgetz: [8]\n")
    assert main(["eval", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "unknown config key 'budgetz'" in capsys.readouterr().err
