"""Decoding strategies at comparable budgets on SmolLM2-135M (vLLM engine): accuracy, tokens, wall time.

Offline arithmetic problems "What is a + b?" (a, b in [2, 40], fixed seed), then, on the same problems and
SampleSpec: majority@8, short-1@8 and short-3@8 (live: real aborts through engine.stream), fractured
sampling (4 trajectories x 4 depths x 1 answer) and entropy-gated branching (1 path + up to 7 branches).
Problems go to the engine in chunks (every strategy runs on a chunk before the next chunk starts, so load
drift on a shared machine hits all strategies alike); each strategy batches a chunk's requests together.
Also printed: short-m@8 replayed from the majority@8 traces (``short_m.simulate``: no generation), which is
what live short-m should match when the engine's seeded sampling is batch-invariant.

    .venv/bin/python bench/strategies.py [--problems 50] [--chunk 25] [--max-tokens 384] [--json out.json]

Targets: short-3@8 wall <= 0.75x majority@8 with accuracy >= majority@8 - 2 points; short-1@8 generated
tokens <= 0.6x majority@8. (DESIGN section 8: SmolLM2's shortest chains are not more accurate, and it has no
think tags, so "finished thinking" = EOS.)
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import defaultdict

from common import cpu_env

from reasoner.strategies import build_strategy, simulate
from reasoner.strategies.base import finished_thinking_at
from reasoner.strategies.voting import extract, vote
from reasoner.types import Problem, SampleSpec, StrategyResult

RUNS = {
    "majority@8": ("majority", {"k": "8"}),
    "short-1@8": ("short-m@k", {"k": "8", "m": "1"}),
    "short-3@8": ("short-m@k", {"k": "8", "m": "3"}),
    "fractured": ("fractured", {"n": "4", "H": "4", "m": "1", "answer_tokens": "16"}),
    "entropy-branch": ("entropy-branch", {"threshold": "1.5", "max_branches": "7", "min_gap": "8"}),
}


def problems(count: int, seed: int) -> list[Problem]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        out.append(Problem(f"add-{i}", f"What is {a} + {b}?", str(a + b)))
    return out


def correct(gold: str, answer: str | None) -> bool:
    from reasoner.verify import answers_equivalent

    return answer is not None and answers_equivalent(gold, answer)


def replay_short_m(tokenizer, majority: StrategyResult, m: int) -> tuple[str | None, int, int]:
    """short-m@k from saved full traces: (answer, generated tokens, sequential tokens)."""
    selected, comps = simulate(tokenizer, majority.completions, m)
    voters = selected or list(range(len(comps)))
    ends = [finished_thinking_at(comps[i]) for i in voters]
    ties = [e if e is not None else comps[i].num_tokens for e, i in zip(ends, voters, strict=True)]
    v = vote([extract(comps[i].text) for i in voters], tie_keys=ties)
    return v.answer, sum(c.num_tokens for c in comps), max(c.num_tokens for c in comps)


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from reasoner.engines import load_engine

    probs = problems(args.problems, args.seed)
    spec = SampleSpec(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    t0 = time.perf_counter()
    engine = load_engine("vllm", args.model)
    logging.info("engine ready in %.1fs", time.perf_counter() - t0)
    engine.generate([[1, 2, 3]], SampleSpec(n=2, max_tokens=8))  # warm-up
    correct("\\frac{1}{2}", "0.5")  # start the verifier pool outside the timed runs
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for lo in range(0, len(probs), args.chunk):
        chunk = probs[lo : lo + args.chunk]
        for label, (name, params) in RUNS.items():
            t = time.perf_counter()
            results = build_strategy(name, params).run_batch(engine, chunk, spec)
            wall = time.perf_counter() - t
            add(stats[label], chunk, results, wall)
            logging.info("chunk %d %s: %.1fs", lo // args.chunk, label, wall)
            if label == "majority@8":
                add_replays(stats, engine.tokenizer, chunk, results)
    engine.close()
    return {k: dict(v) for k, v in stats.items()}


def add(s: dict[str, float], chunk: list[Problem], results: list[StrategyResult], wall: float) -> None:
    s["problems"] += len(chunk)
    s["correct"] += sum(correct(p.answer, r.answer) for p, r in zip(chunk, results, strict=True))
    s["generated"] += sum(r.tokens.generated for r in results)
    s["sequential"] += sum(r.tokens.sequential for r in results)
    s["wall_s"] += wall
    s["requests"] += sum(len(r.completions) for r in results)
    s["aborted"] += sum(len(r.extra.get("aborted", [])) for r in results)
    if results and "branch_points" in results[0].extra:
        s["branches"] += sum(len(r.extra["branch_points"]) for r in results)
    if results and "answers" in results[0].extra and "finishers" not in results[0].extra:
        answers = [a for r in results for a in r.extra["answers"]]
        golds = [p.answer for p, r in zip(chunk, results, strict=True) for _ in r.extra["answers"]]
        s["sample_correct"] += sum(correct(g, a) for g, a in zip(golds, answers, strict=True))
        s["samples"] += len(answers)


def add_replays(stats, tokenizer, chunk: list[Problem], majority: list[StrategyResult]) -> None:
    for m in (1, 3):
        s = stats[f"short-{m}@8 (replay)"]
        for p, r in zip(chunk, majority, strict=True):
            answer, generated, sequential = replay_short_m(tokenizer, r, m)
            s["problems"] += 1
            s["correct"] += correct(p.answer, answer)
            s["generated"] += generated
            s["sequential"] += sequential


def table(stats: dict[str, dict[str, float]]) -> str:
    base = stats["majority@8"]
    acc0 = 100 * base["correct"] / base["problems"]
    head = f"{'strategy':<22}{'acc%':>7}{'Δacc':>7}{'generated':>11}{'x maj':>7}{'seq/prob':>10}{'x maj':>7}"
    head += f"{'wall s':>9}{'x maj':>7}{'aborted':>9}"
    lines = [head, "-" * len(head)]
    for label, s in stats.items():
        acc = 100 * s["correct"] / s["problems"]
        seq = s["sequential"] / s["problems"]
        wall = (
            f"{s['wall_s']:>9.1f}{s['wall_s'] / base['wall_s']:>7.2f}"
            if s.get("wall_s")
            else f"{'-':>9}{'-':>7}"
        )
        lines.append(
            f"{label:<22}{acc:>7.1f}{acc - acc0:>+7.1f}{int(s['generated']):>11}{s['generated'] / base['generated']:>7.2f}"
            f"{seq:>10.1f}{seq / (base['sequential'] / base['problems']):>7.2f}{wall}{int(s.get('aborted', 0)):>9}"
        )
    if base.get("samples"):
        lines.append(
            f"per-sample accuracy (majority@8 traces): {100 * base['sample_correct'] / base['samples']:.1f}%"
        )
    if stats.get("entropy-branch", {}).get("branches") is not None:
        eb = stats["entropy-branch"]
        lines.append(f"entropy-branch: {eb.get('branches', 0) / eb['problems']:.2f} branches per problem")
    return "\n".join(lines)


def verdicts(stats: dict[str, dict[str, float]]) -> list[str]:
    base, s3, s1 = stats["majority@8"], stats["short-3@8"], stats["short-1@8"]
    acc = {k: 100 * v["correct"] / v["problems"] for k, v in stats.items()}
    wall3 = s3["wall_s"] / base["wall_s"]
    gen1 = s1["generated"] / base["generated"]
    return [
        f"short-3@8 wall {wall3:.2f}x (target <= 0.75x): {'MET' if wall3 <= 0.75 else 'MISSED'}",
        f"short-3@8 accuracy {acc['short-3@8']:.1f}% vs majority@8 {acc['majority@8']:.1f}% (target >= -2 points): "
        + ("MET" if acc["short-3@8"] >= acc["majority@8"] - 2 else "MISSED"),
        f"short-1@8 generated {gen1:.2f}x (target <= 0.6x): {'MET' if gen1 <= 0.6 else 'MISSED'}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=25, help="problems per batch (8 requests each)")
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the raw numbers here")
    args = ap.parse_args()
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cpu_env()
    stats = run(args)
    print(table(stats))
    print("\n".join(verdicts(stats)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "stats": stats}, f, indent=2)


if __name__ == "__main__":
    main()
