"""``map_with_engines``: engine replicas in Ray actors that each apply a function to the next free item
(evaluation: ``reasoner eval --workers N``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from reasoner.dist.common import ensure_ray

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class _Runner:
    """An engine in a Ray actor that applies caller-given functions to it (``map_with_engines``)."""

    def __init__(self, engine: str, model: str, dtype: str, engine_kwargs: dict[str, Any]):
        from reasoner.engines import load_engine

        self.engine = load_engine(engine, model, dtype=dtype, **engine_kwargs)

    def ready(self) -> int:
        return os.getpid()

    def run(self, fn: Callable[[Engine, Any], Any], item: Any) -> Any:
        return fn(self.engine, item)


def map_with_engines(
    fn: Callable[[Engine, Any], Any], items: Sequence[Any], *, engine: str, model: str, workers: int,
    dtype: str = "auto", engine_kwargs: dict[str, Any] | None = None, address: str | None = None,
    num_cpus: float = 1.0, num_gpus: float = 0.0, debug: bool = False,
) -> Iterator[tuple[int, Any]]:  # fmt: skip
    """Yield ``(index, fn(engine, items[index]))`` as results finish, ``workers`` engine replicas in Ray
    actors each taking the next item when free (evaluation: ``reasoner eval --workers N``). ``fn`` and
    items must pickle (module-level functions, frozen dataclasses); an exception in ``fn`` is re-raised."""
    import ray

    owns = ensure_ray(address, debug=debug)
    cls = ray.remote(_Runner).options(num_cpus=num_cpus, num_gpus=num_gpus)
    # Ray's ActorHandle types an actor's methods as plain callables (no ``.remote``): handles are Any here
    actors: list[Any] = [
        cls.remote(engine, model, dtype, dict(engine_kwargs or {})) for _ in range(min(workers, len(items)))
    ]
    try:  # items go only to started actors: one that never gets resources never holds an item
        queue, left = list(range(len(items)))[::-1], len(items)
        pending: dict[Any, tuple[Any, int | None]] = {actor.ready.remote(): (actor, None) for actor in actors}
        while left:
            done, _ = ray.wait(list(pending), num_returns=1)
            actor, i = pending.pop(done[0])
            result = ray.get(done[0])
            if queue:
                j = queue.pop()
                pending[actor.run.remote(fn, items[j])] = (actor, j)
            if i is not None:
                left -= 1
                yield i, result
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if owns:
            ray.shutdown()
