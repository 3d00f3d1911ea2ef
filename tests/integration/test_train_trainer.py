"""The trainer on the tiny model: dynamic sampling alignment through TRL, LoRA weight sync, vLLM weight sync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from reasoner.config import build_config
from reasoner.types import Problem, SampleSpec

N = 4


def problems(k: int = 12) -> list[Problem]:
    """Even-indexed problems are 'constant' (their reward never varies): dynamic sampling must replace them."""
    return [Problem(f"p{i}", f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(k)]


class NoParams(BaseModel):
    """The recipe's entry for ``AlignedReward`` (a test reward outside ``rewards.REWARDS``): no parameters."""

    model_config = ConfigDict(extra="forbid")


class AlignedReward:
    """Varies with the sampled tokens, except for even problems; asserts every row's gold answer belongs to
    the prompt it is shown with (the prompt the rollout actually generated for)."""

    __name__ = "aligned"

    def __init__(self, constant_even: bool = True):
        self.rows: list[tuple[str, str, str]] = []
        self.constant_even = constant_even

    def __call__(self, prompts, completions, completion_ids, answer, problem_id, **kwargs):
        out = []
        for question, gold, pid, ids in zip(prompts, answer, problem_id, completion_ids, strict=True):
            a, b = map(int, re.match(r"What is (\d+) \+ (\d+)", question).groups())
            assert (gold, pid) == (str(a + b), f"p{a}"), f"misaligned row: {pid} {gold} {question!r}"
            self.rows.append((pid, gold, question))
            out.append(1.0 if a % 2 == 0 and self.constant_even else float(sum(ids) % 7))
        return out


def tiny_recipe(tmp_path: Path, *extra: str):
    from reasoner.train.trainer import validate_trainer_args

    tree = {
        "model": {"name": "tiny-random-qwen2"},
        "rollout": {"engine": "hf"},
        "rewards": [{"name": "aligned"}],
    }
    overrides = [
        f"trainer.output_dir={tmp_path}",
        "trainer.max_steps=1",
        "trainer.per_device_train_batch_size=8",
        f"trainer.num_generations={N}",
        "trainer.max_completion_length=16",
        "trainer.save_strategy=no",
        *extra,
    ]
    return build_config(
        tree, overrides, rewards={"aligned": NoParams}, trainer_validators={"grpo": validate_trainer_args}
    )


def hf_rollout(tiny_model, logprobs_mode: str = "raw"):
    from reasoner.engines.hf import HFEngine
    from reasoner.train.rollout import EngineRollout

    return EngineRollout(HFEngine(tiny_model, dtype="float32", logprobs_mode=logprobs_mode))


def greedy(source, tokenizer, question="What is 3 + 4?"):
    from reasoner.prompts import render

    spec = SampleSpec(n=1, max_tokens=12, temperature=0.0)
    return source.generate([render(tokenizer, question)], spec)[0][0].token_ids


def test_dynamic_sampling_refill_aligns_gold_answers_through_trl(tmp_path, tiny_model):
    from reasoner.train.trainer import build_trainer

    recipe = tiny_recipe(tmp_path, "advantages.dynamic_sampling.enabled=true",
                         "advantages.dynamic_sampling.max_rounds=4")  # fmt: skip
    reward = AlignedReward()
    trainer = build_trainer(recipe, reward_funcs=[reward], problems=problems(), rollout=hf_rollout(tiny_model),
                            quiet=True)  # fmt: skip
    trainer.train()
    batch = trainer.last_batch
    tok = trainer.processing_class
    assert bool(batch.keep.all()), "every slot should hold a group with a learning signal"
    assert all(int(g.problem.id[1:]) % 2 == 1 for g in batch.groups), (
        "constant (even) groups were not replaced"
    )
    assert batch.stats["refill_rounds"] >= 1
    for g in batch.groups:  # what TRL trained on: prompt tokens and reward columns of the same problem
        assert g.problem.question in tok.decode(g.prompt_ids)
        assert g.columns["answer"] == [g.problem.answer] * N
        assert {(g.problem.id, g.problem.answer, g.problem.question)} <= set(reward.rows)
    metrics = trainer.state.log_history[0]
    assert metrics["reasoner/refill_rounds"] >= 1 and metrics["reasoner/kept_groups"] == 1.0


def test_lora_run_syncs_merged_weights_and_changes_greedy_output(tmp_path, tiny_model):
    from reasoner.train.sync import merged_weights
    from reasoner.train.trainer import build_trainer

    recipe = tiny_recipe(tmp_path, "lora.enabled=true", "lora.r=8", "trainer.learning_rate=0.3")
    source = hf_rollout(tiny_model)
    trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                            rollout=source, quiet=True)  # fmt: skip
    assert hasattr(trainer.model, "peft_config")
    before = greedy(source, trainer.processing_class)
    trainer.train()
    assert source.version == 1
    after = greedy(source, trainer.processing_class)
    assert after != before, "the engine still generates with the initial weights"
    with merged_weights(trainer.model) as weights:  # the engine holds exactly the merged policy
        engine_state = source.engine.model.state_dict()
        for name, tensor in weights:
            assert torch.equal(engine_state[name], tensor), name
    assert not any("lora" in name for name, _ in weights)


@pytest.mark.vllm
def test_vllm_engine_weight_sync_matches_transformers(tmp_path, tiny_model, vllm_engine):
    from reasoner.train.rollout import EngineRollout
    from reasoner.train.sync import merged_weights, named_weights
    from reasoner.train.trainer import build_trainer

    original = [(k, v.clone()) for k, v in named_weights(hf_rollout(tiny_model).engine.model)]
    source = EngineRollout(vllm_engine)  # the session's engine: restore its weights afterwards
    try:
        recipe = tiny_recipe(tmp_path, "trainer.learning_rate=0.2")
        trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                                rollout=source, quiet=True)  # fmt: skip
        before = greedy(source, trainer.processing_class)
        trainer.train()
        after = greedy(source, trainer.processing_class)
        reference = hf_rollout(tiny_model)
        with merged_weights(trainer.model) as weights:
            reference.sync_weights(weights, version=1)
        assert after != before
        assert after == greedy(reference, trainer.processing_class)  # vLLM and transformers agree
    finally:
        source.sync_weights(original, version=0)


class SkippedSync:
    """A rollout source whose weight sync reports success but loads nothing (trl #5312's failure mode)."""

    def __init__(self, inner):
        self.inner, self.tokenizer, self.version = inner, inner.tokenizer, 0

    def generate(self, prompts, spec, *, entropies=False):
        return self.inner.generate(prompts, spec, entropies=entropies)

    def sync_weights(self, named_tensors, version):
        self.version = version

    def close(self):
        self.inner.close()


def test_weight_sync_check_logs_the_gap_and_catches_a_skipped_sync(tmp_path, tiny_model):
    import json

    from reasoner.train.sync import WeightSyncError
    from reasoner.train.trainer import build_trainer

    recipe = tiny_recipe(tmp_path, "trainer.max_steps=2", "trainer.learning_rate=0.05")
    trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                            rollout=hf_rollout(tiny_model), quiet=True)  # fmt: skip
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    gaps = [r["sync/logprob_gap_mean"] for r in records if "sync/logprob_gap_mean" in r]
    assert len(gaps) == 2 and max(gaps) < 1e-4, gaps  # fp32 engine and learner hold the same weights

    recipe = tiny_recipe(tmp_path / "skip", "trainer.max_steps=2", "trainer.learning_rate=0.05")
    trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                            rollout=SkippedSync(hf_rollout(tiny_model)), quiet=True)  # fmt: skip
    with pytest.raises(WeightSyncError, match=r"^step 1: the rollout engine's logprobs"):
        trainer.train()
