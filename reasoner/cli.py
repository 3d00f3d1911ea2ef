"""The ``reasoner`` command line: the composition root that wires names to objects.

Subcommands:
  decode QUESTION   run a decoding strategy on one question; print traces, tokens, votes and the answer
  merge             DLER update-selective merge (or linear interpolation) of a base and a tuned model
  distill METHOD    build short chain-of-thought SFT datasets (shortest-correct, dap)
  organism data     SFT traces of the overthinking model organism (the ``overthinker`` alias)
  organism build    train an organism variant into a directory (seed, levels, re-check knobs, recipe overrides)
  probe fit RUN_DIR fit a difficulty probe (prompt hidden state -> pass rate) for the adaptive:* strategies
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reasoner.argtypes import positive_int
from reasoner.clitools import CLIError, promises_document, stdout_to_stderr, write_document

if TYPE_CHECKING:
    pass

log = logging.getLogger("reasoner")


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", type=positive_int("-n"), default=1, help="samples per question (>= 1). Default: 1")
    p.add_argument(
        "--max-tokens",
        type=positive_int("--max-tokens"),
        default=512,
        help="max generated tokens per sample. Default: 512",
    )
    p.add_argument(
        "--temperature", type=float, default=0.7, help="sampling temperature; 0 = greedy. Default: 0.7"
    )
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1]. Default: 1.0")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="base seed; sample j of a prompt is seeded from (seed, j, prompt). Default: 0",
    )


def _strategy_params_epilog() -> str:
    """Every strategy's ``--param`` keys, generated from its config fields: type, default and docstring."""
    import textwrap

    from reasoner.strategies import STRATEGIES, strategy_help

    lines = ["strategy parameters (--param KEY=VALUE; generated from each strategy's config):"]
    for name in STRATEGIES:
        fields = strategy_help(name)
        lines.append(f"  {name}:" + ("" if fields else " (none)"))
        for f in fields:
            text = f"{f.name} ({f.type}, default {f.default}): {f.doc}"
            lines += textwrap.wrap(text, 108, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasoner",
        description="Make LLM reasoning cheaper without making it worse: decoding strategies, token-budget "
        "evaluation and RL recipes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (including engine logs)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dec = sub.add_parser(
        "decode",
        help="run a decoding strategy on one question and show traces, tokens, votes and the answer",
        description="Answer QUESTION (rendered with the model's chat template and the 'reason step by step, "
        "answer in \\boxed{}' instruction) with a decoding strategy (default: majority over -n samples) and "
        "print each trace with its token count, finish reason and extracted answer, then the chosen answer, "
        "the votes, the TokenCount and wall time; --json prints one JSON object instead.",
        epilog=_strategy_params_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dec.add_argument("question", help="the question to answer")
    from reasoner.engines import add_engine_args

    add_engine_args(dec)
    _add_sampling_args(dec)
    dec.add_argument(
        "--strategy",
        default=None,
        metavar="NAME",
        help="decoding strategy (greedy, sample, majority, best-of-n, short-m@k, fractured, entropy-branch, "
        "budget-forcing, early-exit, deepconf, adaptive:majority, adaptive:short-m@k). "
        "Default: majority over the -n samples",
    )
    dec.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy parameter, repeatable (e.g. --param k=8 --param m=3); an unknown key is an error that "
        "lists the valid ones. With --strategy, -n is ignored: the strategy's parameters set the sample count",
    )
    dec.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (question, model, engine, strategy, answer, votes, completions, tokens, wall_s)",
    )
    dec.add_argument(
        "--compression",
        type=compression_arg,
        default=None,
        metavar="GAMMA",
        help="TokenSkip's kept ratio of reasoning tokens, in (0, 1] (arXiv 2502.12067): cue a model trained by "
        "`reasoner distill tokenskip` to compress its chain of thought to about GAMMA of its length (1.0: the "
        "plain prompt). Default: no cue",
    )
    dec.set_defaults(func=cmd_decode)
    from reasoner.train.cli import add_parsers as add_train

    add_train(sub, rank_main)
    from reasoner.train.merge_cli import add_parsers as add_merge

    add_merge(sub)
    from reasoner.distill.cli import add_parsers as add_distill

    add_distill(sub)
    from reasoner.organism.cli import add_parsers as add_organism

    add_organism(sub)
    from evals.cli import add_parsers

    add_parsers(sub)
    from reasoner.probe.cli import add_parsers as add_probe

    add_probe(sub)
    return parser


def compression_arg(text: str) -> float:
    """``--compression``: a float in (0, 1] (``reasoner.prompts.check_compression``)."""
    from reasoner.prompts import check_compression

    try:
        return check_compression(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--compression: expected a ratio in (0, 1], got {text!r}") from None


def _spec(args: argparse.Namespace):
    from reasoner.types import SampleSpec

    try:
        return SampleSpec(
            n=args.n,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            seed=args.seed,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None


def _parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--param must look like key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def _strategy(args: argparse.Namespace):
    """The strategy to run: --strategy with its --param values, or majority@n over plain samples."""
    from reasoner.strategies import build_strategy

    name = args.strategy or "majority"
    params = _parse_params(args.param) if args.strategy else {"k": str(args.n)}
    try:
        return build_strategy(name, params)
    except ValueError as err:
        raise CLIError(str(err)) from None


def cmd_decode(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from reasoner.types import Problem
    from reasoner.verify import extract_many

    spec = _spec(args)
    strategy = _strategy(args)
    from reasoner.engines import load_engine

    engine = load_engine(
        args.engine, args.model, dtype=args.dtype, seed=args.seed, speculative=args.speculative
    )
    from reasoner.prompts import compression_question

    question = compression_question(args.question, args.compression)
    result = strategy.run(engine, Problem(id="cli", question=question, answer=""), spec)
    answers = extract_many([c.text for c in result.completions], mode="lenient")
    out = {
        "question": args.question,
        "model": args.model,
        "engine": engine.name,
        "strategy": strategy.name,
        "answer": result.answer,
        "votes": result.votes,
        "completions": [
            {
                "text": c.text,
                "token_ids": list(c.token_ids),
                "num_tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
                "answer": answer,
            }
            for c, answer in zip(result.completions, answers, strict=True)
        ],
        "tokens": asdict(result.tokens),
        "wall_s": round(result.wall_s, 3),
    }
    if args.json:
        write_document(json.dumps(out) + "\n")
    else:
        _print_decode(out)
    return 0


def _print_decode(result: dict) -> None:
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    for i, c in enumerate(result["completions"]):
        title = f"trace {i}: {c['num_tokens']} tokens, finish={c['finish_reason']}, answer={c['answer']}"
        console.print(Panel(c["text"], title=title, title_align="left"), markup=False)
    tok = result["tokens"]
    votes = ", ".join(f"{a}: {v:g}" for a, v in result["votes"].items()) or "none"
    console.print(
        f"answer: {result['answer']}  (strategy {result['strategy']}; votes {votes})\n"
        f"tokens: generated {tok['generated']}, prefilled {tok['prefilled']}, thinking {tok['thinking']}, "
        f"answer {tok['answer']}, sequential {tok['sequential']}  |  engine {result['engine']}  |  "
        f"{result['wall_s']:.2f} s",
        markup=False,
        highlight=False,
    )


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "DEBUG" if verbose else "WARNING")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # vLLM's own default is stdout
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[
            RichHandler(show_path=False, console=__import__("rich.console").console.Console(stderr=True))
        ],
    )
    quiet_rank = int(os.environ.get("RANK", "0")) > 0  # one learner process of several: rank 0 reports
    logging.getLogger("reasoner").setLevel(
        logging.DEBUG if verbose else logging.WARNING if quiet_rank else logging.INFO
    )
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parse_args``, except that ``key=value`` overrides may follow a flag (``reasoner train dler
    --print-config trainer.max_steps=5``): argparse stops filling a ``nargs="*"`` positional at the first flag."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list):
        if all("=" in item and not item.startswith("-") for item in extra):
            args.overrides.extend(extra)
            extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``reasoner`` command. Logs go to stderr; stdout carries only what the command prints for its
    user (with ``--json`` / ``--print-config``: exactly one document)."""
    from reasoner.engines import EngineUnavailableError
    from reasoner.models import UnknownModelError
    from reasoner.strategies.difficulty import ProbeMissingError
    from reasoner.wiring import wire

    wire()
    parser = build_parser()
    args = _parse(parser, argv)
    _setup_logging(args.verbose)
    try:
        with stdout_to_stderr(promises_document(args)):
            return args.func(args)
    except (CLIError, UnknownModelError, EngineUnavailableError, ProbeMissingError) as err:  # a model, engine
        # or difficulty probe no command could load is one line too
        parser.exit(2, f"reasoner {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        return 130


def rank_main(argv: Sequence[str]) -> int:
    """One learner process of ``reasoner train --nproc N``: the ``reasoner`` command on ``argv``; a non-zero
    exit raises. Handed to ``reasoner.train.cli`` (which must not import this module back)."""
    code = main(list(argv))
    if code:
        raise SystemExit(code)
    return code


if __name__ == "__main__":
    # Run the package module's main, not this __main__ copy, so that the ``rank_main`` handed to ``train`` is
    # ``reasoner.cli.rank_main``, which the spawned learner processes of ``--nproc`` can unpickle.
    from reasoner.cli import main as _main

    sys.exit(_main())
