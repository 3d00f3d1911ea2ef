"""The object-store weight format of the Ray pool (``reasoner.dist.to_wire`` / ``from_wire``): lossless for
every dtype an engine loads, and read by Ray without a copy (numpy arrays)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasoner.dist import from_wire, state_checksum, to_wire


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int64])
def test_round_trip_is_bit_exact(dtype):
    g = torch.Generator().manual_seed(0)
    named = [
        ("a.weight", (torch.randn(5, 3, generator=g) * 100).to(dtype)),
        ("b.bias", torch.randn(7, generator=g).to(dtype)[::2]),
    ]  # fmt: skip  (a strided view)
    packed = to_wire(named)
    assert all(isinstance(array, np.ndarray) for _, _, array in packed)
    back = from_wire(packed)
    assert [n for n, _ in back] == ["a.weight", "b.bias"]
    for (_, t), (_, u) in zip(named, back, strict=True):
        assert u.dtype == t.dtype and u.shape == t.shape and torch.equal(u, t)
    assert state_checksum(back) == state_checksum(named)
