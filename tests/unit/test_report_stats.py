"""Statistics in run summaries (evals.summary_stats via evals.report): per-cell CIs, paired comparisons with a
baseline, the CSV columns, the HTML table, plot whiskers and `reasoner report --baseline`, on a hand-written
run directory (config.yaml + samples.jsonl)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from evals.report import summarize, write_report, write_summary
from evals.rows import Row
from evals.runner import RunDir
from evals.stats import bootstrap_ci
from evals.summary_stats import COMPARISON_KEYS, resolve_baseline
from evals.sweep import EvalConfig

GREEDY, MAJ, SHORT = "greedy", "majority:k=2", "short-m@k:k=2,m=1,mode=simulated"
PROBLEMS = [f"p{i}" for i in range(10)]


def row(strategy: str, budget: int, i: int, seed: int, correct: bool, generated: int, samples: list) -> Row:
    return Row.from_json({
        "answer": "1",
        "gold": "1",
        "strategy": strategy,
        "budget": budget,
        "problem_id": PROBLEMS[i],
        "seed": seed,
        "correct": correct,
        "tokens": {
            "generated": generated,
            "thinking": 0,
            "answer": generated,
            "sequential": 4,
            "prefilled": 9,
        },
        "samples": [{"tokens": 4, "finish": "stop", "answer": a, "correct": c} for a, c in samples],
        "spent": generated,
        "wall_s": 0.1,
        "measured_s": 0.05,
    })  # fmt: skip


def rows() -> list[Row]:
    """10 problems x 2 seeds. majority: problems 0-5 right (its 2 samples: one right, one wrong), 40 tokens.
    greedy@8: problems 0-2 right, 10 tokens; greedy@16: also 3-4 on seed 0, 20 tokens. short-m@k (budget 8
    only): right exactly where majority is, 30 tokens."""
    out = []
    for i in range(10):
        for seed in (0, 1):
            out.append(row(GREEDY, 8, i, seed, i < 3, 10, [("1", i < 3)]))
            out.append(row(GREEDY, 16, i, seed, i < 3 or (seed == 0 and i < 5), 20, [("1", i < 3)]))
            for budget in (8, 16):
                out.append(row(MAJ, budget, i, seed, i < 6, 40, [("1", i < 6), ("2", False)]))
            out.append(row(SHORT, 8, i, seed, i < 6, 30, [("1", i < 6)]))
    return out


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = RunDir(tmp_path / "run")
    run.prepare(
        EvalConfig(model="fake", limit=10, budgets=[8, 16], seeds=[0, 1], strategies=[GREEDY, MAJ, SHORT])
    )
    run.append(rows())
    return run.path


def by(items: list[dict], strategy: str, budget: int) -> dict:
    return next(c for c in items if c["strategy"] == strategy and c["budget"] == budget)


def test_cells_get_bootstrap_cis_of_their_per_problem_values():
    s = summarize(rows())
    cells = s.to_json()["cells"]
    greedy16 = by(cells, GREEDY, 16)
    per_problem = [1, 1, 1, 0.5, 0.5, 0, 0, 0, 0, 0]  # problems 3-4 right on one seed of two
    assert greedy16["accuracy"] == pytest.approx(0.4)
    assert greedy16["accuracy_ci"] == list(bootstrap_ci(per_problem, n_boot=2000, seed=0, level=0.95))
    maj = by(cells, MAJ, 8)
    # 4 pooled samples per problem (2 per row x 2 seeds), 2 right on problems 0-5
    assert maj["pass@1_ci"] == list(bootstrap_ci([0.5] * 6 + [0.0] * 4))
    assert maj["pass@2_ci"] == pytest.approx(bootstrap_ci([5 / 6] * 6 + [0.0] * 4))  # 1 - C(2,2)/C(4,2)
    keys = list(maj)
    for name in ("accuracy", "pass@1", "pass@2", "pass@4"):
        assert keys[keys.index(name) + 1] == f"{name}_ci"  # each interval follows its estimate
        lo, hi = maj[f"{name}_ci"]
        assert lo <= maj[name] <= hi
    assert not any(k.startswith("pass@") for k in by(cells, SHORT, 8))  # not independent samples
    assert s.statistics == {
        "method": "percentile bootstrap over problems",
        "n_boot": 2000,
        "seed": 0,
        "level": 0.95,
        "baseline": MAJ,
    }


def test_comparisons_against_the_default_baseline():
    s = summarize(rows(), EvalConfig(strategies=[GREEDY, MAJ, SHORT]).to_dict())
    comps = s.comparisons
    assert [(c["strategy"], c["budget"]) for c in comps] == [(GREEDY, 8), (GREEDY, 16), (SHORT, 8)]
    assert all(list(c) == list(COMPARISON_KEYS) and c["baseline"] == MAJ for c in comps)
    g8, g16, short = comps
    # greedy@8 - majority@8: problems 3-5 differ by -1 -> three sign flips, p = 2/8
    assert g8["problems"] == 10 and g8["diff"] == pytest.approx(-0.3) and g8["p_value"] == pytest.approx(0.25)
    assert g8["diff_ci"] == list(bootstrap_ci([0, 0, 0, -1, -1, -1, 0, 0, 0, 0]))
    assert g8["token_ratio"] == 0.25 and g8["token_saving"] == 0.75 and g8["token_saving_ci"] == [0.75, 0.75]
    # greedy@16: differences -0.5, -0.5, -1 -> |sum| 2 reached only by the two uniform sign patterns
    assert g16["diff"] == pytest.approx(-0.2) and g16["p_value"] == pytest.approx(0.25)
    assert g16["token_ratio"] == 0.5
    # short-m@k is right exactly where majority is: no difference, p = 1; 30 vs 40 tokens on every problem
    assert short["diff"] == 0 and short["diff_ci"] == [0, 0] and short["p_value"] == 1
    assert short["token_ratio"] == 0.75 and short["token_ratio_ci"] == [0.75, 0.75]


def test_explicit_baseline_and_the_default_rule():
    s = summarize(rows(), baseline=GREEDY)
    assert s.statistics["baseline"] == GREEDY
    assert [(c["strategy"], c["budget"]) for c in s.comparisons] == [(MAJ, 8), (MAJ, 16), (SHORT, 8)]
    assert s.comparisons[0]["diff"] == pytest.approx(0.3) and s.comparisons[0]["token_ratio"] == 4
    with pytest.raises(
        ValueError, match=f"unknown baseline 'nope'; the run's strategies are: {GREEDY}, {MAJ}"
    ):
        summarize(rows(), baseline="nope")
    assert resolve_baseline(["greedy", "short"]) == "greedy"
    assert resolve_baseline(["greedy", "majority:k=4", "majority:k=8"]) == "majority:k=4"
    assert resolve_baseline([]) is None
    one = summarize([r for r in rows() if r.strategy == GREEDY])
    assert one.comparisons == [] and one.statistics["baseline"] == GREEDY


def test_write_summary_csv_columns_and_reproducibility(run_dir):
    summary = write_summary(run_dir)
    assert json.loads((run_dir / "summary.json").read_text()) == summary.to_json()
    with (run_dir / "summary.csv").open() as f:
        table = list(csv.DictReader(f))
    head = list(table[0])
    assert head[:7] == ["strategy", "budget", "problems", "rows", "accuracy", "accuracy_lo", "accuracy_hi"]
    assert head[head.index("pass@1") + 1 : head.index("pass@1") + 3] == ["pass@1_lo", "pass@1_hi"]
    assert not any(k.endswith("_ci") for k in head)
    for line, cell in zip(table, summary.cells, strict=True):
        assert (float(line["accuracy_lo"]), float(line["accuracy_hi"])) == cell.accuracy_ci
    with (run_dir / "comparisons.csv").open() as f:
        comps = list(csv.DictReader(f))
    assert list(comps[0]) == [
        "strategy",
        "baseline",
        "budget",
        "problems",
        "diff",
        "diff_lo",
        "diff_hi",
        "p_value",
        "token_ratio",
        "token_ratio_lo",
        "token_ratio_hi",
        "token_saving",
        "token_saving_lo",
        "token_saving_hi",
    ]
    assert [(c["strategy"], c["budget"], float(c["p_value"])) for c in comps] == [
        (GREEDY, "8", 0.25),
        (GREEDY, "16", 0.25),
        (SHORT, "8", 1.0),
    ]
    assert write_summary(run_dir) == summary  # seeded: the same intervals every time
    assert write_summary(run_dir, baseline=SHORT).statistics["baseline"] == SHORT


def test_report_html_cli_and_plot_whiskers(run_dir, capsys):
    from reasoner.cli import main

    page = write_report(run_dir).read_text()
    assert "Paired comparisons (strategy - baseline majority:k=2)" in page
    g8 = by(json.loads((run_dir / "summary.json").read_text())["cells"], GREEDY, 8)
    lo, hi = g8["accuracy_ci"]
    assert f"<td>0.300 [{lo:.3f}, {hi:.3f}]</td>" in page
    assert "<td>-0.300 [" in page and "<td>+75% [+75%, +75%]</td>" in page and "sign-flip" in page
    assert main(["report", str(run_dir), "--baseline", GREEDY]) == 0
    out = capsys.readouterr().out
    assert "paired comparisons: strategy - baseline (greedy)" in out and "comparisons.csv" in out
    assert json.loads((run_dir / "summary.json").read_text())["statistics"]["baseline"] == GREEDY
    assert main(["report", str(run_dir), "--baseline", "nope"]) == 2
    assert "reasoner report: error: unknown baseline 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "--baseline LABEL" in capsys.readouterr().out


def test_plot_whiskers_follow_accuracy_ci():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evals.plots import _whiskers

    fig, ax = plt.subplots()
    cells = [
        SimpleNamespace(accuracy=0.5, accuracy_ci=(0.3, 0.6)),
        SimpleNamespace(accuracy=0.7, accuracy_ci=(None, None)),  # skipped (an undefined interval)
        SimpleNamespace(accuracy=0.9, accuracy_ci=(0.8, 1.0)),
    ]
    _whiskers(ax, [10, 20, 30], cells, "C0")
    (bars,) = ax.containers
    segments = bars.lines[2][0].get_segments()
    ends = [v for s in segments for v in (s[0][0], s[0][1], s[1][1])]  # x, bottom, top of each bar
    assert ends == pytest.approx([10, 0.3, 0.6, 30, 0.8, 1.0])
    plt.close(fig)
