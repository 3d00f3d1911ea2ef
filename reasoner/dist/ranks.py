"""``run_ranks``: torch.distributed learner ranks placed by Ray across nodes, without SSH or Slurm.

``run_ranks(fn, args, kwargs, nproc=N)`` starts N Ray actors (one per rank; ``num_cpus`` / ``num_gpus`` each,
in a placement group of strategy ``placement`` unless None), asks each for its node IP (and GPU ids), numbers
the ranks as torchrun does, sets the torch.distributed environment in every actor, runs ``fn(*args, **kwargs)``
in all of them at once and returns the per-rank return values in rank order. It is what Ray Train's
``TorchTrainer`` does, minus the dependency on ``ray[train]`` (and its checkpointing, which our trainer owns).

Env contract (what ``fn`` sees, as under ``torchrun``; ``init_process_group(backend)`` uses ``env://``):
- ``MASTER_ADDR`` / ``MASTER_PORT``: rank 0's node IP (``ray.util.get_node_ip_address`` in its actor) and a
  TCP port that was free there a moment before; ``RANK`` / ``WORLD_SIZE``.
- Ranks are contiguous per node: nodes are numbered in the order their first actor appears, so the node
  of the first actor is node 0 and holds rank 0. ``LOCAL_RANK`` / ``LOCAL_WORLD_SIZE``: the rank's index
  among, and the number of, the ranks on its node; ``GROUP_RANK`` = ``NODE_RANK``: the node's number;
  ``GROUP_WORLD_SIZE``: the number of nodes.
- With GPUs (``num_gpus=1``: one GPU per rank, as torchrun) Ray gives each actor its own GPU; the ranks on
  a node then all see that node's GPUs of this run, in local-rank order (``CUDA_VISIBLE_DEVICES``, as Ray
  Train's shared visible devices), so ``cuda:LOCAL_RANK`` is the rank's own GPU and NCCL can use P2P/NVLink
  between ranks of a node.
- ``backend_env`` (NCCL_DEBUG, GLOO_SOCKET_IFNAME, ...) is applied last: it may pin ``MASTER_PORT`` to a
  port your firewall opens (no free-port probe then).

Failure: the first rank to raise (or die) ends the run: every actor is killed (the others may be blocked in
a collective) and ``RankFailedError`` names the rank, its node IP and the remote exception's message. Past
``timeout_s`` (None: no limit), all ranks are killed and ``TimeoutError`` names the ranks still running.

Where the code runs: each actor first enters the driver's working directory (when that path exists on its
node) and puts the driver's ``sys.path`` entries that exist there in front of its own, so a module-level
``fn`` (``reasoner.*``, a test module) unpickles by reference. On a local Ray the workers inherit the
driver's environment; on a cluster (``address`` / ``$RAY_ADDRESS``) every node needs the same Python
environment and the same checkout path as the driver (as for the rollout pool), and the driver runs from
the checkout's root (Ray adds that directory to its workers' path) unless ``reasoner`` is installed.
``fn``, its arguments and its return values must pickle. Ray is started (``ensure_ray``) when not running
and shut down at the end only if this call started it.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasoner.dist.common import RankFailedError, ensure_ray
from reasoner.types import filled

log = logging.getLogger("reasoner.dist")

PLACEMENTS = (None, "PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


@dataclass(frozen=True)
class RankSlot:
    """Where one actor sits in the torch.distributed world (``assign_ranks``)."""

    rank: int
    local_rank: int
    local_world_size: int
    node_rank: int
    num_nodes: int
    cuda_visible_devices: str | None = None
    """The node's GPUs of this run in local-rank order (GPU runs), else None (Ray's setting stays)."""


def assign_ranks(
    node_ips: Sequence[str], gpu_ids: Sequence[Sequence[str | int]] | None = None
) -> list[RankSlot]:
    """Slot of each actor (in actor order) given its node IP and, for GPU runs, its Ray GPU ids.

    As torchrun: ranks are contiguous per node, nodes numbered by first appearance (actor 0 is rank 0),
    actors of a node keep their order. With ``gpu_ids`` every actor must hold exactly one GPU, distinct on
    its node; a node's actors then all see its GPUs in local-rank order, so ``cuda:LOCAL_RANK`` is the own one.
    """
    nodes: dict[str, list[int]] = {}
    for i, ip in enumerate(node_ips):
        nodes.setdefault(ip, []).append(i)
    slots: list[RankSlot | None] = [None] * len(node_ips)
    rank = 0
    for node_rank, (ip, members) in enumerate(nodes.items()):
        devices = None if gpu_ids is None else _node_devices(ip, [list(gpu_ids[i]) for i in members])
        for local_rank, i in enumerate(members):
            slots[i] = RankSlot(rank, local_rank, len(members), node_rank, len(nodes), devices)
            rank += 1
    return filled(slots, "rank slots")


def _node_devices(ip: str, ids: list[list[Any]]) -> str:
    ids = [[str(g) for g in one] for one in ids]
    flat = [g for one in ids for g in one]
    if any(len(one) != 1 for one in ids) or len(set(flat)) != len(flat):
        raise ValueError(
            f"node {ip}: torch.distributed ranks need exactly one GPU each, distinct on a node; "
            f"the ranks there hold GPU ids {ids}"
        )
    return ",".join(flat)


def rank_env(slot: RankSlot, world_size: int, master_addr: str, master_port: int | str,
             backend_env: Mapping[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    """The environment torchrun would give this rank, then ``backend_env`` on top."""
    env = {
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "RANK": str(slot.rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(slot.local_rank),
        "LOCAL_WORLD_SIZE": str(slot.local_world_size),
        "GROUP_RANK": str(slot.node_rank),
        "NODE_RANK": str(slot.node_rank),
        "GROUP_WORLD_SIZE": str(slot.num_nodes),
    }
    if slot.cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot.cuda_visible_devices
    env.update({k: str(v) for k, v in (backend_env or {}).items()})
    return env


def check_args(nproc: int, num_gpus: float, placement: str | None) -> None:
    """ValueError naming the first argument ``run_ranks`` cannot use."""
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"--nproc must be an integer >= 1, got {nproc!r}")
    if num_gpus not in (0, 1):
        raise ValueError(f"num_gpus must be 0 or 1 (one GPU per rank, as torchrun), got {num_gpus!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")


class _Rank:
    """One rank's process (wrapped by ``ray.remote`` in ``_remote_rank``)."""

    def __init__(self, cwd: str, sys_path: list[str]):
        if os.path.isdir(cwd):
            os.chdir(cwd)
        sys.path[:0] = [p for p in sys_path if p not in sys.path and os.path.isdir(p)]

    def where(self) -> tuple[str, list[str]]:
        import ray

        return ray.util.get_node_ip_address(), [str(g) for g in ray.get_gpu_ids()]

    def free_port(self) -> int:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            return s.getsockname()[1]

    def run(self, call: tuple[Callable[..., Any], tuple, dict], env: dict[str, str]) -> Any:
        os.environ.update(env)
        fn, args, kwargs = call
        return fn(*args, **kwargs)


@functools.cache
def _remote_rank() -> Any:
    import ray

    return ray.remote(_Rank)


def run_ranks(
    fn: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, *, nproc: int,
    address: str | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0, placement: str | None = "PACK",
    backend_env: Mapping[str, str] | None = None, timeout_s: float | None = None, log_to_driver: bool = True,
) -> list[Any]:  # fmt: skip
    """Run ``fn(*args, **kwargs)`` in ``nproc`` torch.distributed ranks placed by Ray; the return values in
    rank order (the module docstring has the env contract). ``log_to_driver``: print the ranks' output here
    (only when this call starts or joins Ray)."""
    import ray

    check_args(nproc, num_gpus, placement)
    owns = ensure_ray(address, debug=log_to_driver)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pg, actors = None, []
    try:
        _warn_if_too_big(nproc, num_cpus, num_gpus)
        if placement is not None:
            from ray.util.placement_group import placement_group

            bundle = {"CPU": num_cpus, **({"GPU": num_gpus} if num_gpus else {})}
            pg = placement_group([bundle] * nproc, strategy=placement)
        actors = [_spawn(i, pg, num_cpus, num_gpus) for i in range(nproc)]
        where = _start(actors, deadline, timeout_s)
        ips = [ip for ip, _ in where]
        slots = assign_ranks(ips, [ids for _, ids in where] if num_gpus else None)
        first = next(i for i, s in enumerate(slots) if s.rank == 0)
        port = (backend_env or {}).get("MASTER_PORT") or ray.get(actors[first].free_port.remote())
        log.info("ranks: %d on %d node(s), master %s:%s", nproc, slots[0].num_nodes, ips[first], port)
        call = ray.put((fn, tuple(args), dict(kwargs or {})))
        refs = {
            actors[i].run.remote(call, rank_env(slot, nproc, ips[first], port, backend_env)): i
            for i, slot in enumerate(slots)
        }
        results: list[Any] = [None] * nproc
        for i, value in _as_completed(refs, slots, ips, deadline, timeout_s):
            results[slots[i].rank] = value
        return results
    finally:
        for actor in actors:  # the others may be blocked in a collective: kill, never wait
            ray.kill(actor, no_restart=True)
        if pg is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(pg)
        if owns:
            ray.shutdown()


def _spawn(index: int, pg: Any, num_cpus: float, num_gpus: float) -> Any:
    opts: dict[str, Any] = dict(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0, max_task_retries=0)
    if pg is not None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)
    paths = [p for p in sys.path if isinstance(p, str) and p]
    return _remote_rank().options(**opts).remote(os.getcwd(), paths)


def _start(actors: list[Any], deadline: float | None, timeout_s: float | None) -> list[tuple[str, list[str]]]:
    """Each actor's (node IP, GPU ids), once all have started; RankFailedError names one that could not."""
    import ray

    refs = {a.where.remote(): i for i, a in enumerate(actors)}
    where: list[Any] = [None] * len(actors)
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1, timeout=_left(deadline))
        if not done:
            raise TimeoutError(
                f"run_ranks: {len(refs)} of {len(actors)} rank actors not started after timeout_s={timeout_s:g} "
                f"(not enough CPUs/GPUs in the cluster?)"
            )
        i = refs.pop(done[0])
        try:
            where[i] = ray.get(done[0])
        except ray.exceptions.RayError as err:
            raise RankFailedError(f"rank actor {i} failed to start: {_message(err)}") from err
    return where


def _as_completed(refs: dict[Any, int], slots: list[RankSlot], ips: list[str], deadline: float | None,
                  timeout_s: float | None):  # fmt: skip
    """Yield (actor index, return value) as ranks finish; the first failure raises RankFailedError."""
    import ray

    while refs:
        done, _ = ray.wait(list(refs), num_returns=1, timeout=_left(deadline))
        if not done:
            running = sorted(slots[i].rank for i in refs.values())
            raise TimeoutError(f"run_ranks: ranks {running} still running after timeout_s={timeout_s:g}")
        i = refs.pop(done[0])
        try:
            yield i, ray.get(done[0])
        except ray.exceptions.RayError as err:
            raise RankFailedError(f"rank {slots[i].rank} (node {ips[i]}) failed: {_message(err)}") from err


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _message(err: Exception) -> str:
    """The remote exception as ``Type: message``; a dead process as Ray's first line about it."""
    import ray

    cause = getattr(err, "cause", None)
    if isinstance(err, ray.exceptions.RayTaskError) and cause is not None:
        return f"{type(cause).__name__}: {cause}"
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _warn_if_too_big(nproc: int, num_cpus: float, num_gpus: float) -> None:
    """A request beyond the cluster's current resources waits for an autoscaler, or forever: say so."""
    import ray

    have = ray.cluster_resources()
    for name, each in (("CPU", num_cpus), ("GPU", num_gpus)):
        if each and nproc * each > have.get(name, 0):
            log.warning(
                "ranks: %d ranks x %g %s exceed the cluster's %g %s; waiting for more nodes",
                nproc, each, name, have.get(name, 0), name,
            )  # fmt: skip
