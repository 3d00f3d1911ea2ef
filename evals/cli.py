"""``reasoner eval`` and ``reasoner report``: token-budget sweeps on math benchmarks, and their reports.

``add_parsers(subparsers)`` registers both subcommands on the ``reasoner`` parser (``reasoner.cli``).
Errors are printed as one line (``reasoner eval: error: ...``) with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from evals.cells import Summary
from evals.console import load_summary, print_line, print_summary, verdict_lines
from evals.rows import RowFormatError
from reasoner.argtypes import non_negative_int

log = logging.getLogger("reasoner")

_EVAL_DESCRIPTION = """\
Evaluate decoding strategies at several token budgets on a math benchmark: a grid of strategies x budgets x
seeds. With no arguments: the overthinking organism (`overthinker`, built on first use in ~5 min on 2 CPU cores,
then cached) on 100 held-out `multistep` problems at T=1.0, strategies greedy, majority@8, short-1@8 and
short-3@8 (live: real aborts) and budget forcing, budgets 64/128/384 tokens, then the report and a few verdict
lines against majority@8 (~2 min after the build). The real small model instead: --config
evals/configs/smollm2.yaml (SmolLM2-135M-Instruct on arithmetic).

One generation at the largest budget answers every smaller "stop at B tokens" budget by truncation; requests
repeated across strategies (majority@k and short-m@k simulated share their chains) run once; budget forcing
replays the capped thinking and generates only the forced answer; live strategies run first on each work unit
so that their aborts and wall times are real. The summary reports tokens generated against what separate runs
per budget would have generated.

Results go to --out: config.yaml, samples.jsonl (one row per strategy, budget, problem and seed, appended as
work units finish), summary.json/.csv (accuracy with 95% bootstrap CIs over problems), comparisons.csv
(each strategy vs a baseline: the first majority strategy, else the first; `reasoner report --baseline`
picks another), report.html and PNG plots. Rerunning the same command resumes: done work is skipped and the
summary equals an uninterrupted run's.

Flags override the --config YAML, whose keys are the flags' names with _ for -:
{keys}."""


def _strategy_epilog() -> str:
    from reasoner.models import alias_names
    from reasoner.strategies import STRATEGIES, strategy_help

    lines = ["strategies and their parameters (name:key=value,...; see `reasoner decode --help`):"]
    for name in STRATEGIES:
        params = ", ".join(f"{f.name}={f.default}" for f in strategy_help(name))
        lines.append(f"  {name}: {params or '(none)'}")
    lines.append(f"  (a {'budget'!r} parameter, as budget forcing's, takes each budget of --budgets)")
    lines.append(f"built-in model aliases (--model): {', '.join(alias_names())}")
    lines.append(
        "example: reasoner eval --strategies greedy majority:k=8 short-m@k:k=8,m=3,mode=live "
        "budget-forcing --budgets 128 256 512 --seeds 0 1 --limit 50"
    )
    return "\n".join(lines)


def _add_eval_parser(sub: Any) -> None:
    from evals.benchmarks import BENCHMARKS
    from evals.sweep import EvalConfig

    p = sub.add_parser(
        "eval",
        help="token-budget sweep: strategies x budgets x seeds on a math benchmark, with a report",
        description=_EVAL_DESCRIPTION.format(keys=" ".join(EvalConfig.model_fields)),
        epilog=_strategy_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        help="read the run's config from a YAML file (keys above); "
        "flags given on the command line override it",
    )
    add_config_flags(p, EvalConfig, choices={"benchmark": sorted(BENCHMARKS)})
    p.add_argument(
        "--out",
        metavar="DIR",
        help="run directory. Default: runs/<config file name> with --config, else runs/eval-<timestamp>. "
        "Rerunning with the same --out resumes",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="require a run in --out to continue (default: continue one if --out holds it); "
        "without --config its saved config is used",
    )
    mode.add_argument(
        "--fresh", action="store_true", help="discard the results already in --out and start over"
    )
    p.add_argument("--no-report", action="store_true", help="write summary.json/.csv only, not the HTML/PNGs")
    p.add_argument(
        "--workers",
        type=non_negative_int("--workers"),
        default=0,
        metavar="N",
        help="spread work units over N engine replicas in Ray actors (local Ray, or the cluster at "
        "$RAY_ADDRESS); rows equal a single-engine run's. Default: 0 (one in-process engine)",
    )
    p.set_defaults(func=cmd_eval)


def add_config_flags(
    p: argparse.ArgumentParser, model: type[BaseModel], choices: Mapping[str, Sequence[str]] | None = None
) -> None:
    """One flag per field of ``model``: ``--field-name`` (or the field's ``json_schema_extra["flags"]``), its
    attribute docstring and default as help, choices from a ``Literal`` (or ``choices[field]``), ``nargs="+"``
    for a list (numbers may also be comma-separated). Each flag defaults to None, so an unset flag leaves the
    ``--config`` value; the strings are parsed and checked by ``model`` (``overrides`` collects them)."""
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        kind, item = _field_kind(field.annotation)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _flag_help(field)}
        if kind is list:
            kwargs["nargs"] = "+"
            if item in (int, float):
                kwargs["type"] = _words
        if typing.get_origin(item) is Literal:
            kwargs["choices"] = typing.get_args(item)
        if choices and name in choices:
            kwargs["choices"] = choices[name]
        if "metavar" in extra:
            kwargs["metavar"] = extra["metavar"]
        named = extra.get("flags")
        flags = [str(f) for f in named] if isinstance(named, list) else [f"--{name.replace('_', '-')}"]
        p.add_argument(*flags, **kwargs)


def _field_kind(annotation: Any) -> tuple[Any, Any]:
    """(list, item type) for a list field, else (None, the type without ``| None``)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        item = typing.get_args(annotation)[0]
        if typing.get_origin(item) is Annotated:
            item = typing.get_args(item)[0]
        return list, item
    return None, annotation


def _flag_help(field: FieldInfo) -> str:
    doc = " ".join((field.description or "").replace("``", "").split())
    default = field.get_default(call_default_factory=True)
    shown = " ".join(map(str, default)) if isinstance(default, list) else default
    return f"{doc} Default: {shown}".strip().replace("%", "%%")


def _words(text: str) -> list[str]:
    """A list flag's value: numbers separated by commas or spaces ("64,128" is two)."""
    return text.replace(",", " ").split()


def overrides(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The config fields given as flags (``add_config_flags``), lists flattened."""
    out = {}
    for name in model.model_fields:
        value = getattr(args, name, None)
        if isinstance(value, list):
            value = [x for v in value for x in (v if isinstance(v, list) else [v])]
        if value is not None:
            out[name] = value
    return out


def resolve_config(args: argparse.Namespace) -> tuple[Any, Path]:
    """The run's EvalConfig (defaults < run dir's saved config on --resume < --config < flags) and --out."""
    from evals.benchmarks import DATA_DIR_ENV, is_generated
    from evals.runner import RunDir
    from evals.sweep import EvalConfig, load_config

    flags = overrides(args, EvalConfig)
    out = Path(args.out) if args.out else None
    if args.config:
        config = load_config(args.config, flags)
        out = out or Path("runs") / Path(args.config).stem
    elif args.resume and out is not None and RunDir(out).exists():
        config = EvalConfig.from_dict(flags, base=RunDir(out).load_config())
    else:
        config = EvalConfig.from_dict(flags)
    if config.data_dir is None and not is_generated(config.benchmark):
        config.data_dir = os.environ.get(DATA_DIR_ENV) or None
    return config, out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")


def _fail(command: str, err: BaseException) -> int:
    sys.stderr.write(f"reasoner {command}: error: {err}\n")
    return 2


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.report import write_report, write_summary
    from evals.runner import RunDir, RunDirError, run_sweep
    from reasoner.dist import map_with_engines

    t0 = time.perf_counter()
    try:
        config, out = resolve_config(args)
        run = RunDir(out)
        done = run.prepare(config, "fresh" if args.fresh else "resume" if args.resume else "auto")
    except (ValueError, OSError, RunDirError) as err:
        return _fail("eval", err)
    log.info("run dir %s (%s)", out, f"resuming, {done} rows done" if done else "new")
    try:
        stats = run_sweep(config, run, workers=args.workers, map_with_engines=map_with_engines)
    except (ValueError, FileNotFoundError) as err:
        return _fail("eval", err)
    if args.no_report:
        write_summary(out)
    else:
        write_report(out)
    print_summary(load_summary(out), out)
    print_line(
        f"this invocation: {stats.units_run}/{stats.units_total} work units run, {stats.rows_written} rows, "
        f"{stats.spent_tokens} tokens generated, {stats.served_tokens} replayed; "
        f"wall {time.perf_counter() - t0:.1f} s"
    )
    for line in verdict_lines(load_summary(out), _takes_budget):
        print_line(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from evals.audit import audit_lines, audit_run
    from evals.report import write_report

    out = Path(args.run_dir)
    try:
        audit = audit_run(out) if args.audit else None
        path = write_report(out, baseline=args.baseline)
    except (ValueError, OSError) as err:
        return _fail("report", err)
    print_summary(load_summary(out), out)
    for line in audit_lines(audit) if audit else ():
        print_line(line)
    print_line(
        f"wrote {path} and {', '.join(str(out / n) for n in ('pareto.png', 'accuracy_vs_budget.png', 'lengths.png'))}"
    )
    for line in verdict_lines(load_summary(out), _takes_budget):
        print_line(line)
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``eval`` and ``report`` on the ``reasoner`` command's subparsers."""
    _add_eval_parser(subparsers)
    rep = subparsers.add_parser(
        "report",
        help="write summary.json/.csv, PNG plots and report.html for a run directory",
        description="Recompute the summary of RUN_DIR from its samples.jsonl and write summary.json, "
        "summary.csv, comparisons.csv (each strategy vs --baseline), pareto.png (accuracy vs mean tokens), "
        "accuracy_vs_budget.png, lengths.png (token lengths of correct vs wrong answers) and report.html (one "
        "file, plots embedded).",
    )
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `reasoner eval`")
    rep.add_argument(
        "--baseline",
        metavar="LABEL",
        help="strategy label (as in the summary, e.g. majority:k=4) that every other strategy is compared "
        "with, budget by budget, on the same problems (accuracy difference with a bootstrap CI and a paired "
        "sign-flip p-value, token saving). Default: the first majority strategy, else the first strategy",
    )
    rep.add_argument(
        "--audit",
        action="store_true",
        help="also re-grade every saved response with math-verify directly (parse + verify of the whole "
        "response) and report how often it disagrees with the run's verdicts, with examples (audit.json)",
    )
    rep.set_defaults(func=cmd_report)
    _add_regrade_parser(subparsers)


def _add_regrade_parser(subparsers: Any) -> None:
    from reasoner.verify import GRADER_MODES

    reg = subparsers.add_parser(
        "regrade",
        help="re-grade a finished run's saved responses with another extraction policy (no generation)",
        description="Grade every saved completion of RUN_DIR again with --mode, re-derive the final answers "
        "of greedy/sample/majority (vote again), re-grade the others' final answers, and write the result as "
        "a new run directory with its summary and report. See evals/regrade.py.",
    )
    reg.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `reasoner eval`")
    reg.add_argument(
        "--mode",
        choices=GRADER_MODES,
        default="lenient",
        help="lenient: last \\boxed{}, then an 'answer is' span, then math-verify's own extraction; "
        "strict: only an explicitly marked final answer counts. Default: lenient",
    )
    reg.add_argument(
        "--out", metavar="DIR", help="where to write the re-graded run. Default: RUN_DIR/regrade-MODE"
    )
    reg.set_defaults(func=cmd_regrade)


def _takes_budget(label: str) -> bool:
    """Whether a strategy label's budget is a setting of the method (``console.verdict_lines``)."""
    from evals.sweep import StrategyEntry

    return StrategyEntry.parse(label, 1).takes_budget


def _previous_summary(run_dir: Path) -> Summary | None:
    """The run's own ``summary.json`` before a regrade (None when there is none, or when it has a format this
    version does not read: then the before/after accuracy lines are left out, with a warning)."""
    if not (run_dir / "summary.json").is_file():
        return None
    try:
        return load_summary(run_dir)
    except RowFormatError as err:
        log.warning("not comparing accuracies with the previous summary: %s", err)
        return None


def cmd_regrade(args: argparse.Namespace) -> int:
    from evals.regrade import regrade_run

    try:
        before = _previous_summary(Path(args.run_dir))
        out, changed = regrade_run(args.run_dir, args.mode, args.out)
    except (ValueError, OSError) as err:
        return _fail("regrade", err)
    summary = load_summary(out)
    print_summary(summary, out)
    old = {(c.strategy, c.budget): c.accuracy for c in before.cells} if before else {}
    for c in summary.cells:
        was = old.get((c.strategy, c.budget))
        if was is not None:
            print_line(f"{c.strategy}@{c.budget}: accuracy {was:.3f} -> {c.accuracy:.3f}")
    print_line(
        f"regraded {changed['completions']} completions with --mode {args.mode}: {changed['samples']} verdicts "
        f"and {changed['extractions']} extracted answers changed; {changed['finals']} of {changed['rows']} "
        "final verdicts changed"
    )
    return 0
