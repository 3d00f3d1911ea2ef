"""Every shipped recipe trains 2 steps on the tiny model (transformers engine, 16-token completions), and
``--resume`` continues at the same step with the same data, completions and difficulty state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasoner.config import RECIPES_DIR, recipe_kind

RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
RL_RECIPES = [r for r in RECIPES if recipe_kind(r) == "grpo"]
"""GRPO recipes; SFT recipes (kind: sft) are tested in test_merge_distill.py."""
TINY = [
    "model.name=tiny-random-qwen2",
    "rollout.engine=hf",
    "data.n=12",
    "data.levels=[1]",
    "trainer.max_steps=2",
    "trainer.per_device_train_batch_size=8",
    "trainer.num_generations=4",
    "trainer.max_completion_length=16",
    "trainer.save_strategy=no",
    "advantages.dynamic_sampling.max_rounds=1",
]
PER_RECIPE = {"d3s": ["advantages.d3s.sample_k=2"]}


def test_all_required_recipes_ship():
    assert {"grpo", "dler", "dler_da", "d3s"} <= set(RECIPES) and len(RECIPES) >= 6
    readme = (RECIPES_DIR / "README.md").read_text()
    for name in RECIPES:
        assert f"`{name}`" in readme, f"recipes/README.md has no line for {name}"


@pytest.mark.parametrize("recipe", RL_RECIPES)
def test_recipe_runs_two_steps_on_tiny_model(recipe, tmp_path: Path):
    from reasoner.train.cli import train_recipe

    out = tmp_path / recipe
    trainer = train_recipe(
        recipe, [*TINY, *PER_RECIPE.get(recipe, []), f"trainer.output_dir={out}"], quiet=True
    )
    assert trainer.state.global_step == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for key in ("completions/mean_length", "frac_reward_zero_std", "reasoner/kept_samples",
                "reasoner/kept_tokens", "time/generate", "time/update", "time/advantages"):  # fmt: skip
        assert key in steps[-1], key
    assert (out / "recipe.yaml").exists() and (out / "model.safetensors").exists()
    if recipe == "dler_da":  # the trainer passes running pass rates; the reward logs the caps it derives
        assert all("pass_rate" in g.columns for g in trainer.last_batch.groups)
        assert 48 <= steps[-1]["difficulty/mean_cap"] <= 96


def _run(out: Path, steps: int, resume: bool = False):
    from reasoner.train.cli import train_recipe

    overrides = [
        *TINY,
        f"trainer.max_steps={steps}",
        "trainer.save_strategy=steps",
        "trainer.save_steps=1",
        f"trainer.output_dir={out}",
        "difficulty.prune.enabled=true",
        "data.n=6",
    ]
    return train_recipe("dler_da", overrides, resume=True if resume else None, quiet=True)


def _snapshot(trainer):
    batch = trainer.last_batch
    return {
        "step": trainer.state.global_step,
        "problems": [g.problem.id for g in batch.groups],
        "completions": [[c.token_ids for c in g.completions] for g in batch.groups],
        "rewards": batch.rewards.tolist(),
        "difficulty": trainer.difficulty.state_dict(),
    }


def test_resume_continues_same_step_data_and_difficulty(tmp_path: Path):
    straight = _snapshot(_run(tmp_path / "a", steps=2))
    _run(tmp_path / "b", steps=1)
    assert (tmp_path / "b" / "checkpoint-1" / "reasoner_state.json").exists()
    resumed_trainer = _run(tmp_path / "b", steps=2, resume=True)
    resumed = _snapshot(resumed_trainer)
    assert resumed["step"] == straight["step"] == 2
    assert resumed["problems"] == straight["problems"]
    assert resumed["completions"] == straight["completions"]
    assert resumed["rewards"] == straight["rewards"]
    assert resumed["difficulty"] == straight["difficulty"]
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps[:2] == [1, 2] or 2 in steps  # step 2 was trained by the resumed run


def test_cli_rejects_unknown_keys_naming_them(capsys):
    from reasoner.cli import main

    for args, named in [
        (["train", "grpo", "trainer.learning_rte=1e-6"], "trainer.learning_rte"),
        (["train", "grpo", "rollout.enigne=hf"], "rollout.enigne"),
        (["train", "grpo", "ray.adress=head:6379"], "ray.adress"),
        (["train", "no_such_recipe"], "no_such_recipe"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
        assert named in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "dler", "trainer.learning_rate=1e-6", "trainer.max_steps=7", "--print-config"],
        ["train", "dler", "--print-config", "trainer.learning_rate=1e-6", "trainer.max_steps=7"],
        ["train", "dler", "trainer.learning_rate=1e-6", "--print-config", "trainer.max_steps=7"],
    ],
)
def test_cli_print_config_applies_overrides_wherever_the_flag_is(argv, capsys):
    import yaml

    from reasoner.cli import main

    assert main(argv) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["trainer"]["learning_rate"] == 1e-6 and printed["trainer"]["max_steps"] == 7
    assert printed["advantages"]["normalize"] == "batch"


def test_cli_still_rejects_unknown_flags(capsys):
    from reasoner.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "dler", "--print-config", "--bogus"])
    assert exit_.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_bf16_without_cuda_means_cpu_autocast(tmp_path):
    """``trainer.bf16=true`` on a machine without CUDA: TRL refuses bf16 unless ``use_cpu``; we imply it (and
    always set ``use_cpu`` without CUDA: accelerate joins CPU processes into one group only with it)."""
    import torch

    from reasoner.train.cli import resolved_recipe
    from reasoner.train.trainer import grpo_config

    if torch.cuda.is_available():
        pytest.skip("CPU-only behaviour")
    args = grpo_config(resolved_recipe("grpo", ["trainer.bf16=true", f"trainer.output_dir={tmp_path}"]))
    assert args.bf16 and args.use_cpu
    args = grpo_config(resolved_recipe("grpo", [f"trainer.output_dir={tmp_path}"]))
    assert not args.bf16 and args.use_cpu
