"""Ray orchestration: a pool of engine workers behind the ``RolloutSource`` interface (DESIGN section 6).

The ONLY package that imports ``ray`` (always inside functions), so ``import reasoner`` stays light. Modules:
``common`` (Ray start, errors, chunk sizes), ``pool`` (``RolloutPool`` and its workers), ``mapping``
(``map_with_engines`` for evaluation), ``ranks`` (``run_ranks``: torch.distributed learner ranks placed by Ray
across nodes, without SSH or Slurm; its docstring holds the env contract).

Design:
- ``RolloutPool`` owns N Ray actors (``_Worker``), each holding one engine (``reasoner.engines.load_engine``:
  vLLM or transformers). ``generate(prompts, spec)`` splits the prompt list into contiguous chunks, one per
  eligible worker, sized by each worker's measured throughput (``split_sizes``); all ``spec.n`` samples of a
  prompt stay on one worker (prefix caching), and results come back in prompt order. Sample ``j`` of a prompt
  is seeded from (``spec.seed``, j, prompt) on every engine, so the split does not change what is sampled.
- Weight versions: every chunk returns the version of the weights that produced it. A worker is eligible
  when ``pool.version - worker_version <= max_lag`` (off-policy lag, default 0); a worker whose load is
  still pending is waited for (bounded by ``sync_timeout_s``); with no eligible worker ``generate`` raises
  ``StaleWeightsError`` rather than using old weights.
- ``sync_weights(named_tensors, version)``: on CPU / object-store transport one ``ray.put`` of the state dict
  (as numpy arrays, ``to_wire``, so workers map it zero-copy) and N ``load_weights`` calls reading that one
  object; on GPUs (``transport="nccl"``) a torch NCCL group
  (driver rank 0, workers 1..N, built from a ``TCPStore``) broadcasts each tensor. Every wait is bounded: a
  worker that misses ``sync_timeout_s`` raises ``SyncTimeoutError`` naming it (index, actor id, version).
- Fault tolerance: actors have ``max_restarts``; a worker that dies mid-call is pinged, re-created if Ray
  did not bring it back, re-synced to the current weights (the last object-store ref), and its chunk is
  re-dispatched over the eligible workers (up to ``max_retries`` rounds), so the step completes.
- Ray start: ``ensure_ray(address)`` joins ``address`` / ``$RAY_ADDRESS`` when set, else starts a local
  instance (``num_cpus=os.cpu_count()``, no dashboard, worker logs only with ``debug``); a pool shuts Ray
  down on ``close()`` only when it started it. Resources per worker (``num_cpus``, ``num_gpus``) and a
  placement group (``PACK`` | ``SPREAD``, or None for none) are constructor arguments.
- Evaluation (``reasoner eval --workers N``): ``map_with_engines(fn, items)`` starts N actors that each build
  an engine and apply ``fn(engine, item)`` to the next free item (streaming strategies keep their engine
  local; only picklable results such as rows of StrategyResults travel).
"""

from __future__ import annotations

from reasoner.dist.common import (
    RankFailedError,
    StaleWeightsError,
    SyncTimeoutError,
    WorkerFailedError,
    ensure_ray,
    split_sizes,
)
from reasoner.dist.mapping import map_with_engines
from reasoner.dist.pool import RolloutPool
from reasoner.dist.ranks import run_ranks
from reasoner.weights import from_wire, state_checksum, to_wire

__all__ = ["RankFailedError", "RolloutPool", "StaleWeightsError", "SyncTimeoutError", "WorkerFailedError",
           "ensure_ray", "from_wire", "map_with_engines", "run_ranks", "split_sizes", "state_checksum",
           "to_wire"]  # fmt: skip
