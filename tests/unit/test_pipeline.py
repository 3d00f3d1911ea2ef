"""``OrderedRollout`` (pipelined rollouts): jobs run on one background thread in the order submitted, a sync
queued behind a generation snapshots the weights, a failed job fails every later one; and the recipe checks."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from reasoner.config import ConfigError
from reasoner.engines.fake import FakeEngine, Trace
from reasoner.train.pipeline import (
    OrderedRollout,
    check_async,
    engine_logprobs_mode,
    importance_mode,
    source_versions,
)
from reasoner.train.rollout import EngineRollout
from reasoner.types import SampleSpec

SPEC = SampleSpec(n=2, max_tokens=8, temperature=1.0, seed=0, logprobs=True)


class SlowSource(EngineRollout):
    """A scripted engine whose generation takes ``delay`` seconds and records what ran, in order."""

    def __init__(self, delay: float = 0.2):
        super().__init__(FakeEngine(lambda text, j: Trace("so \\boxed{1}")))
        self.delay, self.events, self.threads = delay, [], set()

    def generate(self, prompts, spec, *, entropies=False):
        self.threads.add(threading.current_thread().name)
        self.events.append(("generate", self.version))
        time.sleep(self.delay)
        return super().generate(prompts, spec, entropies=entropies)

    def sync_weights(self, named_tensors, version):
        named = list(named_tensors)
        self.events.append(("sync", version, float(named[0][1].sum())))
        super().sync_weights(named, version)


def test_jobs_run_in_order_on_one_background_thread_and_carry_their_version():
    source = SlowSource()
    rollout = OrderedRollout(source)
    prompts = [[1, 2, 3]]
    first = rollout.submit(prompts, SPEC)
    weights = torch.ones(3)
    t0 = time.perf_counter()
    rollout.sync_weights([("w", weights)], version=1)  # queued behind the generation: returns at once
    assert time.perf_counter() - t0 < 0.15 and rollout.version == 1
    weights += 1  # the learner moves on; the queued sync must load the snapshot
    second = rollout.submit(prompts, SPEC)
    groups, versions = first.result()
    assert len(groups) == 1 and len(groups[0]) == 2 and versions == [0]
    assert second.result()[1] == [1]
    assert source.events == [("generate", 0), ("sync", 1, 3.0), ("generate", 1)]
    assert source.threads == {"reasoner-rollout_0"}
    rollout.generate(prompts, SPEC)
    assert rollout.last_versions == [1] and source_versions(rollout, 1) == [1]
    rollout.close()


def test_a_sync_with_nothing_queued_runs_before_returning():
    source = SlowSource(delay=0.0)
    rollout = OrderedRollout(source)
    rollout.sync_weights([("w", torch.zeros(2))], version=4)
    assert source.events == [("sync", 4, 0.0)] and source.version == 4
    rollout.close()


def test_a_failed_sync_fails_every_later_generation():
    class Broken(SlowSource):
        def sync_weights(self, named_tensors, version):
            raise OSError("disk gone")

    rollout = OrderedRollout(Broken())
    pending = rollout.submit([[1, 2, 3]], SPEC)
    rollout.sync_weights([("w", torch.zeros(1))], version=1)
    later = rollout.submit([[1, 2, 3]], SPEC)
    assert pending.result()[1] == [0]
    with pytest.raises(RuntimeError, match="earlier rollout job failed"):
        later.result()
    with pytest.raises(OSError, match="disk gone"):
        rollout.drain()


def _recipe(*overrides):
    from reasoner.train.cli import resolved_recipe

    return resolved_recipe("dler", list(overrides))


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        ([], None),
        (["rollout.async_steps=1"], "token_truncate"),
        (["rollout.workers=1", "ray.max_lag=2"], "token_truncate"),
        (["rollout.async_steps=2", "rollout.importance_sampling=off"], None),
        (["rollout.importance_sampling=sequence_mask"], "sequence_mask"),
    ],
)
def test_the_correction_is_on_where_rollouts_can_be_stale(overrides, mode):
    """...and then the engines report the sampled (processed) distribution, its behaviour policy."""
    assert importance_mode(_recipe(*overrides)) == mode
    assert engine_logprobs_mode(_recipe(*overrides)) == ("raw" if mode is None else "processed")


class _Args:
    temperature, loss_type = 1.0, "dapo"


@pytest.mark.parametrize(
    ("overrides", "args", "message"),
    [
        (["rollout.workers=1", "rollout.async_steps=2", "ray.max_lag=1"], {}, "ray.max_lag >= 2"),
        (["rollout.async_steps=1"], {"loss_type": "vespo"}, "vespo"),
    ],
)
def test_contradictory_settings_are_errors_naming_the_fields(overrides, args, message):
    a = _Args()
    for k, v in args.items():
        setattr(a, k, v)
    with pytest.raises(ConfigError, match=message):
        check_async(_recipe(*overrides), a)
    check_async(_recipe(*overrides, "rollout.importance_sampling=off", "ray.max_lag=2"), a)
