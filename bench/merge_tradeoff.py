"""Update-selective merging trade-off after a short DLER run (opt-in; about 20-60 min on a 2-core CPU).

DLER (arXiv 2510.15110) proposes merging only the largest-magnitude part of the RL update into the base model
when RL data is scarce: the merge should keep the base's accuracy and most of the RL model's concision. This
script trains ``recipes/dler.yaml`` for ``--steps`` steps from ``--model``, merges the result into the base with
``reasoner.train.merge.merge_models`` at each ``--keeps`` fraction, and measures base, tuned and merged models on
held-out problems (arith test split, disjoint from train): accuracy (avg@n, verified with ``reasoner.verify``),
mean response length in tokens and truncation rate (``evaluate`` from ``bench/common.py``). One table.

    .venv/bin/python bench/merge_tradeoff.py [--steps 40] [--keeps 0.1 0.3 0.5] [--scope tensor]
        [--eval-problems 60] [--eval-samples 4] [--engine vllm] [--json out.json] [key=value DLER overrides ...]

Tiny smoke run (seconds; a random model, so only the plumbing is meaningful):

    .venv/bin/python bench/merge_tradeoff.py --model tiny-random-qwen2 --engine hf --steps 2 --eval-problems 4 \\
        --eval-samples 2 --eval-max-tokens 16 trainer.max_completion_length=16 data.n=12 \\
        advantages.dynamic_sampling.max_rounds=1

Measured on a 2-core CPU (10 min 45 s), 40 held-out problems x 4 samples, max 256 tokens:

    .venv/bin/python bench/merge_tradeoff.py --steps 12 --eval-problems 40 trainer.learning_rate=2e-5 \
        trainer.temperature=0.7 trainer.bf16=true "data.levels=[1]" rewards.0.params.max_length=64

    model        accuracy  mean len  |delta|^2 kept
    base            0.094     114.5       0%
    tuned (DLER)    0.281      10.9     100%
    merged 0.1      0.150      46.5    32.2%
    merged 0.3      0.269      16.9    70.1%
    merged 0.5      0.281      13.3    89.5%
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import evaluate


def measure(path: str, args, problems) -> dict[str, float]:
    """Load ``path`` in a fresh engine (float32) and evaluate it on the held-out problems."""
    from reasoner.engines import load_engine

    engine = load_engine(args.engine, path, dtype="float32", seed=0)
    try:
        return evaluate(engine, engine.tokenizer, problems, args.eval_samples, args.eval_max_tokens)
    finally:
        engine.close()


def train_dler(args, out_dir: str) -> dict[str, float]:
    """A short DLER run (``recipes/dler.yaml``) from ``--model``; the final weights are saved to ``out_dir``."""
    from reasoner.train.cli import train_recipe

    overrides = [f"model.name={args.model}", f"trainer.max_steps={args.steps}", f"rollout.engine={args.engine}",
                 "trainer.save_strategy=no", f"trainer.output_dir={out_dir}", *args.overrides]  # fmt: skip
    t0 = time.perf_counter()
    trainer = train_recipe("dler", overrides, quiet=False)
    return {"train_s": time.perf_counter() - t0, "steps": trainer.state.global_step}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the DLER recipe (recipes/dler.yaml)")
    ap.add_argument("--model", default="smollm2-135m", help="base model (alias, Hub id or local dir)")
    ap.add_argument("--steps", type=int, default=40, help="DLER training steps. Default: 40")
    ap.add_argument("--keeps", type=float, nargs="+", default=[0.1, 0.3, 0.5],
                    help="update fractions to merge (reasoner merge --keep). Default: 0.1 0.3 0.5")  # fmt: skip
    ap.add_argument("--scope", choices=["tensor", "global"], default="tensor",
                    help="rank |delta| per tensor or over all parameters. Default: tensor")  # fmt: skip
    ap.add_argument("--engine", default="vllm", choices=["vllm", "hf"], help="rollout and eval engine")
    ap.add_argument("--eval-problems", type=int, default=60, help="held-out arith test problems. Default: 60")
    ap.add_argument("--eval-samples", type=int, default=4, help="samples per held-out problem. Default: 4")
    ap.add_argument("--eval-max-tokens", type=int, default=256, help="max tokens per sample. Default: 256")
    ap.add_argument(
        "--work-dir", default=None, help="keep the tuned and merged models here (default: a temp dir)"
    )
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if any(not 0 <= k <= 1 for k in args.keeps):
        ap.error(f"--keeps must be in [0, 1], got {args.keeps}")
    return args


def run(args, work: Path) -> dict[str, dict[str, float]]:
    from evals.benchmarks import load_benchmark
    from reasoner.models import resolve
    from reasoner.train.merge import merge_models

    held_out = list(
        load_benchmark("arith", split="test", n=args.eval_problems, seed=0, levels=(1, 2)).problems
    )
    base = resolve(args.model)
    tuned = str(work / "tuned")
    results: dict[str, dict[str, float]] = {"base": measure(base, args, held_out)}
    results["tuned"] = train_dler(args, tuned) | measure(tuned, args, held_out)
    for keep in args.keeps:
        out = work / f"merged-{keep:g}"
        report = merge_models(base, tuned, out, keep=keep, scope=args.scope)
        results[f"merged {keep:g}"] = {"update_energy": report.update_energy} | measure(
            str(out), args, held_out
        )
    return results


def main(argv=None) -> None:
    args = parse_args(argv)
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if args.work_dir:
        Path(args.work_dir).mkdir(parents=True, exist_ok=True)
        results = run(args, Path(args.work_dir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = run(args, Path(tmp))
    print(f"held-out: {args.eval_problems} arith test problems x {args.eval_samples} samples, max "
          f"{args.eval_max_tokens} tokens; DLER {args.steps} steps from {args.model}; merge scope {args.scope}")  # fmt: skip
    print(f"{'model':<14} {'accuracy':>9} {'mean len':>9} {'truncated':>10} {'|delta|^2 kept':>14}")
    for name, r in results.items():
        energy = (
            f"{r['update_energy']:.1%}" if "update_energy" in r else ("100%" if name == "tuned" else "0%")
        )
        print(
            f"{name:<14} {r['accuracy']:>9.3f} {r['mean_length']:>9.1f} {r['truncated']:>10.3f} {energy:>14}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
