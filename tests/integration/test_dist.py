"""The Ray rollout pool (``reasoner.dist``): GRPO through a 2-worker pool with checksummed weight sync, a
worker killed mid-rollout, a sync timeout that names the worker, the off-policy lag check, and (GPU only)
the NCCL transport. One local Ray instance serves the whole module."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

TINY = [
    "model.name=tiny-random-qwen2",
    "rollout.engine=hf",
    "data.n=8",
    "data.levels=[1]",
    "trainer.max_steps=2",
    "trainer.per_device_train_batch_size=8",
    "trainer.num_generations=4",
    "trainer.max_completion_length=16",
    "trainer.save_strategy=no",
]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(ray_local):
    from reasoner.dist import RolloutPool
    from reasoner.train.rollout import make_rollout_source

    source = make_rollout_source("hf", "tiny-random-qwen2", dtype="float32", workers=2, num_cpus=0.5,
                                 sync_timeout_s=120, pool=RolloutPool)  # fmt: skip
    yield source
    source.close()


class _Checked:
    """The pool as the trainer sees it; after each sync records (trainer checksum, worker checksums)."""

    def __init__(self, pool):
        self.pool, self.tokenizer, self.syncs = pool, pool.tokenizer, []

    @property
    def version(self):
        return self.pool.version

    @version.setter
    def version(self, value):
        self.pool.version = value

    def generate(self, prompts, spec, *, entropies=False):
        return self.pool.generate(prompts, spec, entropies=entropies)

    def sync_weights(self, named_tensors, version):
        from reasoner.dist import state_checksum

        named = list(named_tensors)
        self.pool.sync_weights(named, version)
        names = [n for n, _ in named]
        self.syncs.append((version, state_checksum(named), self.pool.checksums(names)))

    def close(self):
        pass


def test_split_sizes_proportional_and_complete():
    from reasoner.dist import split_sizes

    assert split_sizes(10, [1, 1]) == [5, 5]
    assert split_sizes(7, [3, 1]) in ([5, 2], [6, 1])
    assert split_sizes(1, [1, 1, 1]) == [1, 0, 0]
    assert sum(split_sizes(101, [0.3, 2.5, 1.0])) == 101


def test_grpo_two_steps_through_pool_sync_matches_trainer(pool, tmp_path: Path):
    from reasoner.train.cli import train_recipe

    checked = _Checked(pool)
    trainer = train_recipe("grpo", [*TINY, f"trainer.output_dir={tmp_path}"], rollout=checked, quiet=True)
    assert trainer.state.global_step == 2
    assert [v for v, _, _ in checked.syncs] == [1, 2]
    for version, ours, theirs in checked.syncs:
        assert theirs == [ours, ours], f"worker weights differ from the trainer's after sync {version}"
    assert pool.version == 2 and pool.worker_versions == [2, 2]
    assert set(pool.last_versions) == {1}  # step 2 generated with the weights of step 1


def test_recipe_workers_override_trains_through_a_pool(ray_local, tmp_path: Path):
    """``reasoner train grpo rollout.workers=2 ray.*=...``: the recipe's own pool, built from the config."""
    from reasoner.dist import RolloutPool
    from reasoner.train.cli import train_recipe

    overrides = [*TINY, "rollout.workers=2", "ray.num_cpus=0.5", "ray.placement=null", "ray.sync_timeout_s=120",
                 f"trainer.output_dir={tmp_path}"]  # fmt: skip
    trainer = train_recipe("grpo", overrides, quiet=True)
    assert trainer.state.global_step == 2
    pool = trainer.rollout
    assert isinstance(pool, RolloutPool) and pool.sync_timeout_s == 120 and pool.transport == "object_store"
    assert pool.version == 2 and pool.worker_versions == [2, 2]  # both workers got both syncs
    assert pool.actors == []  # train_recipe built the pool, so it released it


def test_killed_worker_is_restarted_and_generate_completes(pool):
    import ray

    from reasoner.types import SampleSpec

    prompts = [[3, 4, 5, 6 + i] for i in range(8)]
    spec = SampleSpec(n=4, max_tokens=256, temperature=1.0, seed=7)
    restarts = pool.restarts
    # Killed before the call, not 0.5 s into it: on a quiet machine the tiny model finished the whole call in
    # under 0.5 s, so the kill landed after it and nothing was restarted (a race, not a test of the pool).
    ray.kill(pool.actors[1])
    groups = pool.generate(prompts, spec)
    assert len(groups) == len(prompts) and all(len(g) == 4 and g[0].token_ids for g in groups)
    assert pool.restarts == restarts + 1
    assert pool.worker_versions == [pool.version] * 2  # the new worker got the current weights
    assert len(set(pool.checksums())) == 1


def test_sync_timeout_names_worker_and_stale_worker_is_refused(ray_local):
    from reasoner.dist import RolloutPool, StaleWeightsError, SyncTimeoutError
    from reasoner.dist.pool import _Worker
    from reasoner.types import SampleSpec

    class SlowLinkWorker(_Worker):  # defined here, so Ray ships the class by value
        def load_weights(self, packed, version):
            time.sleep(4.0)  # a slow link
            return super().load_weights(packed, version)

    class SlowLinkPool(RolloutPool):
        worker_class = SlowLinkWorker

    slow = SlowLinkPool("hf", "tiny-random-qwen2", workers=1, dtype="float32", num_cpus=0.5, placement=None,
                        sync_timeout_s=1.0)  # fmt: skip
    try:
        named = [(n, t + 0.01) for n, t in _weights()]
        with pytest.raises(SyncTimeoutError, match=r"worker 0 \(actor id [0-9a-f]+\) did not finish loading "
                           r"weights version 3 within 1 s"):  # fmt: skip
            slow.sync_weights(named, version=3)
        spec = SampleSpec(n=1, max_tokens=4, seed=0)
        with pytest.raises(StaleWeightsError, match="max_lag=0"):
            slow.generate([[1, 2, 3]], spec)  # the load is still running: version 0 must not be used
        slow.sync_timeout_s = 120.0  # now generate waits for the pending load instead of refusing
        assert len(slow.generate([[1, 2, 3]], spec)) == 1 and slow.last_versions == [3]
    finally:
        slow.close()


def test_eval_workers_rows_equal_single_engine_rows(ray_local, tmp_path: Path):
    """``reasoner eval --workers 2``: work units run on 2 engine actors; the rows equal a 1-engine run's."""
    from evals.runner import RunDir, run_sweep
    from evals.sweep import EvalConfig
    from reasoner.dist import map_with_engines

    config = EvalConfig(model="tiny-random-qwen2", engine="hf", dtype="float32", limit=4, budgets=[8],
                        strategies=["greedy", "majority:k=2"], batch_size=2)  # fmt: skip
    rows = {}
    for workers in (0, 2):
        run = RunDir(tmp_path / f"w{workers}")
        run.prepare(config)
        stats = run_sweep(config, run, workers=workers, map_with_engines=map_with_engines, progress=False)
        assert stats.units_run == 2
        rows[workers] = [r.model_copy(update={"wall_s": 0.0, "measured_s": 0.0}) for r in run.read_rows()]
    assert rows[2] == rows[0]


def _weights():
    import torch
    from transformers import AutoModelForCausalLM

    from reasoner.models import resolve

    model = AutoModelForCausalLM.from_pretrained(resolve("tiny-random-qwen2"), dtype=torch.float32)
    return [(n, p.detach()) for n, p in model.named_parameters()]


@pytest.mark.gpu
def test_nccl_sync_matches_trainer_weights(ray_local):
    """Needs 2 GPUs (driver on one, the worker on another; NCCL refuses two ranks on one GPU)."""
    import torch

    from reasoner.dist import RolloutPool, state_checksum

    if torch.cuda.device_count() < 2:
        pytest.skip("the NCCL transport test needs 2 GPUs")
    pool = RolloutPool("hf", "tiny-random-qwen2", workers=1, dtype="float32", num_cpus=0.5, num_gpus=1,
                       placement=None, transport="nccl", sync_timeout_s=120)  # fmt: skip
    try:
        named = [(n, (t + 0.01).cuda()) for n, t in _weights()]
        pool.sync_weights(named, version=1)
        assert pool.checksums([n for n, _ in named]) == [state_checksum(named)]
    finally:
        pool.close()
