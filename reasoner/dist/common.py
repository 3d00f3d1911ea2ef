"""Ray start-up, the errors of the pool and of ``run_ranks``, and the pool's chunk sizing (``reasoner.dist``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from reasoner.train.collective import RankFailedError  # one error for every launcher (local: train.launch)

log = logging.getLogger("reasoner.dist")


class SyncTimeoutError(RuntimeError):
    """A worker did not finish loading new weights in time (the message names the worker)."""


class StaleWeightsError(RuntimeError):
    """No worker holds weights within the allowed off-policy lag."""


class WorkerFailedError(RuntimeError):
    """Generation kept failing after restarting workers ``max_retries`` times."""


def split_sizes(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` items into ``len(weights)`` contiguous chunk sizes proportional to ``weights``
    (largest remainder; sizes sum to ``total``)."""
    if not weights:
        raise ValueError("split_sizes: no workers")
    w = [max(float(x), 1e-9) for x in weights]
    exact = [total * x / sum(w) for x in w]
    sizes = [int(e) for e in exact]
    order = sorted(range(len(w)), key=lambda i: exact[i] - sizes[i], reverse=True)
    for i in order[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def ensure_ray(address: str | None = None, *, debug: bool = False) -> bool:
    """Connect to ``address`` (or ``$RAY_ADDRESS``) or start a local Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        log.info("ray: connecting to %s", address)
        ray.init(address=address, log_to_driver=debug)
    else:
        # Ray starts worker processes at nice 15; in a local run the workers ARE the job (rollouts), so
        # they get the driver's priority unless the user set otherwise.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=debug)
    return True
