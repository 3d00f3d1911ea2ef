"""``RolloutPool``: N engine workers in Ray actors behind the ``RolloutSource`` interface, with versioned
weight sync (object store or NCCL), off-policy lag, and restart/re-dispatch of failed workers. The design is in
the ``reasoner.dist`` docstring."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from reasoner.dist.common import (
    StaleWeightsError,
    SyncTimeoutError,
    WorkerFailedError,
    ensure_ray,
    split_sizes,
)
from reasoner.types import Completion, SampleSpec
from reasoner.weights import from_wire, state_checksum, to_wire

if TYPE_CHECKING:
    from ray import ObjectRef

log = logging.getLogger("reasoner.dist")


class _Worker:
    """One engine in a Ray actor (wrapped by ``ray.remote`` in ``_remote_worker``)."""

    def __init__(self, engine: str, model: str, dtype: str, seed: int, engine_kwargs: dict[str, Any],
                 version: int = 0):  # fmt: skip
        from reasoner.engines import load_engine

        self.engine = load_engine(engine, model, dtype=dtype, seed=seed, **engine_kwargs)
        self.version, self._pg = version, None

    def ready(self) -> int:
        return os.getpid()

    def get_version(self) -> int:
        return self.version

    def generate(self, prompts: list[list[int]], spec: SampleSpec, entropies: bool):
        t0 = time.perf_counter()
        groups = self.engine.generate(prompts, spec, entropies=entropies)
        return self.version, groups, time.perf_counter() - t0

    def load_weights(self, packed: list[tuple[str, str, Any]], version: int) -> int:
        return self._load(from_wire(packed), version)

    def _load(self, named: list[tuple[str, Any]], version: int) -> int:
        self.engine.load_weights(named)
        self.version = version
        return version

    def checksum(self, names: list[str] | None = None) -> str:
        model = getattr(self.engine, "model", None)
        if model is None:
            raise NotImplementedError(f"checksum needs the hf engine, this worker runs {self.engine.name}")
        return state_checksum(model.state_dict().items(), names)

    def nccl_init(self, host: str, port: int, rank: int, world: int, prefix: str, timeout_s: float) -> None:
        import torch.distributed as tdist

        store = tdist.TCPStore(host, port, None, False, wait_for_workers=False)
        self._pg = _nccl_group(store, rank, world, prefix, timeout_s)

    def nccl_receive(self, meta: list[tuple[str, tuple[int, ...], str]], version: int) -> int:
        import torch

        named = []
        for name, shape, dtype in meta:
            t = torch.empty(shape, dtype=getattr(torch, dtype), device="cuda")
            _broadcast(self._pg, t)
            named.append((name, t))
        torch.cuda.synchronize()
        return self._load(named, version)

    def close(self) -> None:
        self.engine.close()


def _nccl_group(store: Any, rank: int, world: int, prefix: str, timeout_s: float) -> Any:
    """A NCCL process group outside torch's default group (the trainer may have its own)."""
    from datetime import timedelta

    import torch.distributed as tdist

    opts = tdist.ProcessGroupNCCL.Options()
    opts._timeout = timedelta(seconds=timeout_s)
    return tdist.ProcessGroupNCCL(tdist.PrefixStore(prefix, store), rank, world, opts)


def _broadcast(pg: Any, tensor: Any) -> None:
    import torch.distributed as tdist

    opts = tdist.BroadcastOptions()
    opts.rootRank, opts.rootTensor = 0, 0
    pg.broadcast([tensor], opts).wait()


@functools.cache
def _remote_worker(cls: type) -> Any:
    import ray

    return ray.remote(cls)


class RolloutPool:
    """N engine workers in Ray actors behind the ``RolloutSource`` interface (see the module docstring)."""

    worker_class: type = _Worker
    """The class each Ray actor runs; a subclass of the pool may name a subclass of it."""

    def __init__(
        self, engine: str, model: str, *, workers: int, dtype: str = "auto", seed: int = 0,
        engine_kwargs: dict[str, Any] | None = None, address: str | None = None, num_cpus: float = 1.0,
        num_gpus: float = 0.0, placement: str | None = "PACK", max_lag: int = 0, sync_timeout_s: float = 300.0,
        start_timeout_s: float = 900.0,
        generate_timeout_s: float | None = None, max_restarts: int = 1, max_retries: int = 2,
        transport: str = "auto", debug: bool = False,
    ):  # fmt: skip
        import ray

        from reasoner.models import resolve

        if workers < 1:
            raise ValueError(f"RolloutPool needs workers >= 1, got {workers}")
        if placement not in (None, "PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
            raise ValueError(f"placement must be PACK, SPREAD (or None), got {placement!r}")
        self._owns_ray = ensure_ray(address, debug=debug)
        self._args = (engine, resolve(model), dtype, seed, dict(engine_kwargs or {}))
        self._res = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": max_restarts}
        self.max_lag, self.sync_timeout_s, self.max_retries = max_lag, sync_timeout_s, max_retries
        self.start_timeout_s = start_timeout_s
        self.generate_timeout_s = generate_timeout_s
        if transport == "auto":
            transport = "nccl" if num_gpus > 0 and _cuda() else "object_store"
        if transport not in ("object_store", "nccl"):
            raise ValueError(f"transport must be auto, object_store or nccl, got {transport!r}")
        self.transport = transport
        self._version, self._nccl = 0, None
        self._weights_ref: ObjectRef[list[tuple[str, str, Any]]] | None = None
        self._pg = None
        if placement is not None:
            from ray.util.placement_group import placement_group

            bundle = {"CPU": num_cpus, **({"GPU": num_gpus} if num_gpus else {})}
            self._pg = placement_group([bundle] * workers, strategy=placement)
            ray.get(self._pg.ready(), timeout=start_timeout_s)
        self.actors = [self._spawn(rank) for rank in range(workers)]
        self.worker_versions = [0] * workers
        self._pending: dict[int, Any] = {}  # rank -> ref of a weight load still running
        self._speed = [1.0] * workers  # prompts per second, EMA
        self.last_versions: list[int] = []
        """Weight version that generated each prompt's group in the latest ``generate``."""
        self.restarts = 0
        ray.get([a.ready.remote() for a in self.actors], timeout=start_timeout_s)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self._args[1])
        if transport == "nccl":
            self._nccl_setup()
        log.info("ray pool: %d %s workers (%s transport)", workers, engine, transport)

    # ---------------------------------------------------------------- RolloutSource

    @property
    def version(self) -> int:
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        self._version = value

    def generate(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> list[list[Completion]]:
        """``spec.n`` completions per prompt, spread over eligible workers; result[i] = prompt i's group."""
        prompts = [list(p) for p in prompts]
        results: list[list[Completion] | None] = [None] * len(prompts)
        versions: list[int] = [0] * len(prompts)
        todo = [(0, len(prompts))] if prompts else []
        for _ in range(self.max_retries + 1):
            if not todo:
                break
            todo = self._generate_round(prompts, spec, entropies, todo, results, versions)
        if todo:
            raise WorkerFailedError(f"prompts {todo} failed after {self.max_retries} retries")
        self.last_versions = versions
        done = [r for r in results if r is not None]
        if len(done) != len(results):  # never: no range left to do means every prompt has its group
            raise WorkerFailedError("some prompts got no completions")
        return done

    def sync_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        """Load new weights into every worker; bounded by ``sync_timeout_s`` (``SyncTimeoutError``)."""
        import ray

        named = [(n, t.detach()) for n, t in named_tensors]
        self._version = version
        if self.transport == "nccl":
            refs = self._nccl_push(named, version)
        else:
            self._weights_ref = ray.put(to_wire(named))
            refs = {r: a.load_weights.remote(self._weights_ref, version) for r, a in enumerate(self.actors)}
        self._pending.update(refs)
        deadline = time.monotonic() + self.sync_timeout_s
        late = [r for r in refs if not self._await_load(r, max(0.0, deadline - time.monotonic()))]
        if late:
            more = f" ({len(late) - 1} other workers late too)" if len(late) > 1 else ""
            raise SyncTimeoutError(
                f"{self._who(late[0])} did not finish loading weights version {version} "
                f"within {self.sync_timeout_s:g} s{more}"
            )

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self._pg is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self._pg)
            self._pg = None
        if self._owns_ray:
            ray.shutdown()

    # ---------------------------------------------------------------- diagnostics

    def checksums(self, names: Sequence[str] | None = None) -> list[str]:
        """Each worker's ``state_checksum`` (hf engine workers)."""
        import ray

        names = list(names) if names is not None else None
        refs = [a.checksum.remote(names) for a in self.actors]
        return ray.get(refs, timeout=self.sync_timeout_s)

    # ---------------------------------------------------------------- internals

    def _who(self, rank: int) -> str:
        return f"worker {rank} (actor id {self.actors[rank]._actor_id.hex()})"

    def _spawn(self, rank: int) -> Any:
        opts: dict[str, Any] = {**self._res, "max_task_retries": 0}
        if self._pg is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                self._pg, placement_group_bundle_index=rank
            )
        return _remote_worker(self.worker_class).options(**opts).remote(*self._args)

    def _await_load(self, rank: int, timeout: float) -> bool:
        """Wait for ``rank``'s pending weight load; False if still running after ``timeout``."""
        import ray

        ref = self._pending.get(rank)
        if ref is None:
            return True
        done, _ = ray.wait([ref], timeout=timeout)
        if not done:
            return False
        del self._pending[rank]
        try:
            self.worker_versions[rank] = ray.get(ref)
        except ray.exceptions.RayActorError:
            self._recover(rank)
        return True

    def _eligible(self) -> list[int]:
        ok, deadline = [], time.monotonic() + self.sync_timeout_s
        for rank in range(len(self.actors)):
            if self._version - self.worker_versions[rank] > self.max_lag:  # wait for a pending load
                self._await_load(rank, max(0.0, deadline - time.monotonic()))
            if self._version - self.worker_versions[rank] <= self.max_lag:
                ok.append(rank)
        if not ok:
            raise StaleWeightsError(
                f"no worker holds weights within max_lag={self.max_lag} of version {self._version} "
                f"(worker versions {self.worker_versions})"
            )
        return ok

    def _generate_round(self, prompts, spec, entropies, todo, results, versions) -> list[tuple[int, int]]:
        """Dispatch the ranges in ``todo`` over eligible workers; return the ranges that must be retried."""
        import ray

        ranks = self._eligible()
        pending: dict[Any, tuple[int, int, int, float]] = {}
        for lo, hi in todo:
            start = lo
            for rank, size in zip(ranks, split_sizes(hi - lo, [self._speed[r] for r in ranks]), strict=True):
                if size:
                    ref = self.actors[rank].generate.remote(prompts[start : start + size], spec, entropies)
                    pending[ref] = (rank, start, start + size, time.perf_counter())
                    start += size
        retry = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=self.generate_timeout_s)
            if not done:
                ranks_left = sorted({v[0] for v in pending.values()})
                raise WorkerFailedError(
                    f"workers {ranks_left} produced nothing for {self.generate_timeout_s} s"
                )
            rank, a, b, t0 = pending.pop(done[0])
            try:
                version, groups, secs = ray.get(done[0])
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as err:
                log.warning(
                    "ray pool: worker %d failed mid-generation (%s); restarting it", rank, type(err).__name__
                )
                self._recover(rank)
                retry.append((a, b))
                continue
            self.worker_versions[rank] = version
            if self._version - version > self.max_lag:  # restarted by Ray with its initial weights
                self._recover(rank)
                retry.append((a, b))
                continue
            results[a:b], versions[a:b] = groups, [version] * (b - a)
            self._speed[rank] = 0.5 * self._speed[rank] + 0.5 * (b - a) / max(secs, 1e-6)
        return retry

    def _recover(self, rank: int) -> None:
        """Bring worker ``rank`` back (Ray's restart, else a new actor) and re-sync the current weights."""
        import ray

        actor, wait = self.actors[rank], self.start_timeout_s
        try:
            ray.get(actor.ready.remote(), timeout=wait)
            log.info("ray pool: worker %d is back (restarted by Ray)", rank)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            ray.kill(actor, no_restart=True)
            actor = self.actors[rank] = self._spawn(rank)
            ray.get(actor.ready.remote(), timeout=wait)
            log.info("ray pool: worker %d re-created", rank)
        self.restarts += 1
        self._pending.pop(rank, None)
        self.worker_versions[rank] = ray.get(actor.get_version.remote(), timeout=wait)
        if self.worker_versions[rank] == self._version:
            return
        if self.transport == "nccl":  # the group lost a member: rebuild it; weights come with the next sync
            self._nccl_setup()
            log.warning(
                "ray pool: worker %d holds version %d until the next sync", rank, self.worker_versions[rank]
            )
        elif self._weights_ref is not None:
            ref = actor.load_weights.remote(self._weights_ref, self._version)
            self.worker_versions[rank] = ray.get(ref, timeout=self.sync_timeout_s)

    def _nccl_setup(self) -> None:
        """(Re)build the NCCL group: driver rank 0 (the trainer's GPU), workers 1..N. Untested on CPU."""
        import ray
        import torch.distributed as tdist

        host = ray.util.get_node_ip_address()
        if getattr(self, "_store", None) is None:
            self._store = tdist.TCPStore(host, 0, None, True, wait_for_workers=False)
        prefix, world = f"reasoner-{time.time_ns()}", len(self.actors) + 1
        refs = [a.nccl_init.remote(host, self._store.port, r + 1, world, prefix, self.sync_timeout_s)
                for r, a in enumerate(self.actors)]  # fmt: skip
        self._nccl = _nccl_group(self._store, 0, world, prefix, self.sync_timeout_s)
        ray.get(refs, timeout=self.sync_timeout_s)

    def _nccl_push(self, named: list[tuple[str, Any]], version: int) -> dict[int, Any]:
        """Broadcast every tensor from the driver's GPU; all workers must take part in each broadcast."""
        late = [r for r in list(self._pending) if not self._await_load(r, self.sync_timeout_s)]
        if late:
            raise SyncTimeoutError(
                f"{self._who(late[0])} is still loading an older version; cannot send {version}"
            )
        meta = [(n, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in named]
        refs = {r: a.nccl_receive.remote(meta, version) for r, a in enumerate(self.actors)}
        for _, tensor in named:
            _broadcast(self._nccl, tensor.to("cuda").contiguous())
        return refs


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
