"""Train-step time: our trainer (vLLM rollouts, weight sync, our advantage post-processing) vs plain TRL
GRPOTrainer generating with transformers, on the same model, problems, reward and batch.

Both run ``--steps`` optimizer steps (the first is a warm-up and is not counted); a callback times each step
(optimizer included). Ours also reports where its time goes (``time/generate|score|sync|advantages|update``)
and the share spent in our advantage post-processing. Completion lengths are printed for both, since the
two generators sample different tokens.

    .venv/bin/python bench/train_step.py [--model smollm2-135m] [--steps 4] [--prompts 2] [--n 4]
                                          [--max-tokens 128]

Targets: ours / TRL step time <= 0.7; advantage post-processing <= 5% of our step time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from transformers import TrainerCallback


class WallTimer(TrainerCallback):
    """Wall time of each optimizer step, and TRL's completion length."""

    def __init__(self):
        self.steps: list[float] = []
        self.lengths: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(time.perf_counter() - self._t0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "completions/mean_length" in logs:
            self.lengths.append(logs["completions/mean_length"])


def accuracy(prompts, completions, completion_ids, answer, **kwargs):
    """1 when the extracted answer equals the gold string (plain arithmetic answers), else 0."""
    from reasoner.verify import extract_answer

    def text(c):
        return c[-1]["content"] if isinstance(c, list) else c

    return [float(extract_answer(text(c)) == a) for c, a in zip(completions, answer, strict=True)]


def trl_fields(args: argparse.Namespace, out: str) -> dict:
    return dict(
        output_dir=out, max_steps=args.steps, learning_rate=1e-6, num_generations=args.n,
        per_device_train_batch_size=args.prompts * args.n, max_completion_length=args.max_tokens,
        temperature=1.0, loss_type="dapo", epsilon_high=0.28, beta=0.0, save_strategy="no",
        logging_steps=1, report_to="none", bf16=args.bf16, use_cpu=args.bf16, seed=0,
    )  # fmt: skip


def run_ours(args, problems, out: str):
    from reasoner.config import build_config
    from reasoner.train.trainer import build_trainer, validate_trainer_args
    from rewards import REWARDS

    tree = {
        "model": {"name": args.model},
        "rollout": {"engine": "vllm"},
        "rewards": [{"name": "accuracy"}],
        "advantages": {"normalize": "batch"},
        "trainer": trl_fields(args, out),
    }
    recipe = build_config(tree, rewards=REWARDS, trainer_validators={"grpo": validate_trainer_args})
    timer = WallTimer()
    trainer = build_trainer(recipe, reward_funcs=[accuracy], problems=problems, callbacks=[timer], quiet=True)
    trainer.train()
    split = {k: [] for k in ("generate", "score", "sync", "advantages", "update", "step")}
    for rec in trainer.state.log_history[1:]:
        for key in split:
            if f"time/{key}" in rec:
                split[key].append(rec[f"time/{key}"])
    trainer.rollout.close()
    return timer, {k: statistics.mean(v) for k, v in split.items() if v}


def run_trl(args, problems, out: str):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from reasoner.models import resolve
    from reasoner.prompts import user_message

    path = resolve(args.model)
    rows = [{"prompt": [{"role": "user", "content": user_message(p.question)}], "answer": p.answer}
            for p in problems]  # fmt: skip
    timer = WallTimer()
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(path, dtype="float32"), reward_funcs=[accuracy],
        args=GRPOConfig(**trl_fields(args, out)), train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(path), callbacks=[timer],
    )  # fmt: skip
    trainer.train()
    return timer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per trainer (first one is warm-up)")
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--n", type=int, default=4, help="completions per prompt (num_generations)")
    ap.add_argument("--max-tokens", type=int, default=128, help="max_completion_length")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast in both trainers' updates (GRPOConfig.bf16; "
                    "AMX on recent Xeons); weights stay float32")  # fmt: skip
    args = ap.parse_args()
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    from evals.benchmarks import load_benchmark

    problems = list(load_benchmark("arith", split="train", n=64, seed=0, levels=(1, 2)).problems)
    with tempfile.TemporaryDirectory() as tmp:
        ours, split = run_ours(args, problems, os.path.join(tmp, "ours"))
        ours_load = os.getloadavg()[1]  # 5-minute load average over (most of) the run
        plain = run_trl(args, problems, os.path.join(tmp, "trl"))
        trl_load = os.getloadavg()[1]
    ours_step, trl_step = statistics.median(ours.steps[1:]), statistics.median(plain.steps[1:])
    print(f"model {args.model}, {args.prompts} prompts x {args.n} samples, max {args.max_tokens} tokens, "
          f"{args.steps - 1} timed steps, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"plain TRL (transformers generate): {trl_step:.2f} s/step, mean length "
          f"{statistics.mean(plain.lengths):.0f} tokens, 5-min load average {trl_load:.1f}")  # fmt: skip
    print(f"ours (vLLM rollouts):             {ours_step:.2f} s/step, mean length "
          f"{statistics.mean(ours.lengths):.0f} tokens, 5-min load average {ours_load:.1f}")  # fmt: skip
    print("ours, mean split (s): " + ", ".join(f"{k} {v:.3f}" for k, v in split.items()))
    share = split.get("advantages", 0.0) / split["step"]
    print(f"ratio ours / TRL step time: {ours_step / trl_step:.2f} (target <= 0.7)")
    print(f"advantage post-processing share of our step: {100 * share:.2f}% (target <= 5%)")


if __name__ == "__main__":
    main()
