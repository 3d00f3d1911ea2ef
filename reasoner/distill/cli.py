"""``reasoner distill shortest-correct|dap|tokenskip|tokenskip-scorer``: build concise chain-of-thought SFT datasets.

A composition root like ``reasoner/cli.py``: it wires ``--benchmark`` names to ``evals.benchmarks.load_problems``
(imported inside functions) and engines to ``reasoner.engines.load_engine``. Errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasoner.argtypes import positive_int
from reasoner.clitools import CLIError
from reasoner.distill.shortest import SELECTS

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger("reasoner")

_OUT_HELP = (
    "output directory: a datasets dataset (save_to_disk; TRL prompt-completion rows for SFTTrainer), "
    "records.jsonl (one line per problem, appended as problems finish), run.json and stats.json. Rerunning "
    "the same command resumes: problems already in records.jsonl are skipped"
)
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


def _add_input_args(p: argparse.ArgumentParser) -> None:
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


def _add_engine_args(p: argparse.ArgumentParser, model_flag: str) -> None:
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
    p.add_argument("--out", required=True, metavar="DIR", help=_OUT_HELP)
    p.add_argument("--fresh", action="store_true", help="discard this command's earlier output in --out")
    p.add_argument("--instruction", default=None, help="answer instruction after each question in prompts and "
                   "SFT rows. Default: reason step by step, answer in \\boxed{}")  # fmt: skip


def add_parsers(subparsers: Any) -> None:
    """Register ``distill`` (with ``shortest-correct``, ``dap`` and ``tokenskip``) on the ``reasoner`` subparsers."""
    d = subparsers.add_parser("distill", help="build short chain-of-thought SFT datasets (shortest-correct, DAP, TokenSkip)",
                              description="Build concise chain-of-thought SFT datasets; see each method's --help.")  # fmt: skip
    methods = d.add_subparsers(dest="method", required=True, metavar="METHOD")
    fmt = argparse.RawDescriptionHelpFormatter
    s = methods.add_parser("shortest-correct", help="sample N per problem, keep the shortest correct answer",
                           description=_DESCRIPTION["shortest-correct"], formatter_class=fmt)  # fmt: skip
    _add_engine_args(s, "--model")
    _add_input_args(s)
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
    _add_engine_args(a, "--teacher")
    _add_input_args(a)
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


_TOKENSKIP_DESCRIPTION = """\
TokenSkip (arXiv 2502.12067): sample N traces per problem with MODEL (with logprobs), keep the correct finished
ones that close a <think> span, score each reasoning token by its self-information -log p(token | prefix) under
MODEL (Selective Context, arXiv 2310.06201), keep the round(gamma * n) most informative reasoning tokens in
order for each gamma of --gammas, and write one SFT row per (trace, gamma): the question with the gamma cue
(reasoner.prompts.compression_question; none for 1.0) -> the compressed reasoning and the whole answer. Stats:
traces, mean reasoning tokens and the fraction of digit tokens kept per gamma. --scorer-model scores with a
reference causal LM instead (Selective Context's setting; transformers, run once per trace).

example: reasoner distill tokenskip --model overthinker --benchmark multistep --split train --limit 400 \\
    --temperature 1.0 --max-tokens 700 --out runs/tokenskip-data
then:    reasoner train sft_tokenskip data.path=runs/tokenskip-data
at inference: reasoner decode --model STUDENT --compression 0.6 QUESTION"""


def add_tokenskip_parser(methods: Any, fmt: Any) -> None:
    """Register ``tokenskip`` on the ``distill`` method subparsers (``fmt``: the help formatter class)."""
    from reasoner.distill.tokenskip import GAMMAS

    t = methods.add_parser("tokenskip", help="TokenSkip: drop low-information reasoning tokens to ratios gamma "
                           "(arXiv 2502.12067)", description=_TOKENSKIP_DESCRIPTION, formatter_class=fmt)  # fmt: skip
    _add_engine_args(t, "--model")
    _add_input_args(t)
    t.add_argument("-n", type=positive_int("-n"), default=1, help="samples per problem; every correct finished "
                   "one is a trace. Default: 1")  # fmt: skip
    t.add_argument("--max-tokens", type=positive_int("--max-tokens"), default=512,
                   help="max generated tokens per sample; truncated samples are never kept. Default: 512")  # fmt: skip
    t.add_argument("--temperature", type=float, default=0.7, help="sampling temperature. Default: 0.7")
    t.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1]. Default: 1.0")
    t.add_argument("--gammas", default=",".join(f"{g:g}" for g in GAMMAS),
                   help="kept ratios of reasoning tokens, comma-separated, each in (0, 1]. Default: %(default)s")  # fmt: skip
    t.add_argument("--force-tokens", default="", metavar="TOKENS",
                   help="comma-separated token texts always kept (TokenSkip's LLaMA-3 setting: Step,:). Default: none")  # fmt: skip
    t.add_argument("--force-digits", action="store_true", help="always keep reasoning tokens holding a digit "
                   "(LLMLingua-2's force_reserve_digit)")  # fmt: skip
    t.add_argument("--scorer-model", default=None, metavar="MODEL",
                   help="score tokens by their self-information under this reference causal LM (transformers; "
                   "Selective Context's setting) instead of MODEL's own logprobs. Default: MODEL's own")  # fmt: skip
    t.add_argument("--scorer-file", default=None, metavar="FILE",
                   help="score tokens by a trained keep scorer (reasoner distill tokenskip-scorer; LLMLingua-2's "
                   "mould) on MODEL's tokens and self-information. Rows only: rerun on the same --out. Default: none")  # fmt: skip
    t.set_defaults(func=cmd_tokenskip)


def _problems(args: argparse.Namespace, trace_field: str | None = None) -> list:
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


def _engine(args: argparse.Namespace, model: str) -> Engine:
    """``load_engine`` on the engine flags (its UnknownModelError / EngineUnavailableError print as one line)."""
    from reasoner.engines import load_engine

    return load_engine(args.engine, model, dtype=args.dtype, seed=args.seed, speculative=args.speculative)


def _records(args: argparse.Namespace, settings: Mapping[str, Any]):
    from reasoner.distill import DistillError, RecordLog

    try:
        return RecordLog(args.out, settings, fresh=args.fresh)
    except (DistillError, OSError) as err:
        raise CLIError(str(err)) from None


def _progress(total: int, done: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="problem", disable=None)


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("benchmark", "data", "split", "limit", "levels", "data_dir", "instruction", "seed")
    return {k: getattr(args, k) for k in keys}


def _instruction(args: argparse.Namespace) -> str | None:
    from reasoner.prompts import ANSWER_INSTRUCTION

    return ANSWER_INSTRUCTION if args.instruction is None else args.instruction


def cmd_shortest(args: argparse.Namespace) -> int:
    """Handler of ``reasoner distill shortest-correct``."""
    from reasoner.distill import distill_shortest, shortest_rows, shortest_stats, write_dataset
    from reasoner.types import SampleSpec

    try:
        spec = SampleSpec(n=args.n, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                          seed=args.seed)  # fmt: skip
    except ValueError as err:
        raise CLIError(str(err).replace("SampleSpec.", "--")) from None
    problems = [r.problem for r in _problems(args)]
    settings = {"method": "shortest-correct", "model": args.model, "n": args.n, "max_tokens": args.max_tokens,
                "temperature": args.temperature, "top_p": args.top_p, "select": args.select,
                **_inputs(args)}  # fmt: skip
    records = _records(args, settings)
    t0, instruction = time.perf_counter(), _instruction(args)
    todo = len([p for p in problems if p.id not in records.done_ids()])
    engine = _engine(args, args.model) if todo else None
    bar = _progress(len(problems), len(problems) - todo, "shortest-correct")
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
                           instruction=_instruction(args))  # fmt: skip
    except ValueError as err:
        field, _, message = str(err).partition(": ")
        raise CLIError(f"{_DAP_FLAGS.get(field, field)}: {message}") from None
    if not args.temperature >= 0:
        raise CLIError(f"--temperature must be >= 0, got {args.temperature}")
    rows = _problems(args, args.trace_field)
    settings = {"method": "dap", "teacher": args.teacher, "budgets": args.budgets, "fallback": config.fallback_level,
                "cap_factor": args.cap_factor, "trace_max_tokens": args.trace_max_tokens,
                "temperature": args.temperature, "trace_field": args.trace_field, **_inputs(args)}  # fmt: skip
    records = _records(args, settings)
    t0 = time.perf_counter()
    todo = len([r for r in rows if r.problem.id not in records.done_ids()])
    engine = _engine(args, args.teacher) if todo else None
    bar = _progress(len(rows), len(rows) - todo, "dap")
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


def cmd_tokenskip(args: argparse.Namespace) -> int:
    """Handler of ``reasoner distill tokenskip``."""
    from reasoner.distill import write_dataset
    from reasoner.distill.tokenskip import (
        TokenSkipConfig,
        distill_tokenskip,
        parse_gammas,
        tokenskip_rows,
        tokenskip_stats,
    )
    from reasoner.types import SampleSpec

    try:
        config = TokenSkipConfig(gammas=parse_gammas(args.gammas), instruction=_instruction(args),
                                 scorer=args.scorer_model, force_digits=args.force_digits,
                                 scorer_file=args.scorer_file,
                                 force_tokens=tuple(x.strip() for x in args.force_tokens.split(",") if x.strip()))  # fmt: skip
        spec = SampleSpec(n=args.n, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                          seed=args.seed)  # fmt: skip
    except ValueError as err:
        raise CLIError(str(err).replace("SampleSpec.", "--")) from None
    problems = [r.problem for r in _problems(args)]
    settings = {"method": "tokenskip", "model": args.model, "n": args.n, "max_tokens": args.max_tokens,
                "temperature": args.temperature, "top_p": args.top_p, "scorer_model": args.scorer_model,
                **_inputs(args)}  # fmt: skip
    if args.scorer_file is not None:
        _check_scorer_file(args.scorer_file)
    records = _records(
        args, settings
    )  # gammas and --scorer-file only shape the rows: a rerun may change them
    t0 = time.perf_counter()
    todo = len([p for p in problems if p.id not in records.done_ids()])
    engine = _engine(args, args.model) if todo else None
    scorer = _reference_scorer(args.scorer_model) if todo and args.scorer_model else None
    bar = _progress(len(problems), len(problems) - todo, "tokenskip")
    try:
        done = distill_tokenskip(engine, problems, spec, records, config, batch_size=args.batch_size,
                                 on_done=bar.update, scorer=scorer)  # fmt: skip
        tokenizer = engine.tokenizer if engine is not None else _tokenizer(args.model)
    finally:
        bar.close()
        if engine is not None:
            engine.close()
    stats = tokenskip_stats(done, tokenizer, config) | {"wall_s": round(time.perf_counter() - t0, 1)}
    write_dataset(args.out, tokenskip_rows(done, tokenizer, config), stats)
    print_stats(stats, Path(args.out))
    return 0


def _check_scorer_file(path: str) -> None:
    """Load the trained scorer once before any sampling (cached for the rows); one-line errors."""
    from reasoner.distill.tokenskip import load_trained

    if not Path(path).is_file():
        raise CLIError(f"--scorer-file: no file {path!r}")
    try:
        load_trained(path)
    except ValueError as err:
        raise CLIError(str(err)) from None


def _reference_scorer(model: str) -> Any:
    from reasoner.distill.scorers import ReferenceScorer
    from reasoner.models import UnknownModelError

    try:
        return ReferenceScorer(model)
    except (UnknownModelError, OSError) as err:
        raise CLIError(f"--scorer-model: {err}") from None


def _tokenizer(model: str) -> Any:
    """The tokenizer of ``model`` (an alias, directory or Hub id), for a resumed run that loads no engine."""
    from transformers import AutoTokenizer

    from reasoner.models import UnknownModelError, resolve

    try:
        return AutoTokenizer.from_pretrained(resolve(model))
    except UnknownModelError as err:
        raise CLIError(str(err)) from None


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
