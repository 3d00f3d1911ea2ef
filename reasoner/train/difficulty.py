"""Per-prompt difficulty: a running pass-rate tracker (read by Difficulty-Aware DLER), curriculum pruning.

- ``PassRateTracker``: each prompt's pass rate, updated after every group of samples. By default the
  running mean over all samples seen (``correct / total``); with ``momentum`` m an exponential moving
  average over groups, ``p <- m p + (1 - m) * group_rate`` (tracks a policy that improves).
- ``PromptPruner`` (difficulty-aware pruning, a curriculum): a prompt whose last ``min_seen`` groups were all
  solved, or all failed, gives GRPO no learning signal (zero-std group). It is skipped for the rest of the
  epoch it was pruned in and the next ``skip_epochs`` epochs (a prompt comes once per epoch, so
  ``skip_epochs=1`` skips its next appearance), then revisited: the next group it gets decides again.
- Difficulty-Aware DLER (arXiv 2510.15110) reads the running rate: the trainer passes it to rewards as the
  ``pass_rate`` column (None for a prompt not seen yet), and ``rewards.DifficultyTruncation`` turns it into
  the prompt's truncation cap (``reasoner.length_caps.da_cap``).

All state is plain dicts of JSON types (``state_dict`` / ``load_state_dict``), saved with each checkpoint so
a resumed run continues with the same curriculum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DifficultyState",
    "PassRateTracker",
    "PromptPruner",
    "pass_rate_histogram",
    "stream_pass_rate",
]


class PassRateTracker:
    """Running pass rate per prompt id (see module docstring)."""

    def __init__(self, momentum: float | None = None):
        if momentum is not None and not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) or None, got {momentum!r}")
        self.momentum = momentum
        self.rates: dict[str, float] = {}
        self.samples: dict[str, int] = {}
        self.groups: dict[str, int] = {}

    def update(self, prompt_id: str, correct: Sequence[bool]) -> float:
        """Record one group of samples for ``prompt_id``; return its new pass rate."""
        if not correct:
            raise ValueError("update needs at least one sample")
        k, m = sum(bool(c) for c in correct), len(correct)
        seen = self.samples.get(prompt_id, 0)
        old = self.rates.get(prompt_id)
        if old is None:
            rate = k / m
        elif self.momentum is None:
            rate = (old * seen + k) / (seen + m)
        else:
            rate = self.momentum * old + (1.0 - self.momentum) * (k / m)
        self.rates[prompt_id] = rate
        self.samples[prompt_id] = seen + m
        self.groups[prompt_id] = self.groups.get(prompt_id, 0) + 1
        return rate

    def rate(self, prompt_id: str) -> float | None:
        """Pass rate in [0, 1], or None for a prompt never seen."""
        return self.rates.get(prompt_id)

    def __len__(self) -> int:
        return len(self.rates)

    def state_dict(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "rates": dict(self.rates), "samples": dict(self.samples),
                "groups": dict(self.groups)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.momentum = state.get("momentum", self.momentum)
        self.rates = {str(k): float(v) for k, v in state["rates"].items()}
        self.samples = {str(k): int(v) for k, v in state["samples"].items()}
        self.groups = {str(k): int(v) for k, v in state.get("groups", {}).items()}


def pass_rate_histogram(rates: Iterable[float], bins: int = 5) -> list[int]:
    """Counts of pass rates in ``bins`` equal bins over [0, 1] (1.0 falls in the last bin)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    counts = [0] * bins
    for r in rates:
        counts[min(int(r * bins), bins - 1)] += 1
    return counts


def stream_pass_rate(
    original: Sequence[str], trained: Mapping[str, Sequence[bool]], rates: Mapping[str, float]
) -> float:
    """The step's pass rate over the prompts the unpruned stream put in it (``original`` ids): a prompt trained
    this step counts its group's fraction solved, a prompt pruning swapped out counts its running pass rate
    ``rates[id]`` (what it was pruned for: ~1 for an always-solved prompt, ~0 for a never-solved one). Without
    pruning this is the batch's fraction solved; with pruning it is the training reward on the prompt mix
    plain GRPO would have seen, not on the harder mix that replaced the pruned prompts."""
    if not original:
        raise ValueError("stream_pass_rate needs at least one prompt")
    total = 0.0
    for pid in original:
        if pid in trained:
            group = trained[pid]
            total += sum(map(bool, group)) / len(group)
        elif pid in rates:
            total += rates[pid]
        else:
            raise ValueError(f"prompt {pid!r} was neither trained this step nor seen before (no pass rate)")
    return total / len(original)


class PromptPruner:
    """Skip always-solved / never-solved prompts for ``skip_epochs`` epochs, then revisit them."""

    def __init__(self, skip_epochs: int = 1, min_seen: int = 1):
        if skip_epochs < 1 or min_seen < 1:
            raise ValueError(f"skip_epochs and min_seen must be >= 1, got {skip_epochs}, {min_seen}")
        self.skip_epochs, self.min_seen = skip_epochs, min_seen
        self.streaks: dict[str, list] = {}
        """prompt id -> [kind, count]: consecutive groups that were all solved ("solved") or all failed."""
        self.pruned: dict[str, int] = {}
        """prompt id -> epoch it was pruned at."""

    def observe(self, prompt_id: str, correct: Sequence[bool], epoch: int) -> bool:
        """Record a group's outcome; return True when the prompt is pruned by it."""
        kind = "solved" if all(correct) else "failed" if not any(correct) else None
        if kind is None:
            self.streaks.pop(prompt_id, None)
            return False
        prev = self.streaks.get(prompt_id)
        count = prev[1] + 1 if prev and prev[0] == kind else 1
        self.streaks[prompt_id] = [kind, count]
        if count >= self.min_seen:
            self.pruned[prompt_id] = epoch
            self.streaks.pop(prompt_id)
            return True
        return False

    def is_skipped(self, prompt_id: str, epoch: int) -> bool:
        """Whether the prompt is pruned at ``epoch``: pruned at epoch e, it is skipped through epoch e + skip_epochs.
        Once its skip ends it is revisited (and forgotten)."""
        since = self.pruned.get(prompt_id)
        if since is None:
            return False
        if epoch <= since + self.skip_epochs:  # the rest of its epoch, then skip_epochs whole epochs
            return True
        del self.pruned[prompt_id]
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"streaks": {k: list(v) for k, v in self.streaks.items()}, "pruned": dict(self.pruned)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streaks = {str(k): [v[0], int(v[1])] for k, v in state["streaks"].items()}
        self.pruned = {str(k): int(v) for k, v in state["pruned"].items()}


@dataclass
class DifficultyState:
    """Everything the curriculum remembers: tracker, pruner, and the refill stream position."""

    tracker: PassRateTracker = field(default_factory=PassRateTracker)
    pruner: PromptPruner | None = None
    stream_pos: int = 0
    """How many problems the refill/substitution stream has handed out."""

    def observe(self, prompt_id: str, correct: Sequence[bool], epoch: int) -> bool:
        """Update the tracker (and pruner); return True when the prompt got pruned."""
        self.tracker.update(prompt_id, correct)
        return self.pruner.observe(prompt_id, correct, epoch) if self.pruner else False

    def state_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.state_dict(),
            "pruner": self.pruner.state_dict() if self.pruner else None,
            "stream_pos": self.stream_pos,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
        if self.pruner is not None and state.get("pruner") is not None:
            self.pruner.load_state_dict(state["pruner"])
        self.stream_pos = int(state.get("stream_pos", 0))
