"""``reasoner distill tokenskip``: the TokenSkip data command (arXiv 2502.12067), beside ``reasoner.distill.cli``.

Registered by ``reasoner.distill.cli.add_parsers``; shares its input, engine and output flags and helpers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from reasoner.argtypes import positive_int
from reasoner.clitools import CLIError
from reasoner.distill.cli import (
    _add_engine_args,
    _add_input_args,
    _engine,
    _inputs,
    _instruction,
    _problems,
    _progress,
    _records,
    print_stats,
)

DESCRIPTION = """\
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
                           "(arXiv 2502.12067)", description=DESCRIPTION, formatter_class=fmt)  # fmt: skip
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
    from reasoner.types import SampleSpec

    try:
        config = TokenSkipConfig(gammas=parse_gammas(args.gammas), instruction=_instruction(args),
                                 scorer=args.scorer_model, force_digits=args.force_digits,
                                 force_tokens=tuple(x.strip() for x in args.force_tokens.split(",") if x.strip()))  # fmt: skip
        spec = SampleSpec(n=args.n, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                          seed=args.seed)  # fmt: skip
    except ValueError as err:
        raise CLIError(str(err).replace("SampleSpec.", "--")) from None
    problems = [r.problem for r in _problems(args)]
    settings = {"method": "tokenskip", "model": args.model, "n": args.n, "max_tokens": args.max_tokens,
                "temperature": args.temperature, "top_p": args.top_p, "scorer_model": args.scorer_model,
                **_inputs(args)}  # fmt: skip
    records = _records(args, settings)  # gammas only shape the rows: a rerun may change them
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
