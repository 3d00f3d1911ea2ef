"""What the ``reasoner distill`` subcommands share: input and engine flags, the problems, engine, record log and
progress bar they make from them, and the stats table (``distill.cli``, ``distill.tokenskip_cli``). Errors are
``CLIError`` (one line, exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasoner.argtypes import positive_int
from reasoner.clitools import CLIError

if TYPE_CHECKING:
    from reasoner.engines.base import Engine
    from reasoner.types import SampleSpec

OUT_HELP = (
    "output directory: a datasets dataset (save_to_disk; TRL prompt-completion rows for SFTTrainer), "
    "records.jsonl (one line per problem, appended as problems finish), run.json and stats.json. Rerunning "
    "the same command resumes: problems already in records.jsonl are skipped"
)


def add_input_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--benchmark", metavar="NAME", help="problems from a benchmark (arith, gsm8k, math500, ...)"
    )
    src.add_argument(
        "--data", metavar="PATH", help="problems from a JSONL/JSON file or a save_to_disk directory"
    )
    p.add_argument("--split", default="train", help="benchmark split. Default: %(default)s")
    p.add_argument("--limit", type=positive_int("--limit"), default=None,
                   help="use the first N problems (arith: generate N). Default: all (arith: 64)")  # fmt: skip
    p.add_argument("--data-dir", default=None, help="local benchmark copies (<dir>/<name>/<split>.jsonl); "
                   "default $REASONER_DATA_DIR or the Hub")  # fmt: skip
    p.add_argument(
        "--levels", default="1,2,3", help="arith difficulty levels 1-5, comma-separated. Default: 1,2,3"
    )
    p.add_argument("--question-field", default="question", help="--data: question field (fallbacks: problem, "
                   "prompt). Default: question")  # fmt: skip
    p.add_argument("--answer-field", default="answer", help="--data: gold answer field. Default: answer")
    p.add_argument(
        "--id-field", default="id", help="--data: row id field (missing: row-<index>). Default: id"
    )


def add_engine_flags(p: argparse.ArgumentParser, model_flag: str) -> None:
    from reasoner.engines import add_engine_args

    add_engine_args(p, model_flag, default_model=None)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="sampling seed (sample j of a prompt is seeded from seed, j and the prompt). Default: 0",
    )
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=8,
                   help="problems per generate call; records are written after each batch. Default: 8")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help=OUT_HELP)
    p.add_argument("--fresh", action="store_true", help="discard this command's earlier output in --out")
    p.add_argument("--instruction", default=None, help="answer instruction after each question in prompts and "
                   "SFT rows. Default: reason step by step, answer in \\boxed{}")  # fmt: skip


def problems_from(args: argparse.Namespace, trace_field: str | None = None) -> list:
    """TraceRows from --data, or from --benchmark (no traces)."""
    from reasoner.distill import DistillError, TraceRow, load_rows

    if args.data:
        try:
            return load_rows(args.data, question_key=args.question_field, answer_key=args.answer_field,
                             trace_key=trace_field or "trace", id_key=args.id_field, limit=args.limit)  # fmt: skip
        except DistillError as err:
            raise CLIError(str(err)) from None
    from evals.benchmarks import is_generated, load_problems

    options: dict[str, Any] = {}
    if is_generated(args.benchmark):
        try:
            levels = tuple(int(x) for x in args.levels.split(","))
        except ValueError:
            raise CLIError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
        n = 64 if args.limit is None else args.limit  # --limit's documented default for generated sets
        options = {"n": n, "levels": levels, "seed": args.seed}
    try:
        problems = load_problems(
            args.benchmark, args.split, limit=args.limit, data_dir=args.data_dir, **options
        )
    except ValueError as err:
        raise CLIError(f"--benchmark: {err}") from None
    return [TraceRow(p) for p in problems]


def engine_from(args: argparse.Namespace, model: str) -> Engine:
    """``load_engine`` on the engine flags (its UnknownModelError / EngineUnavailableError print as one line)."""
    from reasoner.engines import load_engine

    return load_engine(args.engine, model, dtype=args.dtype, seed=args.seed, speculative=args.speculative)


def record_log(args: argparse.Namespace, settings: Mapping[str, Any]):
    from reasoner.distill import DistillError, RecordLog

    try:
        return RecordLog(args.out, settings, fresh=args.fresh)
    except (DistillError, OSError) as err:
        raise CLIError(str(err)) from None


def progress_bar(total: int, done: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="problem", disable=None)


def input_settings(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("benchmark", "data", "split", "limit", "levels", "data_dir", "instruction", "seed")
    return {k: getattr(args, k) for k in keys}


def sample_spec(args: argparse.Namespace) -> SampleSpec:
    """The SampleSpec of the sampling flags (-n, --max-tokens, --temperature, --top-p, --seed); a bad value is a
    ``CLIError`` naming its flag."""
    from reasoner.types import SampleSpec

    try:
        return SampleSpec(n=args.n, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                          seed=args.seed)  # fmt: skip
    except ValueError as err:
        raise CLIError(str(err).replace("SampleSpec.", "--")) from None


def sampling_settings(args: argparse.Namespace, method: str, **extra: Any) -> dict[str, Any]:
    """The settings that identify a sampling run (``RecordLog``: a resume with others is refused): the method,
    model, sampling flags, ``extra`` and the input flags."""
    return {"method": method, "model": args.model, "n": args.n, "max_tokens": args.max_tokens,
            "temperature": args.temperature, "top_p": args.top_p, **extra, **input_settings(args)}  # fmt: skip


def answer_instruction(args: argparse.Namespace) -> str | None:
    from reasoner.prompts import ANSWER_INSTRUCTION

    return ANSWER_INSTRUCTION if args.instruction is None else args.instruction


def print_stats(stats: Mapping[str, Any], out: Path) -> None:
    """The run's stats as a rich table (DAP: one row per difficulty level) and where the files are."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    if stats["method"] == "dap":
        cols = ["problems", "rewritten", "kept", "kept_incorrect", "kept_truncated", "kept_longer",
                "tokens_before_mean", "tokens_after_mean", "reduction"]  # fmt: skip
        table = Table(title=f"reasoner distill dap: {out}")
        table.add_column("level")
        table.add_column("budget", justify="right")
        for c in cols:
            table.add_column(
                c.replace("tokens_", "tok ").replace("_mean", "").replace("_", " "), justify="right"
            )
        for level, row in [*stats["levels"].items(), ("all", stats["overall"])]:
            budget = str(stats["budgets"].get(level, ""))
            table.add_row(level, budget, *["-" if row[c] is None else f"{row[c]:g}" for c in cols])
        console.print(table)
        extra = (
            "unrated",
            "traces_generated",
            "original_correct",
            "final_correct",
            "dropped_incorrect",
            "wall_s",
        )
        console.print(", ".join(f"{k} {stats[k]}" for k in extra), markup=False, highlight=False)
    else:
        table = Table(title=f"reasoner distill {stats['method']}: {out}")
        table.add_column("stat")
        table.add_column("value", justify="right")
        for key, value in stats.items():
            if key != "method":
                shown = "-" if value is None else value if isinstance(value, str) else f"{value:g}"
                table.add_row(key.replace("_", " "), shown)
        console.print(table)
    dataset = f"{out}/ (dataset)" if (out / "state.json").exists() else "no dataset (no rows kept)"
    console.print(f"files: {dataset}, {out}/stats.json, {out}/records.jsonl", markup=False, highlight=False)
