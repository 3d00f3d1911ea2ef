"""Engine overhead: our vLLM engine vs raw ``vllm.LLM.generate`` on the same prompts and SampleSpec.

Both paths share one warm ``vllm.LLM`` (ours drives its ``LLMEngine`` step loop with per-sample requests,
raw calls ``LLM.generate`` with ``n``); runs alternate to cancel drift, and the median of each is reported.
Raw runs twice: with the very requests our engine sends (identical samples, so equal work) and as one
``n``-sample request without logprobs. The transformers engine's tokens/s is printed for reference on a smaller slice.

    .venv/bin/python bench/engine_overhead.py [--model smollm2-135m] [--prompts 32] [--n 4] [--max-tokens 128]

Target: ours / raw tokens/s >= 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import time

from reasoner.engines.base import sample_seed
from reasoner.engines.hf import HFEngine
from reasoner.engines.vllm import VLLMEngine
from reasoner.models import resolve
from reasoner.prompts import render
from reasoner.types import SampleSpec


def questions(count: int) -> list[str]:
    return [f"What is {3 + 7 * i % 41} + {5 + 13 * i % 37}?" for i in range(count)]


def run_ours(engine: VLLMEngine, prompts: list[list[int]], spec: SampleSpec) -> tuple[int, float]:
    t0 = time.perf_counter()
    out = engine.generate(prompts, spec)
    return sum(c.num_tokens for row in out for c in row), time.perf_counter() - t0


def run_raw(
    engine: VLLMEngine, prompts: list[list[int]], spec: SampleSpec, *, same_work: bool
) -> tuple[int, float]:
    """Raw ``LLM.generate``. ``same_work``: the requests our engine issues (one per sample, seed ``sample_seed``,
    sampled-token logprob), so both sides generate identical tokens; else one request with ``n`` and no logprobs.
    """
    from vllm import SamplingParams

    common = dict(max_tokens=spec.max_tokens, temperature=spec.temperature, top_p=spec.top_p)
    if same_work:
        inputs = [{"prompt_token_ids": p} for p in prompts for _ in range(spec.n)]
        params = [
            SamplingParams(n=1, seed=sample_seed(spec, j, p), logprobs=0, **common)
            for p in prompts
            for j in range(spec.n)
        ]
    else:
        inputs = [{"prompt_token_ids": p} for p in prompts]
        params = SamplingParams(n=spec.n, seed=spec.seed, **common)
    t0 = time.perf_counter()
    out = engine.llm.generate(inputs, params, use_tqdm=False)
    return sum(len(c.token_ids) for r in out for c in r.outputs), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hf-prompts", type=int, default=4, help="prompts for the transformers reference")
    args = ap.parse_args()

    path = resolve(args.model)
    spec = SampleSpec(n=args.n, max_tokens=args.max_tokens, temperature=0.7, seed=0)
    engine = VLLMEngine(path)
    prompts = [render(engine.tokenizer, q) for q in questions(args.prompts)]
    warm = SampleSpec(n=args.n, max_tokens=16, temperature=0.7, seed=0)  # full batch shape, short
    run_ours(engine, prompts, warm)
    run_raw(engine, prompts, warm, same_work=True)
    run_raw(engine, prompts, warm, same_work=False)
    ours, raw, raw_n = [], [], []
    for _ in range(args.repeats):  # interleaved so drift hits all three alike
        tok, sec = run_ours(engine, prompts, spec)
        ours.append(tok / sec)
        tok, sec = run_raw(engine, prompts, spec, same_work=True)
        raw.append(tok / sec)
        tok, sec = run_raw(engine, prompts, spec, same_work=False)
        raw_n.append(tok / sec)
    o, r, rn = statistics.median(ours), statistics.median(raw), statistics.median(raw_n)
    engine.close()

    hf = HFEngine(path)
    hf_prompts = prompts[: args.hf_prompts]
    hf.generate(hf_prompts[:1], SampleSpec(max_tokens=4))
    t0 = time.perf_counter()
    out = hf.generate(hf_prompts, spec)
    hf_tps = sum(c.num_tokens for row in out for c in row) / (time.perf_counter() - t0)

    print(
        f"model={args.model} prompts={args.prompts} n={args.n} max_tokens={args.max_tokens} repeats={args.repeats}"
    )
    print(f"ours (reasoner vllm engine): {o:8.1f} tok/s   runs: {', '.join(f'{x:.1f}' for x in ours)}")
    print(f"raw  (LLM.generate, same requests): {r:8.1f} tok/s   runs: {', '.join(f'{x:.1f}' for x in raw)}")
    print(f"raw  (LLM.generate, n={args.n}, no logprobs): {rn:8.1f} tok/s   runs: "
          f"{', '.join(f'{x:.1f}' for x in raw_n)}")  # fmt: skip
    print(f"ratio ours/raw (same requests): {o / r:.3f}  (target >= 0.95)")
    print(f"ratio ours/raw (n={args.n}, no logprobs, different samples): {o / rn:.3f}")
    print(f"transformers engine (reference, {len(hf_prompts)} prompts): {hf_tps:8.1f} tok/s")


if __name__ == "__main__":
    main()
