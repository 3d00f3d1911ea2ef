"""``reasoner distill tokenskip-scorer``: fit TokenSkip's trained keep scorer on a tokenskip run's records.

A separate step, not a stage of ``distill tokenskip``: its labels need every correct sample of a problem
(``tokenskip -n 4`` or more) while the rows it compresses may come from any run (one sample per problem, another
model's run, a resumed one); a fitted file is reused by every data build, and the fit, which needs no engine,
reports its held-out AUROC before any data is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from reasoner.clitools import CLIError

_DESCRIPTION = """\
Fit the trained TokenSkip scorer (LLMLingua-2's mould, arXiv 2403.12968; reasoner.distill.trained_scorer): for
each problem of the --records runs (reasoner distill tokenskip output directories, sampled with -n >= 2), the
shortest correct trace is the model's own compression; every correct trace's reasoning tokens are labelled
keep=1 when a longest-common-subsequence alignment maps them onto it, and a small MLP on the token window,
self-information, position and repeated-n-gram counts learns p(keep). Problems are split (--heldout) and the
held-out token AUROC is reported. Writes OUT (the scorer) and OUT.json (the report).

example: reasoner distill tokenskip --model overthinker --benchmark multistep --split train --limit 300 -n 4 \\
    --temperature 1.0 --max-tokens 700 --out runs/ts-labels
         reasoner distill tokenskip-scorer --records runs/ts-labels --out runs/ts-scorer.pt
then:    reasoner distill tokenskip ... --scorer-file runs/ts-scorer.pt"""

_HELP = {
    "window": "token ids at offsets -W..W are features",
    "ngrams": "comma-separated n of the repeated-n-gram counts",
    "hidden": "hidden ReLU units (0: logistic regression)",
    "epochs": "passes over the fit tokens",
    "lr": "Adam learning rate",
    "batch": "tokens per step",
    "heldout": "fraction of problems held out for the AUROC",
    "min_traces": "problems with fewer correct traces are skipped",
    "seed": "split, initialisation and batch order seed",
}


def _ngrams(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--ngrams: expected comma-separated integers, got {text!r}"
        ) from None


def add_scorer_parser(methods: Any, fmt: Any) -> None:
    """Register ``tokenskip-scorer`` on the ``distill`` method subparsers; one flag per ``ScorerConfig`` field."""
    from reasoner.distill.trained_scorer import ScorerConfig

    p = methods.add_parser("tokenskip-scorer", help="fit TokenSkip's keep scorer on a model's own shortest "
                           "correct traces (LLMLingua-2's mould)", description=_DESCRIPTION, formatter_class=fmt)  # fmt: skip
    p.add_argument("--records", nargs="+", required=True, metavar="DIR",
                   help="reasoner distill tokenskip output directories (records.jsonl)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="FILE", help="the scorer file (and FILE.json, the report)")
    p.add_argument(
        "--vocab", type=int, default=None, help="the tokenizer's size. Default: largest id seen + 1"
    )
    for field in dataclasses.fields(ScorerConfig):
        default = field.default
        kind = _ngrams if field.name == "ngrams" else type(default)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        p.add_argument(f"--{field.name.replace('_', '-')}", dest=f"scorer_{field.name}", metavar=field.name.upper(), type=kind, default=default,
                       help=f"{_HELP[field.name]}. Default: {shown}")  # fmt: skip
    p.set_defaults(func=cmd_tokenskip_scorer)


def read_records(dirs: list[str]) -> list[dict[str, Any]]:
    """The records of each run directory, in order (``CLIError`` naming a missing one)."""
    records = []
    for d in dirs:
        path = Path(d) / "records.jsonl"
        if not path.exists():
            raise CLIError(f"--records: no records.jsonl in {d!r} (a reasoner distill tokenskip --out)")
        records += [
            json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    return records


def cmd_tokenskip_scorer(args: argparse.Namespace) -> int:
    """Handler of ``reasoner distill tokenskip-scorer``."""
    from rich.console import Console

    from reasoner.distill.trained_scorer import ScorerConfig, fit_scorer

    values = {f.name: getattr(args, f"scorer_{f.name}") for f in dataclasses.fields(ScorerConfig)}
    try:
        config = ScorerConfig(**values)
    except ValueError as err:
        raise CLIError(f"--{str(err).replace('_', '-')}") from None
    t0 = time.perf_counter()
    try:
        scorer, report = fit_scorer(read_records(args.records), config, args.vocab)
    except ValueError as err:
        raise CLIError(f"--{str(err).replace('_', '-')}") from None
    report |= {"records": args.records, "wall_s": round(time.perf_counter() - t0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    scorer.save(args.out)
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    Console().print("\n".join(f"{k}: {v}" for k, v in report.items() if k != "config"), markup=False,
                    highlight=False)  # fmt: skip
    Console().print(f"files: {args.out}, {args.out}.json", markup=False, highlight=False)
    return 0
