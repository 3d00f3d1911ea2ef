"""``reasoner distill tokenskip``: TokenSkip's compressed chain-of-thought SFT data (``reasoner.distill.tokenskip``)."""

from __future__ import annotations

import argparse
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
    print_stats,
    problems_from,
    progress_bar,
    record_log,
    sample_spec,
    sampling_settings,
)

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
    add_engine_flags(t, "--model")
    add_input_args(t)
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

    try:
        config = TokenSkipConfig(gammas=parse_gammas(args.gammas), instruction=answer_instruction(args),
                                 scorer=args.scorer_model, force_digits=args.force_digits,
                                 scorer_file=args.scorer_file,
                                 force_tokens=tuple(x.strip() for x in args.force_tokens.split(",") if x.strip()))  # fmt: skip
    except ValueError as err:
        raise CLIError(str(err)) from None
    spec = sample_spec(args)
    problems = [r.problem for r in problems_from(args)]
    settings = sampling_settings(args, "tokenskip", scorer_model=args.scorer_model)
    if args.scorer_file is not None:
        _check_scorer_file(args.scorer_file)
    # gammas and --scorer-file only shape the rows: a rerun on the same --out may change them
    records = record_log(args, settings)
    t0 = time.perf_counter()
    todo = len([p for p in problems if p.id not in records.done_ids()])
    engine = engine_from(args, args.model) if todo else None
    scorer = _reference_scorer(args.scorer_model) if todo and args.scorer_model else None
    bar = progress_bar(len(problems), len(problems) - todo, "tokenskip")
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
