"""Frozen dataclasses that flow between the toolkit's stages (DESIGN section 2).

Standard library only: every stage (engines, strategies, verification, evaluation, training) speaks these
types, so each can be tested alone. Lengths are always counted in tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

FinishReason = Literal["stop", "length", "abort"]
VerdictStatus = Literal["ok", "no_answer", "unparsable", "timeout", "error"]


@dataclass(frozen=True)
class Problem:
    """One benchmark or training row, normalised."""

    id: str
    """Stable identifier, unique within its benchmark."""
    question: str
    """The problem statement as shown to the model (before chat rendering)."""
    answer: str
    """The gold answer, normalised to a string math-verify can parse."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form extras (difficulty level, source, subject, ...)."""


@dataclass(frozen=True)
class SampleSpec:
    """How to sample. Field names and meanings follow vLLM's ``SamplingParams``."""

    n: int = 1
    """Samples per prompt (>= 1)."""
    max_tokens: int = 512
    """Cap on generated tokens per sample (>= 1)."""
    temperature: float = 0.7
    """Softmax temperature; 0 means greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 (or -1) disables."""
    seed: int | None = None
    """Base seed; sample j of a prompt uses its own seed, a hash of (seed, j, prompt token ids)
    (``reasoner.engines.base.sample_seed``), so different prompts get independent random streams. None: not
    reproducible."""
    stop: tuple[str, ...] = ()
    """Stop strings; the matched string is not included in the text."""
    logprobs: bool = False
    """Return the sampled token's logprob at every position (``Completion.logprobs``). Off by default, as
    vLLM's ``SamplingParams.logprobs=None``: computing them costs throughput (full-vocabulary log-softmax and a
    Python object per token on vLLM), so only callers that read them ask: training rollouts (importance
    ratios, the weight-sync check), best-of-n, DeepConf, early exit's probes. Without it ``Completion.logprobs``
    and ``top_logprobs`` are None, and ``Completion.require_logprobs`` raises for a reader that needed them."""
    logprobs_k: int = 0
    """Also return the top-k logprobs at every position (0: none); needs ``logprobs=True``."""

    def __post_init__(self) -> None:
        checks = [
            ("n", self.n, self.n >= 1, ">= 1"),
            ("max_tokens", self.max_tokens, self.max_tokens >= 1, ">= 1"),
            ("temperature", self.temperature, self.temperature >= 0, ">= 0"),
            ("top_p", self.top_p, 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", self.top_k, self.top_k >= -1, ">= -1"),
            ("logprobs_k", self.logprobs_k, 0 <= self.logprobs_k <= 20, "in [0, 20]"),
        ]
        for name, value, ok, rule in checks:
            if not ok:
                raise ValueError(f"SampleSpec.{name} must be {rule}, got {value!r}")
        if self.logprobs_k > 0 and not self.logprobs:
            raise ValueError(
                f"SampleSpec.logprobs_k={self.logprobs_k} needs logprobs=True (top-k logprobs come with the "
                "sampled token's)"
            )
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Completion:
    """One generated sample, with token-level truth."""

    token_ids: tuple[int, ...]
    """Generated token ids (the prompt and any continued prefix excluded)."""
    text: str
    """Decoded ``token_ids`` (special tokens skipped, stop string cut)."""
    logprobs: tuple[float, ...] | None
    """Log-probability of each sampled token under the raw model distribution (before temperature); None
    when the request did not ask for them (``SampleSpec.logprobs``). Readers use ``require_logprobs``."""
    top_logprobs: tuple[dict[int, float], ...] | None
    """Per position, the top-k token ids and logprobs (raw distribution), when ``logprobs_k > 0``."""
    finish_reason: FinishReason
    """``stop`` (EOS or a stop string), ``length`` (hit max_tokens) or ``abort`` (cancelled)."""
    prompt_tokens: int
    """Tokens in the prompt that was prefilled for this sample (including a continued prefix)."""
    think_end: int | None = None
    """Index in ``token_ids`` just after ``</think>``, when the sample closed a thinking span."""
    elapsed_s: float = 0.0
    """Wall time from submission to the last token of this sample."""
    entropies: tuple[float, ...] | None = None
    """Per-position entropy (nats) of the raw next-token distribution: exact on the transformers engine,
    top-k on vLLM. None unless asked for."""

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    def require_logprobs(self, reader: str) -> tuple[float, ...]:
        """``logprobs``, or a ``ValueError`` naming ``reader`` when they were not requested."""
        if self.logprobs is None:
            raise ValueError(
                f"{reader} reads sampled-token logprobs, but this completion was generated without them: "
                "request them with SampleSpec(logprobs=True)"
            )
        return self.logprobs

    def require_top_logprobs(self, reader: str) -> tuple[dict[int, float], ...]:
        """``top_logprobs``, or a ``ValueError`` naming ``reader`` when they were not requested."""
        if self.top_logprobs is None:
            raise ValueError(
                f"{reader} reads top-k logprobs, but this completion was generated without them: request "
                "them with SampleSpec(logprobs=True, logprobs_k=k)"
            )
        return self.top_logprobs


@dataclass(frozen=True)
class Verdict:
    """The verifier's decision on one response."""

    correct: bool
    extracted: str | None
    """The answer string found in the response, or None."""
    status: VerdictStatus = "ok"
    """``ok`` (compared), ``no_answer`` (nothing extracted), ``unparsable``, ``timeout``, or ``error`` (the
    verifier itself failed: an exception inside math-verify, or a worker that died twice; logged and counted)."""


@dataclass(frozen=True)
class TokenCount:
    """What a strategy spent. ``generated`` is total compute; ``sequential`` is what a user waits for."""

    generated: int = 0
    """All generated tokens, including partial work of aborted requests."""
    prefilled: int = 0
    """Prompt tokens processed (prefix-cache hits included)."""
    thinking: int = 0
    """Generated tokens inside thinking spans."""
    answer: int = 0
    """Generated tokens after thinking (or all, for models without thinking spans)."""
    sequential: int = 0
    """Length of the longest chain of dependent decoding steps (a latency proxy)."""

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(
            generated=self.generated + other.generated,
            prefilled=self.prefilled + other.prefilled,
            thinking=self.thinking + other.thinking,
            answer=self.answer + other.answer,
            sequential=max(self.sequential, other.sequential),
        )


@dataclass(frozen=True)
class StrategyResult:
    """The outcome of running a strategy on one problem."""

    answer: str | None
    """The chosen answer (extracted string), or None when no sample produced one."""
    completions: tuple[Completion, ...]
    votes: dict[str, float]
    """Answer -> vote weight (count, or confidence-weighted)."""
    tokens: TokenCount
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    """Strategy-specific details (per-depth answers, branch points, ...)."""


_T = TypeVar("_T")


def filled(slots: Sequence[_T | None], what: str) -> list[_T]:
    """``slots`` (a list filled in by index) with every slot set, typed ``list[T]``. A slot still None is a bug
    in the code that fills it, never bad data: a ``RuntimeError`` naming ``what`` and the empty slots."""
    empty = [i for i, x in enumerate(slots) if x is None]
    if empty:
        raise RuntimeError(f"{what}: slots {empty[:8]} of {len(slots)} were never filled")
    return [x for x in slots if x is not None]


MergeScope = Literal["tensor", "global"]
"""Where update-selective merging ranks |delta|: within each tensor, or over all parameters together."""
MERGE_SCOPES: tuple[str, ...] = get_args(MergeScope)
