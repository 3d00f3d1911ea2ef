"""Baseline GRPO vs DLER on smollm2-135m arithmetic (opt-in, about 20-60 min on a 2-core CPU).

DLER (arXiv 2510.15110) should shorten responses (truncation penalty + batch-wise normalisation +
clip-higher + dynamic sampling) without losing accuracy; GRPO with an accuracy reward is the baseline.
For each recipe (``recipes/grpo.yaml``, ``recipes/dler.yaml``) this trains ``--steps`` steps from the same
initial model and then measures, on held-out problems (arith test split, disjoint from train), the accuracy
(avg@n, verified with ``reasoner.verify``), the mean response length in tokens and the truncation rate;
the initial model is measured the same way. Evaluation uses the trainer's rollout engine, which holds the
final weights after training.

    .venv/bin/python bench/dler_smollm2.py [--steps 40] [--eval-problems 60] [--eval-samples 4]
        [--engine vllm] [--json out.json] [key=value | RECIPE:key=value overrides ...]

A 135M model is far from the paper's setting (DeepSeek-R1-Distill-Qwen-1.5B, cap 4000). Measured on a
2-core CPU (29 min wall, with other jobs running), 40 held-out problems x 4 samples:

    .venv/bin/python bench/dler_smollm2.py --steps 12 --eval-problems 40 trainer.learning_rate=2e-5 \
        trainer.temperature=0.7 trainer.bf16=true trainer.use_cpu=true "data.levels=[1]" \
        dler:rewards.0.params.max_length=64

    initial  accuracy 0.094  mean length 114.5 tokens
    grpo     accuracy 0.087  mean length 130.3 tokens
    dler     accuracy 0.281  mean length  10.9 tokens   (0.10x the length, +18.8 points)

DLER taught the model to answer directly (``\boxed{}`` first); at this scale the "thinking" it removed was
mostly noise, which is why accuracy rose rather than held.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from common import evaluate, recipe_overrides, train_and_eval


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="key=value overrides applied to every recipe; RECIPE:key=value "
                    "applies to that recipe only (e.g. dler:rewards.0.params.max_length=48)")  # fmt: skip
    ap.add_argument("--steps", type=int, default=40, help="training steps per recipe")
    ap.add_argument("--engine", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--eval-problems", type=int, default=60, help="held-out arith test problems")
    ap.add_argument("--eval-samples", type=int, default=4, help="samples per held-out problem")
    ap.add_argument("--eval-max-tokens", type=int, default=256)
    ap.add_argument("--recipes", nargs="+", default=["grpo", "dler"])
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    from evals.benchmarks import load_benchmark
    from reasoner.train.rollout import make_rollout_source

    held_out = list(
        load_benchmark("arith", split="test", n=args.eval_problems, seed=0, levels=(1, 2)).problems
    )
    common = [f"trainer.max_steps={args.steps}", f"rollout.engine={args.engine}", "trainer.save_strategy=no"]
    results: dict[str, dict[str, float]] = {}
    source = make_rollout_source(args.engine, "smollm2-135m", dtype="float32")
    try:
        results["initial"] = evaluate(
            source, source.tokenizer, held_out, args.eval_samples, args.eval_max_tokens
        )
    finally:
        source.close()
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            overrides = [*common, *recipe_overrides(args.overrides, recipe)]
            results[recipe] = train_and_eval(recipe, overrides, held_out, os.path.join(tmp, recipe),
                                             samples=args.eval_samples, max_tokens=args.eval_max_tokens)  # fmt: skip
    print(f"held-out: {len(held_out)} arith test problems x {args.eval_samples} samples, "
          f"max {args.eval_max_tokens} tokens; {args.steps} training steps per recipe")  # fmt: skip
    print(f"{'model':<10} {'accuracy':>9} {'mean len':>9} {'truncated':>10} {'train s':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r['accuracy']:>9.3f} {r['mean_length']:>9.1f} {r['truncated']:>10.3f} "
              f"{r.get('train_s', 0):>8.0f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
