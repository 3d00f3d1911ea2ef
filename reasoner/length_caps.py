"""Difficulty-Aware DLER's per-prompt truncation cap (L1, stdlib only).

Difficulty-Aware DLER (Liu et al. 2025, "DLER: Doing Length pEnalty Right", arXiv 2510.15110,
https://arxiv.org/abs/2510.15110, section on DA-DLER; github NVlabs/DLER) truncates a prompt's responses at a
length that tightens as the prompt gets easier. Our parameterisation is linear in the prompt's pass rate p:

    cap(p) = round(L_max - (L_max - L_min) * p)      p clipped to [0, 1]; an unseen prompt (p = None) gets L_max

``rewards.DifficultyTruncation`` computes it from the ``pass_rate`` column (the trainer's running rate,
``reasoner.train.difficulty``) or, for a prompt the trainer has not seen, the in-group rate.
"""

from __future__ import annotations

__all__ = ["da_cap"]


def da_cap(pass_rate: float | None, max_length: int, min_length: int) -> int:
    """Difficulty-Aware DLER truncation cap (tokens) for a prompt with this pass rate (see the module docstring).

    ``max_length`` (L_max) is the cap of a never-solved prompt, ``min_length`` (L_min) of an always-solved one;
    ``1 <= min_length <= max_length`` or ``ValueError`` naming both. Python's ``round`` halves to even."""
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    if pass_rate is None:
        return max_length
    p = min(max(float(pass_rate), 0.0), 1.0)
    return int(round(max_length - (max_length - min_length) * p))
