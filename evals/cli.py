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
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from evals.console import load_summary, print_line, print_summary, verdict_lines
from reasoner.argtypes import non_negative_int, positive_int

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

Flags override the --config YAML, whose keys are: model engine dtype benchmark split data_dir limit
strategies budgets seeds n temperature top_p batch_size."""


def _strategy_epilog() -> str:
    from reasoner.strategies import STRATEGIES, strategy_help

    lines = ["strategies and their parameters (name:key=value,...; see `reasoner decode --help`):"]
    for name in STRATEGIES:
        params = ", ".join(f"{f.name}={f.default}" for f in strategy_help(name))
        lines.append(f"  {name}: {params or '(none)'}")
    lines.append(f"  (a {'budget'!r} parameter, as budget forcing's, takes each budget of --budgets)")
    lines.append(
        "example: reasoner eval --strategies greedy majority:k=8 short-m@k:k=8,m=3,mode=live "
        "budget-forcing --budgets 128 256 512 --seeds 0 1 --limit 50"
    )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from None


def _limit(text: str) -> int:
    if text.lower() in ("all", "0", "none"):
        return 0  # all problems (None in the config)
    try:
        return positive_int("--limit")(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--limit must be an integer >= 1 or 'all', got {text!r}") from None


def _config_default(p: argparse.ArgumentParser, dest: str, value: Any) -> None:
    """Make a flag's default None (so an unset flag leaves the --config value) and say the real default."""
    for action in p._actions:
        if action.dest == dest:
            action.default = None
            action.help = (action.help or "").replace("%(default)s", str(value))


def _field_default(f: Field[Any]) -> Any:
    """A dataclass field's default: its ``default``, or a fresh value from its ``default_factory``."""
    if f.default is MISSING and callable(f.default_factory):
        return f.default_factory()
    return f.default


def _add_eval_parser(sub: Any) -> None:
    from evals.sweep import EvalConfig
    from reasoner.cli import _add_model_args

    d = argparse.Namespace(**{f.name: _field_default(f) for f in fields(EvalConfig)})
    p = sub.add_parser(
        "eval",
        help="token-budget sweep: strategies x budgets x seeds on a math benchmark, with a report",
        description=_EVAL_DESCRIPTION,
        epilog=_strategy_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        help="read the run's config from a YAML file (keys above); "
        "flags given on the command line override it",
    )
    _add_model_args(p)
    for dest in ("model", "engine", "dtype"):
        _config_default(p, dest, getattr(d, dest))
    _add_problem_args(p, d)
    _add_sweep_args(p, d)
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


def _add_problem_args(p: argparse.ArgumentParser, d: argparse.Namespace) -> None:
    """Which problems: benchmark, split, where its files are, how many."""
    from evals.benchmarks import BENCHMARKS, DATA_DIR_ENV

    p.add_argument(
        "--benchmark",
        choices=sorted(BENCHMARKS),
        help="benchmark (Hub id or --data-dir copy; arith and multistep are generated offline). "
        f"Default: {d.benchmark}",
    )
    p.add_argument("--split", help=f"benchmark split. Default: {d.split}")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"local benchmark copies (<DIR>/<name>/<split>.jsonl). Default: ${DATA_DIR_ENV}, else the Hub",
    )
    p.add_argument(
        "--limit",
        type=_limit,
        metavar="N|all",
        help=f"evaluate the first N problems of the split. Default: {d.limit}",
    )


def _add_sweep_args(p: argparse.ArgumentParser, d: argparse.Namespace) -> None:
    """What runs on each problem: strategies, budgets, seeds, sampling and grading."""
    from reasoner.verify import GRADER_MODES

    p.add_argument(
        "--strategies",
        nargs="+",
        metavar="NAME[:K=V,...]",
        help=f"strategies to compare (list below). Default: {' '.join(d.strategies)}",
    )
    p.add_argument(
        "--budgets",
        nargs="+",
        type=_ints,
        metavar="B",
        help="token budgets: max_tokens per request (budget forcing: thinking tokens). "
        f"Default: {' '.join(map(str, d.budgets))}",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=_ints,
        metavar="S",
        help=f"seeds; accuracy is averaged over them (avg@n). Default: {' '.join(map(str, d.seeds))}",
    )
    p.add_argument(
        "-n",
        "--k",
        dest="n",
        type=positive_int("-n"),
        metavar="N",
        help="samples per problem for strategies with a k or n parameter that the entry does not "
        f"set (majority, short-m@k, best-of-n, deepconf, fractured). Default: {d.n}",
    )
    p.add_argument(
        "--temperature",
        type=float,
        help=f"sampling temperature (greedy ignores it). Default: {d.temperature}",
    )
    p.add_argument("--top-p", type=float, help=f"nucleus sampling mass in (0, 1]. Default: {d.top_p}")
    p.add_argument(
        "--grader",
        choices=GRADER_MODES,
        help="answer extraction for grading: lenient (boxed, 'answer is', then math-verify's own extraction) "
        f"or strict (only a marked final answer); `reasoner regrade` switches later. Default: {d.grader}",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int("--batch-size"),
        metavar="P",
        help=f"problems per engine call (one work unit; part of a run's identity). Default: {d.batch_size}",
    )


_FLAG_KEYS = (
    "model",
    "engine",
    "dtype",
    "benchmark",
    "split",
    "data_dir",
    "limit",
    "strategies",
    "budgets",
    "seeds",
    "n",
    "temperature",
    "top_p",
    "batch_size",
    "grader",
)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {k: getattr(args, k) for k in _FLAG_KEYS if getattr(args, k) is not None}
    for key in ("budgets", "seeds"):
        if key in out:
            out[key] = [x for group in out[key] for x in group]
    if out.get("limit") == 0:  # --limit all
        out["limit"] = None
    return out


def resolve_config(args: argparse.Namespace) -> tuple[Any, Path]:
    """The run's EvalConfig (defaults < run dir's saved config on --resume < --config < flags) and --out."""
    from evals.benchmarks import DATA_DIR_ENV, is_generated
    from evals.runner import RunDir
    from evals.sweep import EvalConfig, load_config

    overrides = _overrides(args)
    out = Path(args.out) if args.out else None
    if args.config:
        config = load_config(args.config, overrides)
        out = out or Path("runs") / Path(args.config).stem
    elif args.resume and out is not None and RunDir(out).exists():
        config = EvalConfig.from_dict(overrides, base=RunDir(out).load_config())
    else:
        config = EvalConfig.from_dict(overrides)
    if config.data_dir is None and not is_generated(config.benchmark):
        config.data_dir = os.environ.get(DATA_DIR_ENV) or None
    return config, out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")


def _fail(command: str, err: BaseException) -> int:
    sys.stderr.write(f"reasoner {command}: error: {err}\n")
    return 2


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.report import write_report, write_summary
    from evals.runner import RunDir, RunDirError, run_sweep

    t0 = time.perf_counter()
    try:
        config, out = resolve_config(args)
        run = RunDir(out)
        done = run.prepare(config, "fresh" if args.fresh else "resume" if args.resume else "auto")
    except (ValueError, OSError, RunDirError) as err:
        return _fail("eval", err)
    log.info("run dir %s (%s)", out, f"resuming, {done} rows done" if done else "new")
    try:
        stats = run_sweep(config, run, workers=args.workers)
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
    for line in verdict_lines(load_summary(out)):
        print_line(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from evals.regrade import audit_lines, audit_run
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
    for line in verdict_lines(load_summary(out)):
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


def cmd_regrade(args: argparse.Namespace) -> int:
    from evals.regrade import regrade_run

    try:
        before = load_summary(Path(args.run_dir)) if (Path(args.run_dir) / "summary.json").is_file() else None
        out, changed = regrade_run(args.run_dir, args.mode, args.out)
    except (ValueError, OSError) as err:
        return _fail("regrade", err)
    summary = load_summary(out)
    print_summary(summary, out)
    old = {(c["strategy"], c["budget"]): c["accuracy"] for c in (before or {}).get("cells", [])}
    for c in summary["cells"]:
        was = old.get((c["strategy"], c["budget"]))
        if was is not None:
            print_line(f"{c['strategy']}@{c['budget']}: accuracy {was:.3f} -> {c['accuracy']:.3f}")
    print_line(
        f"regraded {changed['completions']} completions with --mode {args.mode}: {changed['samples']} verdicts "
        f"and {changed['extractions']} extracted answers changed; {changed['finals']} of {changed['rows']} "
        "final verdicts changed"
    )
    return 0
