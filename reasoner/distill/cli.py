"""``reasoner distill shortest-correct|dap|tokenskip|tokenskip-scorer``: build concise chain-of-thought SFT datasets.

A composition root like ``reasoner/cli.py``: it wires ``--benchmark`` names to ``evals.benchmarks.load_problems``
(imported inside functions) and engines to ``reasoner.engines.load_engine``. Errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from reasoner.argtypes import positive_int
from reasoner.clitools import CLIError
from reasoner.distill.cliargs import (
    add_engine_flags,
    add_input_args,
    answer_instruction,
    engine_from,
    input_settings,
    print_stats,
    problems_from,
    progress_bar,
    record_log,
    sample_spec,
    sampling_settings,
)
from reasoner.distill.shortest import SELECTS
from reasoner.distill.tokenskip_cli import add_tokenskip_parser

log = logging.getLogger("reasoner")

_DESCRIPTION = {
    "shortest-correct": """\
Sample N answers per problem with MODEL, grade them against the gold answers (reasoner.verify), keep the
shortest correct finished answer per problem (tokens; ties -> first sample) and write an SFT dataset. Problems
without a correct sample are skipped and counted. Stats: samples, accuracy, mean tokens of all / correct /
kept samples.

example: reasoner distill shortest-correct --model smollm2-135m --benchmark arith --split train --limit 200 \\
    -n 8 --max-tokens 256 --out runs/short-cot
then:    reasoner train sft_short data.path=runs/short-cot""",
    "dap": """\
Difficulty-aware prompting (DAP, arXiv 2505.19716): the teacher rates each problem's difficulty, then
rewrites its long reasoning trace to the token budget of that level (--budgets). A rewrite is used only if it
reaches the gold answer (verified), stops before the cap and is shorter; otherwise the original trace is kept
and the reason counted. Rows without a trace get one written by the teacher. Stats per level: problems,
rewritten/kept, mean tokens before/after, reduction.

--data rows: JSONL/JSON or a save_to_disk directory with question (or problem/prompt), answer, optional id and
trace (names set by --question-field/--answer-field/--trace-field/--id-field).

example: reasoner distill dap --teacher deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --data long_cot.jsonl \\
    --budgets easy=400,medium=800,hard=1600 --out runs/dap""",
}


_DAP_FLAGS = {"budgets": "--budgets", "fallback": "--fallback-level", "cap_factor": "--cap-factor"}


def parse_budgets(text: str) -> dict[str, int]:
    """``easy=256,medium=512,hard=1024`` -> ordered level -> budget (tokens)."""
    out: dict[str, int] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        level, sep, value = item.partition("=")
        try:
            budget = int(value)
        except ValueError:
            budget = 0
        if not sep or not level.strip() or budget < 1:
            raise argparse.ArgumentTypeError(f"--budgets: expected level=tokens (tokens >= 1), got {item!r}")
        out[level.strip().lower()] = budget
    if not out:
        raise argparse.ArgumentTypeError(f"--budgets: no levels in {text!r}")
    return out


def add_parsers(subparsers: Any) -> None:
    """Register ``distill`` (with ``shortest-correct``, ``dap`` and ``tokenskip``) on the ``reasoner`` subparsers."""
    d = subparsers.add_parser("distill", help="build short chain-of-thought SFT datasets (shortest-correct, DAP, TokenSkip)",
                              description="Build concise chain-of-thought SFT datasets; see each method's --help.")  # fmt: skip
    methods = d.add_subparsers(dest="method", required=True, metavar="METHOD")
    fmt = argparse.RawDescriptionHelpFormatter
    s = methods.add_parser("shortest-correct", help="sample N per problem, keep the shortest correct answer",
                           description=_DESCRIPTION["shortest-correct"], formatter_class=fmt)  # fmt: skip
    add_engine_flags(s, "--model")
    add_input_args(s)
    s.add_argument("-n", type=positive_int("-n"), default=8, help="samples per problem. Default: 8")
    s.add_argument("--max-tokens", type=positive_int("--max-tokens"), default=512,
                   help="max generated tokens per sample; truncated samples are never kept. Default: 512")  # fmt: skip
    s.add_argument("--temperature", type=float, default=0.7, help="sampling temperature. Default: 0.7")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1]. Default: 1.0")
    s.add_argument("--select", choices=SELECTS, default="shortest",
                   help="which correct finished sample a problem keeps (longest and random: baselines to judge "
                   "shortest against; random is seeded by --seed and the problem id). Default: shortest")  # fmt: skip
    s.set_defaults(func=cmd_shortest)
    a = methods.add_parser("dap", help="difficulty-aware rewriting of long traces by a teacher (arXiv 2505.19716)",
                           description=_DESCRIPTION["dap"], formatter_class=fmt)  # fmt: skip
    add_engine_flags(a, "--teacher")
    add_input_args(a)
    a.add_argument("--trace-field", default="trace", help="--data: long reasoning trace field; rows without "
                   "one get a trace from the teacher. Default: trace")  # fmt: skip
    a.add_argument("--budgets", type=parse_budgets, default="easy=256,medium=512,hard=1024",
                   help="difficulty level=token budget, easiest first. Default: easy=256,medium=512,hard=1024")  # fmt: skip
    a.add_argument(
        "--fallback-level", default=None, help="level for unparsable ratings. Default: the hardest"
    )
    a.add_argument("--cap-factor", type=float, default=1.5, help="rewrites stop at cap-factor x budget tokens "
                   "and are then rejected as truncated (>= 1). Default: 1.5")  # fmt: skip
    a.add_argument("--trace-max-tokens", type=positive_int("--trace-max-tokens"), default=1024,
                   help="cap for traces the teacher writes. Default: 1024")  # fmt: skip
    a.add_argument(
        "--temperature", type=float, default=0.0, help="teacher temperature; 0 = greedy. Default: 0"
    )
    a.add_argument("--require-correct", action="store_true",
                   help="drop problems whose kept trace does not reach the gold answer (counted)")  # fmt: skip
    a.set_defaults(func=cmd_dap)
    add_tokenskip_parser(methods, fmt)
    from reasoner.distill.scorer_cli import add_scorer_parser

    add_scorer_parser(methods, fmt)


def cmd_shortest(args: argparse.Namespace) -> int:
    """Handler of ``reasoner distill shortest-correct``."""
    from reasoner.distill import distill_shortest, shortest_rows, shortest_stats, write_dataset

    spec = sample_spec(args)
    problems = [r.problem for r in problems_from(args)]
    settings = sampling_settings(args, "shortest-correct", select=args.select)
    records = record_log(args, settings)
    t0, instruction = time.perf_counter(), answer_instruction(args)
    todo = len([p for p in problems if p.id not in records.done_ids()])
    engine = engine_from(args, args.model) if todo else None
    bar = progress_bar(len(problems), len(problems) - todo, "shortest-correct")
    try:
        done = distill_shortest(engine, problems, spec, records, instruction=instruction, batch_size=args.batch_size,
                                on_done=bar.update, select=args.select, seed=args.seed)  # fmt: skip
    finally:
        bar.close()
        if engine is not None:
            engine.close()
    stats = shortest_stats(done) | {"select": args.select, "wall_s": round(time.perf_counter() - t0, 1)}
    write_dataset(args.out, shortest_rows(done, instruction=instruction), stats)
    print_stats(stats, Path(args.out))
    return 0


def cmd_dap(args: argparse.Namespace) -> int:
    """Handler of ``reasoner distill dap``."""
    from reasoner.distill import DAPConfig, dap_rows, dap_stats, distill_dap, write_dataset

    try:
        config = DAPConfig(budgets=args.budgets, fallback=args.fallback_level, cap_factor=args.cap_factor,
                           trace_max_tokens=args.trace_max_tokens, temperature=args.temperature, seed=args.seed,
                           instruction=answer_instruction(args))  # fmt: skip
    except ValueError as err:
        field, _, message = str(err).partition(": ")
        raise CLIError(f"{_DAP_FLAGS.get(field, field)}: {message}") from None
    if not args.temperature >= 0:
        raise CLIError(f"--temperature must be >= 0, got {args.temperature}")
    rows = problems_from(args, args.trace_field)
    settings = {"method": "dap", "teacher": args.teacher, "budgets": args.budgets, "fallback": config.fallback_level,
                "cap_factor": args.cap_factor, "trace_max_tokens": args.trace_max_tokens,
                "temperature": args.temperature, "trace_field": args.trace_field, **input_settings(args)}  # fmt: skip
    records = record_log(args, settings)
    t0 = time.perf_counter()
    todo = len([r for r in rows if r.problem.id not in records.done_ids()])
    engine = engine_from(args, args.teacher) if todo else None
    bar = progress_bar(len(rows), len(rows) - todo, "dap")
    try:
        done = distill_dap(engine, rows, config, records, batch_size=args.batch_size, on_done=bar.update)
    finally:
        bar.close()
        if engine is not None:
            engine.close()
    stats = dap_stats(done, config, require_correct=args.require_correct)
    stats["wall_s"] = round(time.perf_counter() - t0, 1)
    write_dataset(args.out, dap_rows(done, config, require_correct=args.require_correct), stats)
    print_stats(stats, Path(args.out))
    return 0
