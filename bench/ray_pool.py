"""Ray rollout pool overhead and scaling: in-process engine vs a 1-worker pool vs a 2-worker pool.

A "step" is what the trainer asks of its rollout source per optimizer step: ``sync_weights`` (the full
state dict of a driver-side transformers copy of the model, slightly perturbed) then ``generate`` of
``--prompts`` x ``--n`` samples. Each source is built, warmed up (one small generate), timed over
``--steps`` steps (median), and closed before the next, so only one set of engines is in memory.

    .venv/bin/python bench/ray_pool.py [--model smollm2-135m] [--engine vllm|hf] [--prompts 8] [--n 4]

Reported: step time pool(1) / in-process (target <= 1.10), sync and generate time of each, and generated
tokens/s with 1 vs 2 workers. On a 2-core machine two workers share the same two cores that one worker
(or the in-process engine) already uses, so expect little or no throughput gain there; the pool pays off
with one worker per GPU or per node.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import torch

from reasoner.dist import RolloutPool
from reasoner.models import resolve
from reasoner.prompts import render
from reasoner.train.rollout import make_rollout_source
from reasoner.types import SampleSpec

log = logging.getLogger("bench.ray_pool")


def questions(count: int) -> list[str]:
    return [f"What is {3 + 7 * i % 41} + {5 + 13 * i % 37}?" for i in range(count)]


def driver_weights(path: str) -> list[tuple[str, torch.Tensor]]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return [(n, p.detach()) for n, p in model.named_parameters()]


def time_source(source, weights, prompts, spec: SampleSpec, steps: int) -> dict[str, float]:
    """Median sync / generate / step seconds and generated tokens per second over ``steps`` steps."""
    source.generate(prompts[:2], SampleSpec(n=1, max_tokens=8, seed=0))  # warm-up
    syncs, gens, tokens = [], [], []
    for step in range(1, steps + 1):
        scaled = [(n, t * (1.0 + 1e-4 * step)) for n, t in weights]
        t0 = time.perf_counter()
        source.sync_weights(scaled, version=step)
        t1 = time.perf_counter()
        out = source.generate(prompts, spec)
        t2 = time.perf_counter()
        syncs.append(t1 - t0)
        gens.append(t2 - t1)
        tokens.append(sum(c.num_tokens for group in out for c in group))
    step_s = [s + g for s, g in zip(syncs, gens, strict=True)]
    return {
        "sync_s": statistics.median(syncs),
        "generate_s": statistics.median(gens),
        "step_s": statistics.median(step_s),
        "tok_per_s": sum(tokens) / sum(gens),
    }


def build(kind: str, engine: str, path: str, workers: int, cpus: float):
    t0 = time.perf_counter()
    extra = {"num_cpus": cpus, "placement": "PACK"} if workers else {}
    source = make_rollout_source(engine, path, dtype="float32", seed=0, workers=workers, pool=RolloutPool,
                                 **extra)  # fmt: skip
    log.info("%-12s built in %.1f s", kind, time.perf_counter() - t0)
    return source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--engine", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ray

    cpus = os.cpu_count() or 1
    os.environ.setdefault("RAY_worker_niceness", "0")  # workers at the in-process engine's priority
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    path = resolve(args.model)
    weights = driver_weights(path)
    spec = SampleSpec(n=args.n, max_tokens=args.max_tokens, temperature=0.7, seed=0)
    results = {}
    for kind, workers, per_worker in [("in-process", 0, 0.0), ("pool(1)", 1, cpus), ("pool(2)", 2, cpus / 2)]:
        source = build(kind, args.engine, path, workers, per_worker)
        try:
            prompts = [render(source.tokenizer, q) for q in questions(args.prompts)]
            results[kind] = time_source(source, weights, prompts, spec, args.steps)
        finally:
            source.close()
        r = results[kind]
        log.info("%-12s step %.2f s (sync %.2f s, generate %.2f s), %.0f tok/s", kind, r["step_s"],
                 r["sync_s"], r["generate_s"], r["tok_per_s"])  # fmt: skip
    ray.shutdown()
    base, one, two = results["in-process"], results["pool(1)"], results["pool(2)"]
    log.info("model %s, engine %s, %d prompts x %d samples, %d tokens max, %d cores",
             args.model, args.engine, args.prompts, args.n, args.max_tokens, cpus)  # fmt: skip
    log.info("step time pool(1) / in-process: %.3f (target <= 1.10)", one["step_s"] / base["step_s"])
    log.info("throughput pool(2) / pool(1): %.2fx (%.0f vs %.0f tok/s)", two["tok_per_s"] / one["tok_per_s"],
             two["tok_per_s"], one["tok_per_s"])  # fmt: skip


if __name__ == "__main__":
    main()
