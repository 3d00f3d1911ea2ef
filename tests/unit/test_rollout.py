"""``make_rollout_source``: one in-process engine, or the pool the composition root passes in (``reasoner.train``
does not import ``reasoner.dist``)."""

from __future__ import annotations

import pytest

from reasoner.train.rollout import make_rollout_source


def test_a_pool_is_built_by_the_injected_class_and_is_required_for_workers():
    seen = {}

    class Pool:
        def __init__(self, engine, model, **kwargs):
            seen.update(engine=engine, model=model, **kwargs)

    source = make_rollout_source("vllm", "some/model", dtype="float32", seed=3, workers=2, max_model_len=512,
                                 address="ray://head:10001", pool=Pool, num_cpus=0.5,
                                 logprobs_mode="processed")  # fmt: skip
    assert isinstance(source, Pool)
    assert seen == {"engine": "vllm", "model": "some/model", "workers": 2, "dtype": "float32", "seed": 3,
                    "engine_kwargs": {"max_model_len": 512, "logprobs_mode": "processed"},
                    "address": "ray://head:10001", "num_cpus": 0.5}  # fmt: skip
    with pytest.raises(
        ValueError, match=r"rollout.workers=2 needs a rollout pool: pass pool=reasoner.dist.RolloutPool"
    ):
        make_rollout_source("hf", "some/model", dtype="float32", workers=2)
