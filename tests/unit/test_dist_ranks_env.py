"""The pure part of ``reasoner.dist.run_ranks``: how actors on nodes become torch.distributed ranks (torchrun's
numbering: contiguous per node, LOCAL_RANK within the node), the env each rank gets, and argument checks."""

from __future__ import annotations

import pytest

from reasoner.dist.ranks import RankSlot, assign_ranks, check_args, rank_env


@pytest.mark.parametrize(
    ("node_ips", "expected"),
    [
        (["a"], [(0, 0, 1, 0)]),
        (["a", "a"], [(0, 0, 2, 0), (1, 1, 2, 0)]),
        # interleaved bundles: ranks become contiguous per node, the first actor stays rank 0
        (["a", "b", "a", "b"], [(0, 0, 2, 0), (2, 0, 2, 1), (1, 1, 2, 0), (3, 1, 2, 1)]),
        # uneven nodes; node numbering follows first appearance, not the IP's sort order
        (["b", "a", "a"], [(0, 0, 1, 0), (1, 0, 2, 1), (2, 1, 2, 1)]),
        (["x", "y", "z"], [(0, 0, 1, 0), (1, 0, 1, 1), (2, 0, 1, 2)]),
    ],
)  # fmt: skip  (expected: rank, local_rank, local_world_size, node_rank per actor)
def test_assign_ranks_is_torchrun_numbering(node_ips, expected):
    slots = assign_ranks(node_ips)
    assert [(s.rank, s.local_rank, s.local_world_size, s.node_rank) for s in slots] == expected
    assert sorted(s.rank for s in slots) == list(range(len(node_ips)))
    assert {s.num_nodes for s in slots} == {len(set(node_ips))}
    assert all(s.cuda_visible_devices is None for s in slots)


@pytest.mark.parametrize(
    ("node_ips", "gpu_ids", "visible"),
    [
        (["a", "a"], [["3"], ["1"]], ["3,1", "3,1"]),  # cuda:LOCAL_RANK is the rank's own GPU
        (["a", "b", "a"], [[0], [0], [1]], ["0,1", "0", "0,1"]),  # ints from ray.get_gpu_ids
    ],
)
def test_gpu_ranks_share_their_nodes_devices_in_local_rank_order(node_ips, gpu_ids, visible):
    slots = assign_ranks(node_ips, gpu_ids)
    assert [s.cuda_visible_devices for s in slots] == visible
    for slot, own in zip(slots, gpu_ids, strict=True):
        assert slot.cuda_visible_devices.split(",")[slot.local_rank] == str(own[0])


@pytest.mark.parametrize(
    "gpu_ids",
    [[["0"], ["0"]], [["0", "1"], ["2", "3"]], [[], ["1"]]],
    ids=["shared-gpu", "two-gpus-per-rank", "no-gpu"],
)
def test_gpu_ranks_need_one_distinct_gpu_each(gpu_ids):
    with pytest.raises(ValueError, match="node a: .*exactly one GPU each"):
        assign_ranks(["a", "a"], gpu_ids)


def test_rank_env_is_torchruns_plus_backend_env():
    slot = RankSlot(rank=3, local_rank=1, local_world_size=2, node_rank=1, num_nodes=2)
    env = rank_env(slot, 4, "10.0.0.1", 29500, {"NCCL_DEBUG": "INFO"})
    assert env == {
        "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "1", "NODE_RANK": "1", "GROUP_WORLD_SIZE": "2",
        "NCCL_DEBUG": "INFO",
    }  # fmt: skip
    gpu = RankSlot(0, 0, 1, 0, 1, cuda_visible_devices="2")
    pinned = rank_env(gpu, 1, "h", 1, {"MASTER_PORT": 6000})  # backend_env may pin the port
    assert pinned["MASTER_PORT"] == "6000"
    assert rank_env(gpu, 1, "h", 1)["CUDA_VISIBLE_DEVICES"] == "2"


@pytest.mark.parametrize(
    ("nproc", "num_gpus", "placement", "match"),
    [
        (0, 0, "PACK", "--nproc must be an integer >= 1, got 0"),
        (-2, 0, None, "--nproc .* got -2"),
        (2.0, 0, None, "--nproc .* got 2.0"),
        (2, 0.5, "PACK", "num_gpus must be 0 or 1 .* got 0.5"),
        (2, 0, "pack", "placement must be one of .* got 'pack'"),
    ],
)
def test_check_args_names_the_bad_argument(nproc, num_gpus, placement, match):
    with pytest.raises(ValueError, match=match):
        check_args(nproc, num_gpus, placement)
