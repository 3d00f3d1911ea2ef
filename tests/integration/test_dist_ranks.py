"""``reasoner.dist.run_ranks``: two gloo ranks on a local Ray agree on an all_reduce with torchrun's env (and
Ray is shut down only by the call that started it), a rank that raises ends the run with ``RankFailedError``
naming it while the other rank, blocked in a barrier, is killed, and ``nproc=0`` names ``--nproc``."""

from __future__ import annotations

import os
import time

import pytest

from reasoner.dist import RankFailedError, run_ranks

pytestmark = pytest.mark.ray


def _all_reduce_rank():
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")  # env:// from MASTER_ADDR/PORT, RANK, WORLD_SIZE
    try:
        value = torch.tensor([dist.get_rank() + 1.0])
        dist.all_reduce(value)
        return dist.get_rank(), dist.get_world_size(), value.item(), os.environ["LOCAL_RANK"]
    finally:
        dist.destroy_process_group()


def _fail_on(bad_rank: int, message: str):
    import torch.distributed as dist

    dist.init_process_group("gloo")
    if dist.get_rank() == bad_rank:
        raise ValueError(message)
    dist.barrier()  # blocks: the failed rank never arrives, so this rank must be killed


def test_two_gloo_ranks_all_reduce_and_ray_is_shut_down():
    import ray

    assert not ray.is_initialized()
    out = run_ranks(_all_reduce_rank, nproc=2, num_cpus=1, timeout_s=120)
    assert out == [(0, 2, 3.0, "0"), (1, 2, 3.0, "1")]
    assert not ray.is_initialized()  # this call started Ray, so it shut it down


def test_failing_rank_is_named_and_the_blocked_rank_killed():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        named = r"rank 1 \(node [\d.]+\) failed: ValueError: boom on rank 1"
        with pytest.raises(RankFailedError, match=named):
            run_ranks(_fail_on, (1, "boom on rank 1"), nproc=2, num_cpus=1, placement=None, timeout_s=120)
        assert ray.is_initialized()  # started by the caller: left running
        deadline = time.monotonic() + 30  # both rank actors are gone (Ray frees their CPUs asynchronously)
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray.available_resources().get("CPU", 0) == 2
    finally:
        ray.shutdown()


def test_nproc_zero_names_the_flag():
    with pytest.raises(ValueError, match="--nproc .* got 0"):
        run_ranks(_all_reduce_rank, nproc=0)
