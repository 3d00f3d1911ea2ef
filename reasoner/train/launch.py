"""Start N data-parallel learner processes on this machine, as ``torchrun --standalone`` would.

``reasoner train RECIPE --nproc N`` runs the same command in N processes through torch's elastic launcher (the
machinery behind ``torchrun``): each process gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``, accelerate (inside TRL's trainer) joins them into one process group (gloo on CPUs, NCCL on
GPUs), and the trainer hooks give every recipe its global-batch meaning (``reasoner.train.collective``).
``torchrun`` and ``accelerate launch`` set the same variables, so the three launchers run the same code.
Across nodes, ``reasoner.dist.run_ranks`` places the ranks with Ray instead.

A rank that fails stops the others; ``RankFailedError`` names each failed rank with its error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from reasoner.train.collective import RankFailedError

__all__ = ["launch_local", "launched_rank"]


def launched_rank() -> int | None:
    """This process's rank when a launcher (torchrun, accelerate, ``--nproc``, Ray) started it, else None."""
    return int(os.environ["RANK"]) if "RANK" in os.environ and "WORLD_SIZE" in os.environ else None


def _run_rank(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(fn)(*args)


def launch_local(fn: Callable[..., Any], args: Sequence[Any] = (), *, nproc: int) -> list[Any]:
    """Run ``fn(*args)`` in ``nproc`` fresh processes (spawned) with the torch.distributed environment set;
    return their results in rank order. ``fn`` and ``args`` must be picklable (``fn`` at module level)."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"reasoner-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn",
    )  # fmt: skip
    try:
        results = elastic_launch(config, entrypoint=_run_rank)(fn, tuple(args))
    except ChildFailedError as err:
        lines = [
            f"rank {rank} (exit code {failure.exitcode}): {_message(failure)}"
            for rank, failure in sorted(err.failures.items())
        ]
        raise RankFailedError("learner processes failed:\n" + "\n".join(lines)) from None
    return [results[rank] for rank in range(nproc)]


def _message(failure: Any) -> str:
    """The failed rank's exception message from its error file (without the traceback)."""
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", message)
    text = str(message).strip()
    return text or f"no error recorded (signal {failure.signal_name()})"
