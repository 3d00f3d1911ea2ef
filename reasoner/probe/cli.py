"""``reasoner probe fit RUN_DIR``: fit a difficulty probe (``reasoner.probe.fit``) from an eval run's rows.

Composition root (L6): it reads the run with ``evals`` (config, problems, graded rows), takes prompt hidden
states with ``reasoner.engines.hidden`` and writes a ``reasoner.strategies.difficulty.LinearProbe`` that the
``adaptive:*`` strategies read.
"""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reasoner.clitools import CLIError

log = logging.getLogger(__name__)


class ProbeFitConfig(BaseModel):
    """What ``reasoner probe fit`` does; its flags are these fields (``--val-fraction`` for ``val_fraction``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    strategy: str | None = None
    """The run's strategy label whose graded samples give the pass rates (e.g. ``majority:k=8``); default: the
    first majority entry, else sample, else the first strategy."""
    budget: int | None = Field(None, ge=1)
    """The run's token budget whose rows are used; default: the largest."""
    layers: str = "all"
    """Hidden-state layers to try, comma-separated (0 = embeddings, -1 = last), or ``all``; the one with the
    lowest validation MSE is kept. Default all."""
    alphas: str = "0.01,0.1,1,10"
    """Ridge penalties to try (comma-separated, > 0; alpha * n is added to Z^T Z); chosen with the layer.
    Default 0.01,0.1,1,10."""
    val_fraction: float = Field(0.25, ge=0, lt=1)
    """Share of the run's problems held out (by a hash of the id) to choose layer and alpha; the kept probe is
    then refitted on all of them. Default 0.25."""
    out: str | None = None
    """Where to write the probe JSON; default ``<model dir>/difficulty_probe.json`` (a Hub id or a read-only
    directory needs --out)."""
    dtype: str = "auto"
    """dtype of the forward passes (auto: fp32 on a CPU)."""


def add_parsers(subparsers: Any) -> None:
    """Register ``probe fit`` on the ``reasoner`` subparsers (flags generated from ``ProbeFitConfig``)."""
    p = subparsers.add_parser("probe", help="difficulty probes on prompt hidden states (adaptive:* strategies)",
                              description="Difficulty probes; see each action's --help.")  # fmt: skip
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    f = actions.add_parser(
        "fit",
        help="fit a linear probe from prompt hidden states to an eval run's per-problem pass rates",
        description="Read RUN_DIR (a `reasoner eval` run), compute each problem's pass rate over the chosen "
        "strategy's graded samples (all seeds), take the hidden state of each prompt's last token with "
        "transformers (the run's model), fit ridge regression on standardised features for each layer and "
        "alpha on a training slice, keep the pair with the lowest validation MSE, refit it on all problems and "
        "save it with its metadata (Zhu et al. 2025, arXiv 2509.12886).",
    )
    f.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `reasoner eval`")
    for name, field in ProbeFitConfig.model_fields.items():
        doc = " ".join((field.description or "").split())
        f.add_argument("--" + name.replace("_", "-"), dest=name, default=field.default, help=doc)
    f.set_defaults(func=cmd_fit)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"--alphas must be comma-separated numbers, got {text!r}") from None


def _layers(text: str, total: int) -> list[int]:
    if text.strip() == "all":
        return list(range(total))
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"--layers must be 'all' or comma-separated integers, got {text!r}") from None


def _pick_strategy(labels: list[str], wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in labels:
            raise CLIError(f"--strategy {wanted!r} is not in the run; its strategies: {', '.join(labels)}")
        return wanted
    for base in ("majority", "sample"):
        found = [label for label in labels if label.partition(":")[0] == base]
        if found:
            return found[0]
    return labels[0]


def run_pass_rates(run_dir: str, cfg: ProbeFitConfig) -> tuple[Any, str, int, dict[str, tuple[float, int]]]:
    """(the run's EvalConfig, strategy label, budget, problem id -> (pass rate, samples))."""
    from evals.rows import read_rows
    from evals.runner import RunDir
    from reasoner.probe.fit import pass_rates

    run = RunDir(run_dir)
    if not run.exists():
        raise CLIError(f"{run_dir} is not an eval run (no config.yaml)")
    config = run.load_config()
    rows = read_rows(run.samples_path)
    if not rows:
        raise CLIError(f"{run_dir}: no rows in samples.jsonl")
    label = _pick_strategy(list(dict.fromkeys(r.strategy for r in rows)), cfg.strategy)
    budgets = sorted({r.budget for r in rows if r.strategy == label})
    budget = cfg.budget if cfg.budget is not None else budgets[-1]
    if budget not in budgets:
        raise CLIError(f"--budget {budget} is not in the run for {label}; its budgets: {budgets}")
    chosen = [r for r in rows if r.strategy == label and r.budget == budget]
    return config, label, budget, pass_rates((r.problem_id, [s.correct for s in r.samples]) for r in chosen)


def fit_run(run_dir: str, cfg: ProbeFitConfig) -> tuple[Any, dict[str, Any]]:
    """Fit the probe of ``run_dir`` (module docstring); returns (LinearProbe, a report of every candidate)."""
    import numpy as np
    from transformers import AutoTokenizer

    from evals.runner import sweep_problems
    from reasoner.engines.hidden import num_layers, prompt_features
    from reasoner.models import resolve
    from reasoner.probe.fit import fit_one, select, split_validation
    from reasoner.prompts import render
    from reasoner.strategies.difficulty import LinearProbe

    config, label, budget, rates = run_pass_rates(run_dir, cfg)
    questions = {p.id: p.question for p in sweep_problems(config)}
    ids = [pid for pid in rates if pid in questions]
    if len(ids) < 4:
        raise CLIError(f"{run_dir}: {len(ids)} problems with pass rates; a probe needs at least 4")
    model = resolve(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    prompts = [render(tokenizer, questions[pid]) for pid in ids]
    layers = _layers(cfg.layers, num_layers(model, cfg.dtype))
    features = prompt_features(model, prompts, layers, dtype=cfg.dtype)
    y = [rates[pid][0] for pid in ids]
    val = split_validation(ids, cfg.val_fraction)
    best, fits = select(features, y, layers, _floats(cfg.alphas), val)
    final = fit_one(features[layers.index(best.layer)], y, best.alpha, best.layer, [False] * len(ids))
    meta = {
        "model": config.model, "model_path": model, "run": str(Path(run_dir).resolve()), "strategy": label,
        "budget": budget, "benchmark": f"{config.benchmark}/{config.split}", "problems": len(ids),
        "samples": int(sum(rates[pid][1] for pid in ids)), "mean_pass_rate": float(np.mean(y)),
        "layer": best.layer, "alpha": best.alpha, "train": final.train, "validation": best.validation,
        "fit_date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "paper": "arXiv 2509.12886",
    }  # fmt: skip
    probe = LinearProbe(final.layer, tuple(map(float, final.mean)), tuple(map(float, final.std)),
                        tuple(map(float, final.weights)), float(final.bias), meta)  # fmt: skip
    report = {"candidates": [{"layer": f.layer, "alpha": f.alpha, **f.validation} for f in fits]}
    return probe, report


def cmd_fit(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from reasoner.models import resolve
    from reasoner.strategies.difficulty import PROBE_FILE

    values = {k: getattr(args, k) for k in ProbeFitConfig.model_fields}
    try:
        cfg = ProbeFitConfig.model_validate(values)
    except ValidationError as err:
        raise CLIError(str(err).replace("\n", " ")) from None
    probe, report = fit_run(args.run_dir, cfg)
    if cfg.out is not None:
        out = Path(cfg.out)
    else:
        model_dir = Path(resolve(probe.meta["model"]))
        if not model_dir.is_dir():
            raise CLIError(f"model {probe.meta['model']!r} is not a local directory: pass --out PATH")
        out = model_dir / PROBE_FILE
    try:
        probe.save(out)
    except OSError as err:
        raise CLIError(f"cannot write the probe to {out} ({err}): pass --out PATH") from None
    _print_fit(report, probe.meta, out)
    return 0


def _print_fit(report: dict[str, Any], meta: dict[str, Any], out: Path) -> None:
    """The candidates' validation metrics (a rich table) and the kept probe."""
    from rich.console import Console
    from rich.table import Table

    table = Table("layer", "alpha", "val mse", "val r", "val AUROC (pass >= .5)", title="validation slice")
    for c in report["candidates"]:
        nan = float("nan")
        table.add_row(str(c["layer"]), f"{c['alpha']:g}", f"{c.get('mse', nan):.4f}", f"{c.get('pearson', nan):.3f}",
                      f"{c.get('auroc_pass_ge_half', nan):.3f}")  # fmt: skip
    console = Console()
    console.print(table)
    console.print(
        f"probe: layer {meta['layer']}, alpha {meta['alpha']:g}, {meta['problems']} problems ({meta['strategy']} "
        f"at {meta['budget']} tokens, mean pass rate {meta['mean_pass_rate']:.3f}); refitted on all: train mse "
        f"{meta['train']['mse']:.4f}, r {meta['train']['pearson']:.3f} -> {out}",
        markup=False,
        highlight=False,
    )
