"""Weights as data: checksums and the object-store wire format of a state dict (``(name, tensor)`` pairs).

Used by the Ray pool (``reasoner.dist``) to sync weights and to check that every worker holds the trainer's;
torch only, no Ray, so it is importable (and testable) anywhere.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["from_wire", "state_checksum", "to_wire"]


def state_checksum(named_tensors: Iterable[tuple[str, Any]], names: Iterable[str] | None = None) -> str:
    """sha256 over (name, dtype, shape, bytes) of the tensors, sorted by name (only ``names`` if given)."""
    wanted = set(names) if names is not None else None
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        if wanted is not None and name not in wanted:
            continue
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def to_wire(named_tensors: Iterable[tuple[str, Any]]) -> list[tuple[str, str, Any]]:
    """Tensors as ``(name, dtype, numpy array)`` for ``ray.put``: Ray stores numpy arrays out of band and
    workers read them zero-copy from the object store (torch tensors would be pickled and copied). bfloat16,
    which numpy lacks, travels as its int16 bit pattern."""
    out = []
    for name, t in named_tensors:
        t = t.detach().to("cpu").contiguous()
        bits = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        out.append((name, str(t.dtype).removeprefix("torch."), bits.numpy()))
    return out


def from_wire(packed: Iterable[tuple[str, str, Any]]) -> list[tuple[str, Any]]:
    """Inverse of ``to_wire``: read-only tensors over the object store's buffers (engines copy them in)."""
    out = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for name, dtype, array in packed:
            t = torch.from_numpy(array)
            out.append((name, t.view(torch.bfloat16) if dtype == "bfloat16" else t))
    return out
