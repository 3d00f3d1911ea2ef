"""Every registered reward through TRL's GRPOTrainer for one step on the tiny random model (CPU)."""

from __future__ import annotations

import math

import pytest

from rewards import REWARDS

PARAMS = {
    "truncation": {"max_length": 6},
    "difficulty_truncation": {"max_length": 8, "min_length": 4},
    "soft_overlong": {"max_length": 8, "cache_length": 4},
    "cosine": {"max_length": 8},
    "l1_exact": {"target_length": 4},
    "l1_max": {"target_length": 4},
}


def tiny_dataset(conversational: bool):
    from datasets import Dataset

    questions = [f"What is {a} + {a + 1}? Put the answer in \\boxed{{}}." for a in range(4)]
    prompts = [[{"role": "user", "content": q}] for q in questions] if conversational else questions
    return Dataset.from_dict(
        {
            "prompt": prompts,
            "answer": [str(2 * a + 1) for a in range(4)],
            "problem_id": [f"p{a}" for a in range(4)],
        }
    )


@pytest.mark.parametrize("conversational", [True, False], ids=["conversational", "plain"])
def test_every_reward_runs_one_grpo_step(tmp_path, tiny_model, conversational):
    from trl import GRPOConfig, GRPOTrainer

    funcs = [REWARDS[name](**PARAMS.get(name, {})) for name in REWARDS]
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        max_steps=1,
        learning_rate=1e-5,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=tiny_model, reward_funcs=funcs, args=args, train_dataset=tiny_dataset(conversational)
    )
    trainer.train()
    logged = {k: v for entry in trainer.state.log_history for k, v in entry.items()}
    for name in REWARDS:
        value = logged[f"rewards/{name}/mean"]
        assert math.isfinite(value), f"{name} produced no reward"
    assert trainer.state.global_step == 1
