"""Summaries and the HTML report of a run (plots: ``evals.plots``), computed from ``samples.jsonl`` alone
(DESIGN section 7).

Per (strategy, budget) cell, over its rows (one per problem and seed):

- ``accuracy``: avg@n of the strategy's final answer, n = seeds (problem mean first, then across problems);
- ``sample_acc``, ``pass@k``, ``maj@k``: for strategies whose completions are independent full samples
  (greedy, sample, majority, best-of-n): per-sample accuracy, unbiased pass@k over each problem's samples
  pooled across seeds (k = 1, 2, 4, ... up to the pool), plurality vote over each row's k samples;
- mean ``thinking`` / ``answer`` / ``generated`` / ``sequential`` tokens per problem (the strategy's
  TokenCount), ``truncated`` (fraction of completions that hit the budget), ``tokens_per_correct``,
  ``acc_per_1k`` (correct answers per 1000 generated tokens), ``wall_s`` (mean per-problem latency as the
  strategy measured it; replayed budgets scale the recorded time) and ``measured_s`` (compute this run spent).

Per strategy: area under accuracy vs budget (trapezoid; ``auc_norm`` divides by the budget range, i.e. the
budget-averaged accuracy). Across cells: the Pareto front of (mean generated tokens, accuracy). And the sweep
cost: tokens generated (``spent``) vs what separate runs per budget would generate (sum of ``generated``).
Statistics (``evals.summary_stats``): ``accuracy_ci`` / ``pass@k_ci`` per cell (percentile bootstrap over
problems) and ``comparisons``: each strategy vs a baseline at each shared budget (paired accuracy difference
with CI and sign-flip p-value, token saving with CI).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals import metrics, summary_stats
from evals.audit import audit_html, read_audit
from evals.cells import SUMMARY_FILE, Cell, Summary
from evals.manifest import manifest_html, read_manifest, summarize_manifest
from evals.metrics import PER_SAMPLE, base_name
from evals.rows import SAMPLES_FILE, Row, read_rows, read_run_config

log = logging.getLogger(__name__)

TOKEN_FIELDS = ("thinking", "answer", "generated", "sequential")
PLOTS = ("pareto.png", "accuracy_vs_budget.png", "lengths.png")
NOT_REPRODUCIBLE = ("wall_s", "measured_s")
"""Summary fields that measure time and differ between runs; everything else is determined by the rows."""


def _by_problem(rows: Sequence[Row], value: Callable[[Row], list[Any]]) -> list[list[Any]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[r.problem_id].extend(value(r))
    return [groups[k] for k in sorted(groups)]


def _sample_metrics(rows: Sequence[Row]) -> dict[str, Any]:
    """``sample_acc``, ``pass_ks`` (the k of pass@k) and ``maj`` ((k, maj@k) or None); {} without samples."""
    pooled = _by_problem(rows, lambda r: [s.correct for s in r.samples])
    if not all(pooled):
        return {}
    ks = [1 << i for i in range(min(len(g) for g in pooled).bit_length())]
    per_row = min(len(r.samples) for r in rows)
    maj = None
    if per_row > 1:
        maj = (per_row, metrics.accuracy(_by_problem(rows, lambda r: [_row_maj(r, per_row)])))
    return {"sample_acc": metrics.accuracy(pooled), "pass_ks": ks, "maj": maj}


def _row_maj(row: Row, k: int) -> bool:
    samples = row.samples[:k]
    return metrics.maj_at_k([s.answer for s in samples], [bool(s.correct) for s in samples], k)


def cell_summary(strategy: str, budget: int, rows: Sequence[Row]) -> Cell:
    """The metrics of one (strategy, budget) cell (module docstring), with its intervals."""
    correct = [bool(r.correct) for r in rows]
    generated = [r.tokens.generated for r in rows]
    samples = [s for r in rows for s in r.samples]
    sample = _sample_metrics(rows) if base_name(strategy) in PER_SAMPLE else {}
    pass_ks = sample.get("pass_ks", [])
    acc_ci, pass_cis = summary_stats.cell_cis(rows, pass_ks)
    pooled = _by_problem(rows, lambda r: [s.correct for s in r.samples])
    return Cell(
        strategy=strategy,
        budget=budget,
        problems=len({r.problem_id for r in rows}),
        rows=len(rows),
        accuracy=metrics.accuracy(_by_problem(rows, lambda r: [bool(r.correct)])),
        accuracy_ci=acc_ci,
        sample_acc=sample.get("sample_acc"),
        pass_at=tuple(
            (k, metrics.mean_pass_at_k(pooled, k), ci) for k, ci in zip(pass_ks, pass_cis, strict=True)
        ),
        maj=sample.get("maj"),
        **{name: sum(getattr(r.tokens, name) for r in rows) / len(rows) for name in TOKEN_FIELDS},
        truncated=sum(s.finish == "length" for s in samples) / len(samples) if samples else 0.0,
        tokens_per_correct=metrics.tokens_per_correct(correct, generated),
        acc_per_1k=metrics.accuracy_per_1k_tokens(correct, generated) if sum(generated) else 0.0,
        spent=sum(r.spent for r in rows),
        wall_s=sum(r.wall_s for r in rows) / len(rows),
        measured_s=sum(r.measured_s for r in rows),
        pareto=False,  # set by summarize, across the cells
    )


def summarize(
    rows: Sequence[Row], config: dict[str, Any] | None = None, *, baseline: str | None = None
) -> Summary:
    """The whole summary: cells (with a ``pareto`` flag and CIs), per-strategy AUC, the front, the sweep
    cost, and paired comparisons with ``baseline`` (default rule: ``summary_stats.resolve_baseline``)."""
    groups: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r.strategy, r.budget)].append(r)
    order = list(dict.fromkeys(r.strategy for r in rows))
    if config:
        order = [s for s in config.get("strategies", []) if any(k[0] == s for k in groups)] or order
    baseline = summary_stats.resolve_baseline(order, baseline)
    cells = [
        cell_summary(s, b, groups[(s, b)]) for s in order for b in sorted(b for t, b in groups if t == s)
    ]
    front = metrics.pareto_front([(c.generated, c.accuracy) for c in cells]) if cells else []
    cells = [c.model_copy(update={"pareto": i in front}) for i, c in enumerate(cells)]
    strategies = {}
    for s in order:
        mine = [c for c in cells if c.strategy == s]
        budgets, accs = [c.budget for c in mine], [c.accuracy for c in mine]
        strategies[s] = {
            "auc": metrics.auc_accuracy_vs_budget(budgets, accs),
            "auc_norm": metrics.auc_accuracy_vs_budget(budgets, accs, normalize=True),
        }
    spent = sum(r.spent for r in rows)
    separate = sum(r.tokens.generated for r in rows)
    return Summary(
        config=config or {},
        rows=len(rows),
        cells=tuple(cells),
        strategies=strategies,
        pareto=[
            {
                "strategy": cells[i].strategy,
                "budget": cells[i].budget,
                "generated": cells[i].generated,
                "accuracy": cells[i].accuracy,
            }
            for i in front
        ],  # fmt: skip
        cost={
            "spent_tokens": spent,
            "separate_tokens": separate,
            "ratio": spent / separate if separate else None,
        },
        comparisons=summary_stats.comparisons(groups, order, baseline),
        statistics=summary_stats.statistics_info(baseline),
    )


def write_summary(run_dir: str | Path, *, baseline: str | None = None) -> Summary:
    """Compute the summary from ``samples.jsonl``; write ``summary.json``, ``summary.csv`` (CIs as ``_lo``/
    ``_hi`` columns) and ``comparisons.csv``. ``baseline``: the strategy label to compare the others with.
    Returns the summary as read back from ``summary.json`` (non-finite values as there)."""
    path = Path(run_dir)
    rows = read_rows(path / SAMPLES_FILE)
    if not rows:
        raise ValueError(f"{path / SAMPLES_FILE}: no rows to summarise")
    summary = summarize(rows, read_run_config(path), baseline=baseline).model_copy(
        update={"manifest": summarize_manifest(read_manifest(path)), "audit": read_audit(path)}
    )
    data = summary.to_json()
    text = json.dumps(data, indent=2) + "\n"
    (path / SUMMARY_FILE).write_text(text, encoding="utf-8")
    cells = [summary_stats.flatten_cis(c) for c in data["cells"]]
    columns = list(dict.fromkeys(k for c in cells for k in c))
    columns += ["auc", "auc_norm"]
    with (path / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for c in cells:
            writer.writerow({**c, **data["strategies"][c["strategy"]]})
    summary_stats.write_comparisons_csv(path / "comparisons.csv", data["comparisons"])
    return Summary.from_json(text, str(path / SUMMARY_FILE))


# ---------------------------------------------------------------- HTML


def _fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if column in TOKEN_FIELDS or column == "tokens_per_correct":
            return f"{value:.1f}"
        return f"{value:.2f}" if column.endswith("_s") or column == "acc_per_1k" else f"{value:.3f}"
    return str(value)


def table_columns(cells: Sequence[dict]) -> list[str]:
    """Display columns: identity, accuracies, pass/maj, tokens, efficiency, time (those present)."""
    extra = sorted(
        {k for c in cells for k in c if k.startswith(("pass@", "maj@")) and not k.endswith("_ci")},
        key=lambda k: (k.split("@")[0] != "pass", int(k.split("@")[1])),
    )
    cols = [
        "strategy",
        "budget",
        "accuracy",
        "sample_acc",
        *extra,
        *TOKEN_FIELDS,
        "truncated",
        "tokens_per_correct",
        "acc_per_1k",
        "wall_s",
        "pareto",
    ]
    return [c for c in cols if any(c in cell for cell in cells)]


def _html_table(rows: Sequence[dict], cols: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c), c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_GLOSSARY = (
    "accuracy: final answers correct, averaged over seeds then problems (avg@n). sample_acc, pass@k "
    "(unbiased, samples pooled over seeds), maj@k: strategies with independent full samples. Token columns: "
    "mean per problem (generated = all requests; sequential = the longest chain, a latency proxy). "
    "truncated: fraction of completions that hit the budget. wall_s: mean per-problem latency as the strategy "
    "measured it (budgets replayed from a larger one scale the recorded time). pareto: on the front of "
    "(generated, accuracy). accuracy [lo, hi]: 95% percentile-bootstrap interval over problems (pass@k "
    "intervals are in summary.json/.csv)."
)
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
    "font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}td{white-space:nowrap}img{max-width:100%;margin:1em 0}"
)


def _comparisons_html(summary: Summary) -> str:
    if not summary.comparisons:
        return ""
    baseline = html.escape(str(summary.statistics["baseline"]))
    return (
        f"<h2>Paired comparisons (strategy - baseline {baseline})</h2>"
        + _html_table(summary_stats.comparison_rows(summary), summary_stats.COMPARISON_COLUMNS)
        + f"<p><small>{html.escape(summary_stats.how_to_read(summary))}</small></p>"
    )


def display_cells(summary: Summary) -> list[dict[str, Any]]:
    """The cells as display rows (their ``summary.json`` form: column name -> value, None where undefined)."""
    return summary.to_json()["cells"]


def write_report(run_dir: str | Path, *, baseline: str | None = None) -> Path:
    """``summary.*``, the PNG plots and ``report.html`` (one file, plots embedded) for a run directory;
    ``baseline`` as in ``write_summary``."""
    path = Path(run_dir)
    summary = write_summary(path, baseline=baseline)
    rows = read_rows(path / SAMPLES_FILE)
    from evals.drilldown import drilldown_html
    from evals.plots import plot_accuracy_vs_budget, plot_lengths, plot_pareto

    plot_pareto(summary, path / PLOTS[0])
    plot_accuracy_vs_budget(summary, path / PLOTS[1])
    plot_lengths(rows, summary, path / PLOTS[2])
    cfg = summary.config
    facts = {
        k: cfg.get(k) for k in ("model", "engine", "benchmark", "split", "limit", "seeds", "temperature")
    }
    cost = summary.cost
    auc = [{"strategy": s, **v} for s, v in summary.strategies.items()]
    cells = display_cells(summary)
    images = "".join(
        f'<img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode((path / name).read_bytes()).decode()}">'
        for name in PLOTS
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>reasoner eval: {html.escape(path.name)}"
        f"</title><style>{_CSS}</style></head><body><h1>reasoner eval: {html.escape(path.name)}</h1>"
        f"<p>{html.escape(', '.join(f'{k}={v}' for k, v in facts.items()))}; {summary.rows} rows.</p>"
        + manifest_html(summary.manifest)
        + audit_html(summary.audit)
        + f"<p>Sweep cost: {cost['spent_tokens']} tokens generated vs {cost['separate_tokens']} for separate "
        f"runs per budget (ratio {_fmt(cost['ratio'])}).</p><h2>Summary</h2>"
        + _html_table(summary_stats.accuracy_with_ci(cells), table_columns(cells))
        + f"<p><small>{html.escape(_GLOSSARY)}</small></p>"
        + _comparisons_html(summary)
        + "<h2>Area under accuracy vs budget</h2>"
        + _html_table(auc, ["strategy", "auc", "auc_norm"])
        + f"<h2>Plots</h2>{images}"
        + drilldown_html(rows)
        + "</body></html>"
    )
    out = path / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
