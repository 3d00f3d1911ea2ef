"""The data-parallel trainer on CUDA: NCCL equivalence of 2 learner processes (needs 2 GPUs) and a bf16 step.

Skipped without CUDA. The scripted engine and the learner of ``test_train_distributed`` are reused; the
problems come from the ``multistep`` benchmark (pure Python, so a bare GPU image needs no reasoning-gym).
"""

from __future__ import annotations

import pytest
import torch
from test_train_distributed import GLOBAL_ROWS, _assert_same_steps, train_worker

pytestmark = pytest.mark.gpu
GPU = ["data.benchmark=multistep"]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL equivalence needs 2 CUDA GPUs")
@pytest.mark.parametrize("recipe", ["grpo", "dler", "d3s"])
def test_two_gpu_processes_over_nccl_train_like_one(recipe, tmp_path):
    from reasoner.train.launch import launch_local

    [one] = launch_local(train_worker, (recipe, GLOBAL_ROWS, str(tmp_path / "one"), {}, GPU), nproc=1)
    two = launch_local(train_worker, (recipe, GLOBAL_ROWS // 2, str(tmp_path / "two"), {}, GPU), nproc=2)
    assert one["moved"] > 1e-3
    for rank in two:
        _assert_same_steps(one["steps"], rank["steps"])
    gap = max(float((one["weights"][k] - two[0]["weights"][k]).abs().max()) for k in one["weights"])
    print(f"{recipe} on CUDA/NCCL: |1 proc - 2 procs| max {gap:.3g}")
    assert gap <= 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_one_gpu_trains_and_the_sync_check_sees_the_engine(dtype, tmp_path):
    """A real engine (transformers on the GPU) and the learner on the GPU: 2 DLER steps; the weight-sync
    check's gap stays under the default threshold in fp32 and bf16."""
    import json

    from reasoner.train.cli import train_recipe

    out = tmp_path / dtype
    overrides = [*GPU, "model.name=tiny-random-qwen2", "rollout.engine=hf", "data.n=12", "data.levels=[1]",
                 "trainer.max_steps=2", "trainer.per_device_train_batch_size=8", "trainer.num_generations=4",
                 "trainer.max_completion_length=16", "trainer.save_strategy=no", f"model.dtype={dtype}",
                 f"trainer.bf16={str(dtype == 'bfloat16').lower()}", f"trainer.output_dir={out}"]  # fmt: skip
    trainer = train_recipe("dler", overrides, quiet=True)
    assert trainer.state.global_step == 2 and next(trainer.model.parameters()).is_cuda
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    gaps = [r["sync/logprob_gap_mean"] for r in records if "sync/logprob_gap_mean" in r]
    print(f"{dtype} on CUDA: sync/logprob_gap_mean per step {gaps}")
    assert len(gaps) == 2 and max(gaps) < 0.5
