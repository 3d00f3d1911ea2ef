"""The learner's process group as the trainer hooks use it: rank, world size and object all-gathers.

Data-parallel GRPO at N processes (``torchrun``, ``accelerate launch``, ``reasoner train --nproc N``) must mean
the same as at one (DESIGN section 9): every quantity a recipe defines over "the batch" or "the group" is
computed over the global batch and whole groups. The hooks get there by replication: each rank generates and
scores its share of the groups, ``all_gather`` hands every rank the whole batch, and every rank then runs
the same deterministic code on it (dynamic sampling's kept-group count and refill rounds, the pass-rate
tracker, batch normalisation, D3S's token quantile), so the ranks' states cannot drift apart and no rank can
wait in a collective the others skip. Each rank finally trains on its own slice.

A collective that fails (a peer died, or was slower than the process group's timeout, ``trainer.ddp_timeout``)
raises ``CollectiveError`` naming this rank, the step and what was being exchanged. In one process (no
initialised ``torch.distributed`` group) every method is the identity.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import torch

from reasoner.config import ConfigError
from reasoner.train.loss import LOSS_TYPES, LOSS_TYPES_GLOBAL

__all__ = ["Collective", "CollectiveError", "RankFailedError", "check_data_parallel", "shard_bounds"]


class CollectiveError(RuntimeError):
    """A collective across learner ranks failed; the message names the rank, the step and the exchange."""


def shard_bounds(total: int, world: int, rank: int) -> tuple[int, int]:
    """``[start, end)`` of ``rank``'s contiguous share of ``total`` items split as evenly as possible over
    ``world`` ranks (the first ``total % world`` ranks get one more)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard_bounds: rank {rank} is not in a world of {world}")
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def check_data_parallel(args: Any, world: int) -> None:
    """Refuse a TRL config whose meaning changes at ``world`` > 1 learner processes: a process's share of the
    generation batch must be whole groups, and the loss must be normalised over the global batch."""
    if world <= 1:
        return
    rows = args.per_device_train_batch_size * args.steps_per_generation
    if rows % args.num_generations:
        raise ConfigError(
            f"trainer.per_device_train_batch_size={args.per_device_train_batch_size} x steps_per_generation="
            f"{args.steps_per_generation} = {rows} rows per process is not a whole number of groups of "
            f"trainer.num_generations={args.num_generations}; at {world} processes each process must hold "
            f"whole groups (the global batch is per_device_train_batch_size x {world} processes)"
        )
    if args.loss_type in LOSS_TYPES and args.loss_type not in LOSS_TYPES_GLOBAL:  # bnpo
        raise ConfigError(
            f"trainer.loss_type={args.loss_type!r} normalises the loss by each process's own token count, so it changes "
            f"meaning at {world} processes; use 'dapo' (normalised by the global token count) or 'grpo'"
        )


class Collective:
    """Rank, world size and object collectives of the learner processes (identity when ``torch.distributed``
    is not initialised). The objects travel over a gloo group of their own, created collectively here, with
    ``timeout_s`` (accelerate does not pass ``ddp_timeout`` to a CPU group, and NCCL would copy every object to
    the GPU). ``seconds`` accumulates the wall time spent in collectives (``time/comm``)."""

    def __init__(self, timeout_s: float = 1800.0) -> None:
        import torch.distributed as dist

        self._dist = dist if dist.is_available() and dist.is_initialized() else None
        self.world = self._dist.get_world_size() if self._dist else 1
        self.rank = self._dist.get_rank() if self._dist else 0
        self.timeout_s, self.seconds = timeout_s, 0.0
        self._group = None
        if self.world > 1:
            self._group = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def all_gather(self, obj: Any, what: str, step: int) -> list[Any]:
        """Every rank's ``obj``, in rank order (picklable objects; CPU tensors inside are fine)."""
        if self._dist is None or not self.distributed:  # no _dist: world 1
            return [obj]
        out: list[Any] = [None] * self.world
        t0 = time.perf_counter()
        try:
            self._dist.all_gather_object(out, obj, group=self._group)
        except Exception as err:  # gloo/NCCL raise RuntimeError subclasses with the backend's text
            raise CollectiveError(
                f"rank {self.rank} of {self.world}: exchanging {what} at step {step} failed ({err}). Another "
                f"rank stopped or took longer than trainer.ddp_timeout={self.timeout_s:g} s; its own error, if "
                "any, is in its log."
            ) from err
        finally:
            self.seconds += time.perf_counter() - t0
        return out

    def concat(self, items: Sequence[Any], what: str, step: int) -> list[Any]:
        """The concatenation, in rank order, of every rank's list ``items``."""
        return [x for part in self.all_gather(list(items), what, step) for x in part]

    def cat_rows(self, rows: torch.Tensor, what: str, step: int, pad: float = 0) -> torch.Tensor:
        """Every rank's ``(B_r, T_r)`` tensor stacked along rows in rank order, right-padded to the widest."""
        parts = self.all_gather(rows.detach().cpu(), what, step)
        width = max(p.shape[1] for p in parts)
        padded = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=pad) for p in parts]
        return torch.cat(padded)


class RankFailedError(RuntimeError):
    """One or more learner processes failed; the message names each rank and its error."""
