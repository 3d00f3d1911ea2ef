"""Per-request sampling seeds: reproducible per (seed, sample, prompt), independent across prompts."""

from __future__ import annotations

import pytest

from reasoner.engines.base import sample_seed
from reasoner.types import SampleSpec


def test_seed_depends_on_seed_sample_and_prompt():
    spec = SampleSpec(n=4, seed=7)
    prompts = [[1, 2, 3], [1, 2, 4], [3, 2, 1], [1, 2, 3, 0]]
    seeds = {sample_seed(spec, j, p) for p in prompts for j in range(spec.n)}
    assert len(seeds) == len(prompts) * spec.n
    assert sample_seed(spec, 2, [1, 2, 3]) == sample_seed(SampleSpec(n=1, seed=7), 2, (1, 2, 3))
    assert sample_seed(spec, 0, [1, 2, 3]) != sample_seed(SampleSpec(seed=8), 0, [1, 2, 3])
    assert all(0 <= s < 2**31 for s in seeds)


@pytest.mark.parametrize("prompt", [[], [5], list(range(1000))])
def test_no_seed_stays_unseeded(prompt):
    assert sample_seed(SampleSpec(seed=None), 0, prompt) is None
    assert isinstance(sample_seed(SampleSpec(seed=-3), 1, prompt), int)
