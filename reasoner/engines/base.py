"""The engine protocol: generate, continue, stream + abort, reload weights (DESIGN section 3).

Every engine is built on one stepping primitive, a ``Session``: requests are added (one per sample, with
its own seed, ``sample_seed(spec, j, prompt)``), ``step()`` advances every live request by one scheduling
step and reports new tokens and finished completions, and ``abort()`` cancels requests, returning their
partial work with finish reason ``abort``. ``Engine.generate`` drives a session to the end;
``Engine.stream`` hands the same session to the caller as an iterator of ``StreamEvent`` with ``abort``. Continuation is generation from
``prompt + partial`` token ids (``Engine.continue_from``), so prefix caching can reuse the shared prefix.

Prompts are token ids (see ``reasoner.prompts.render``): both engines then see identical inputs.
"""

from __future__ import annotations

import math
import time
import zlib
from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasoner.prompts import THINK_END, delimiter_ids, think_end_index
from reasoner.types import Completion, FinishReason, SampleSpec


@dataclass(frozen=True)
class StreamEvent:
    """Progress of one request: the tokens it produced this step, and its Completion once finished."""

    index: int
    """Flat request index: prompt ``i``, sample ``j`` -> ``i * spec.n + j``."""
    new_token_ids: tuple[int, ...]
    finished: Completion | None = None
    logprobs: tuple[float, ...] | None = None
    """Logprob of each new token (raw distribution), aligned with ``new_token_ids``; None unless
    ``spec.logprobs``."""
    top_logprobs: tuple[dict[int, float], ...] | None = None
    """Top-k logprobs at each new position when ``spec.logprobs_k > 0`` (online confidence, DeepConf)."""


@dataclass
class _Partial:
    """Accumulated state of one live request (shared bookkeeping of all engines)."""

    prompt_tokens: int
    t0: float
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[dict[int, float]] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)


class Session(ABC):
    """One batch of requests being decoded step by step. Subclasses implement the three primitives."""

    @abstractmethod
    def step(self) -> list[StreamEvent]:
        """Advance all live requests; return what changed."""

    @abstractmethod
    def abort(self, indices: Iterable[int]) -> list[Completion | None]:
        """Cancel live requests; return their partial completions (finish reason ``abort``), aligned with
        ``indices``: None for a request that was no longer live."""

    @abstractmethod
    def has_unfinished(self) -> bool: ...

    def close(self) -> None:
        """Abort whatever is still running (called when a stream is abandoned)."""


class ListSession(Session):
    """A session that keeps its live requests as a list of indices (``self.live``, set by the subclass);
    ``abort`` asks the subclass for each live request's partial completion (``_aborted``)."""

    live: list[int]

    @abstractmethod
    def _aborted(self, index: int) -> Completion:
        """The partial completion of live request ``index``, finish reason ``abort``."""

    def abort(self, indices: Iterable[int]) -> list[Completion | None]:
        indices = list(indices)
        live = set(self.live)
        out = [self._aborted(i) if i in live else None for i in indices]
        dropped = set(indices)
        self.live = [i for i in self.live if i not in dropped]
        return out

    def has_unfinished(self) -> bool:
        return bool(self.live)

    def close(self) -> None:
        self.live = []


class Stream(Iterator[StreamEvent]):
    """Iterator over a session's events. ``abort(indices)`` cancels requests; ``completions`` holds every
    request's final Completion (index order) once the stream is exhausted."""

    def __init__(self, session: Session, num_requests: int):
        self._session = session
        self._pending: list[StreamEvent] = []
        self.completions: list[Completion | None] = [None] * num_requests

    def __next__(self) -> StreamEvent:
        while not self._pending:
            if not self._session.has_unfinished():
                raise StopIteration
            self._pending.extend(self._session.step())
        event = self._pending.pop(0)
        if event.finished is not None:
            self.completions[event.index] = event.finished
        return event

    def abort(self, indices: Iterable[int]) -> list[Completion]:
        todo = [i for i in indices if self.completions[i] is None]
        done = self._session.abort(todo)
        for i, c in zip(todo, done, strict=True):
            if c is not None:
                self.completions[i] = c
        return [c for c in done if c is not None]

    def all_completions(self) -> list[Completion]:
        """Every request's final Completion in index order, once the stream is exhausted (an error before)."""
        missing = [i for i, c in enumerate(self.completions) if c is None]
        if missing:
            raise RuntimeError(f"stream not exhausted: requests {missing[:8]} have no completion yet")
        return [c for c in self.completions if c is not None]

    def drain(self) -> list[Completion]:
        """Run to the end; return all completions in index order."""
        for _ in self:
            pass
        return [c for c in self.completions if c is not None]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


LOGPROBS_MODES = ("raw", "processed")
"""Values of an engine's ``logprobs_mode`` (vLLM's ``raw_logprobs`` / ``processed_logprobs``)."""


def check_logprobs_mode(mode: str) -> str:
    """``mode`` if it is one of ``LOGPROBS_MODES``, else a ValueError naming it."""
    if mode not in LOGPROBS_MODES:
        raise ValueError(f"logprobs_mode must be one of {', '.join(LOGPROBS_MODES)}, got {mode!r}")
    return mode


class Engine(ABC):
    """A text generator over token-id prompts. See the module docstring for the contract."""

    name: str = "base"
    logprobs_mode: str = "raw"
    """What the reported logprobs (sampled token, top-k, entropies) are of: ``raw``, the model's own
    distribution ``log_softmax(logits)`` (vLLM's default ``raw_logprobs``; what decoding strategies read), or
    ``processed``, the distribution the engine samples from, temperature, top-k and top-p applied (vLLM's
    ``processed_logprobs``; the behaviour policy of RL's importance weights). Greedy requests report raw."""
    model_name: str = ""
    tokenizer: Any = None
    device: str = "cpu"
    """Where the model runs: ``cpu`` or ``cuda``."""
    dtype: str = "n/a"
    """The dtype the weights are loaded in (``float32``, ``bfloat16``, ...), as the run manifest records it."""

    @abstractmethod
    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        """Submit ``len(prompts) * spec.n`` requests; return the live session."""

    @abstractmethod
    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Replace model weights in place (RL weight sync); names as in the HF state dict."""

    def close(self) -> None:
        """Release the engine's resources."""

    def generate(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> list[list[Completion]]:
        """Generate ``spec.n`` completions for every prompt; result[i][j] is sample j of prompt i."""
        flat = Stream(self.start_batch(prompts, spec, entropies=entropies), len(prompts) * spec.n).drain()
        return [flat[i * spec.n : (i + 1) * spec.n] for i in range(len(prompts))]

    def start_batch(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        """The session ``generate`` drains: ``start`` unless an engine has a cheaper non-streaming mode."""
        return self.start(prompts, spec, entropies=entropies)

    def stream(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Stream:
        """Start requests and return a ``Stream`` of per-step events with ``abort``."""
        return Stream(self.start(prompts, spec, entropies=entropies), len(prompts) * spec.n)

    def continue_from(
        self, prompt: Sequence[int], partial: Sequence[int], spec: SampleSpec, *, entropies: bool = False
    ) -> list[Completion]:
        """Continue ``prompt`` + ``partial`` (a partial completion as token ids); returns ``spec.n``
        completions of the continuation only (``prompt_tokens`` counts the prefix)."""
        return self.generate([list(prompt) + list(partial)], spec, entropies=entropies)[0]

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def engine_dtype(dtype: str, device: str) -> str:
    """The dtype an engine loads with: ``"auto"`` on a CPU is ``"float32"`` (bf16 linears measured ~7x slower
    than fp32 on an AVX2 CPU without AVX512-BF16/AMX); otherwise ``dtype`` as given (auto = the checkpoint's)."""
    return "float32" if dtype == "auto" and device == "cpu" else dtype


def prompt_seed(spec: SampleSpec, prompt: Sequence[int]) -> int | None:
    """Base seed of ``prompt``'s samples: a 30-bit hash of (``spec.seed``, the prompt's token ids); None stays
    None. Sample j is seeded ``prompt_seed + j`` (``sample_seed``)."""
    if spec.seed is None:
        return None
    return zlib.crc32(array("q", [spec.seed, *prompt]).tobytes()) & 0x3FFFFFFF


def sample_seed(spec: SampleSpec, j: int, prompt: Sequence[int]) -> int | None:
    """Seed of sample ``j`` of ``prompt``: ``prompt_seed(spec, prompt) + j`` (< 2^31 for j < 2^30); None stays
    None.

    Mixing in the prompt gives every prompt its own random streams. With ``spec.seed + j`` alone, sample j of
    every problem used the same random draws, so the samples of different problems were correlated: measured on
    the overthinking organism (100 problems x 4 samples) avg@4 was 69% with seed 1234 and 81% with seed 0.
    ``+ j`` is vLLM's rule for the children of one n-sample request (``SamplingParams(n, seed=s)`` seeds child j
    with ``s + j``), so ``SamplingParams(n=spec.n, seed=prompt_seed(spec, prompt))`` draws exactly these samples.
    """
    base = prompt_seed(spec, prompt)
    return None if base is None else base + j


def topk_entropy(top: dict[int, float]) -> float:
    """Entropy (nats) estimated from top-k logprobs: H_k = -sum_{i in top-k} p_i log p_i.

    A lower bound of the full entropy for the mass outside the top-k is ignored; it is what vLLM can
    report cheaply (the transformers engine computes the exact full-vocabulary value instead).
    """
    return -sum(math.exp(lp) * lp for lp in top.values() if lp > -math.inf)


def finalize(
    tokenizer: Any, state: _Partial, finish_reason: FinishReason, spec: SampleSpec, want_entropy: bool
) -> Completion:
    """Build the immutable Completion of one request from its accumulated state: the text decoded and cut
    before the first of ``spec.stop``; fields that ``spec`` (or ``want_entropy``) did not ask for are None
    (the same shape on every engine)."""
    ids = tuple(state.token_ids)
    text = cut_at_stop(tokenizer.decode(list(ids), skip_special_tokens=True), spec.stop)[0]
    return Completion(
        token_ids=ids,
        text=text,
        logprobs=tuple(state.logprobs) if spec.logprobs else None,
        top_logprobs=tuple(state.top) if spec.logprobs_k > 0 else None,
        finish_reason=finish_reason,
        prompt_tokens=state.prompt_tokens,
        think_end=think_end_index(ids, delimiter_ids(tokenizer, THINK_END)),
        elapsed_s=time.perf_counter() - state.t0,
        entropies=tuple(state.entropies) if want_entropy else None,
    )


def truncate(
    tokenizer: Any, c: Completion, n: int, reason: FinishReason = "abort", stop: Sequence[str] = ()
) -> Completion:
    """``c`` cut to its first ``n`` tokens with finish ``reason``, as a run stopped there would return it: a live
    abort at step n (``abort``, short-m@k's replay) or a smaller ``max_tokens`` (``length``, budget sweeps).
    The text is decoded again and cut before the first of ``stop``; ``think_end`` is found again in the kept
    tokens; logprobs, top logprobs and entropies are cut too; the wall time is scaled by the fraction kept.
    ``c`` itself when nothing changes (``n >= c.num_tokens`` and ``reason == c.finish_reason``)."""
    if n >= c.num_tokens and reason == c.finish_reason:
        return c
    ids = c.token_ids[:n]
    return Completion(
        token_ids=ids,
        text=cut_at_stop(tokenizer.decode(list(ids), skip_special_tokens=True), stop)[0],
        logprobs=c.logprobs[:n] if c.logprobs is not None else None,
        top_logprobs=c.top_logprobs[:n] if c.top_logprobs is not None else None,
        finish_reason=reason,
        prompt_tokens=c.prompt_tokens,
        think_end=think_end_index(ids, delimiter_ids(tokenizer, THINK_END)),
        elapsed_s=c.elapsed_s * n / max(c.num_tokens, 1),
        entropies=c.entropies[:n] if c.entropies is not None else None,
    )


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; return (text, whether one matched)."""
    cuts = [text.find(s) for s in stop if s and s in text]
    if not cuts:
        return text, False
    return text[: min(cuts)], True
