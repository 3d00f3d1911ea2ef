"""A scripted engine for unit tests: known texts, lengths, logprobs and entropies, one token per step.

A script maps (prompt text, sample index) to a ``Trace``; the engine tokenizes the trace with a real
tokenizer (the tiny built-in BPE by default) and emits it one token per ``step`` for every live request,
exactly like the real engines: stop strings, ``max_tokens``, EOS, streaming and abort all behave the same.
Continuation works because the script sees the whole prompt text, including any continued prefix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reasoner.engines.base import Engine, ListSession, Session, StreamEvent, _Partial, cut_at_stop, finalize
from reasoner.types import Completion, FinishReason, SampleSpec


@dataclass(frozen=True)
class Trace:
    """What the fake model "generates" for one request."""

    text: str
    entropies: Sequence[float] | None = None
    """Per-token entropy; shorter than the trace means the rest is 0."""
    logprob: float = -0.1
    """Logprob reported for every token."""
    eos: bool = True
    """End with EOS (finish ``stop``); False runs on until ``max_tokens`` by repeating the text."""


Script = Callable[[str, int], "Trace | str"]


def _top_k(tok: int, logprob: float, k: int, vocab: int) -> dict[int, float]:
    """A top-k like a real engine's: the sampled token plus k-1 others sharing the remaining mass evenly,
    so that confidence measures over the top-k (DeepConf) behave: logprob near 0 = peaked = confident."""
    top = {tok: logprob}
    if k > 1:
        rest = max(1.0 - math.exp(logprob), 1e-12) / (k - 1)
        for d in range(1, k):
            top[(tok + d) % vocab] = math.log(rest)
    return top


class FakeSession(ListSession):
    def __init__(self, engine: FakeEngine, prompts: list[list[int]], spec: SampleSpec, entropies: bool):
        self.e, self.spec, self.want_entropy = engine, spec, entropies
        self.plans: dict[int, tuple[list[int], Trace]] = {}
        self.states: dict[int, _Partial] = {}
        for i, prompt in enumerate(prompts):
            text = engine.tokenizer.decode(prompt, skip_special_tokens=False)
            for j in range(spec.n):
                trace = engine.script(text, j)
                trace = Trace(trace) if isinstance(trace, str) else trace
                ids = engine.tokenizer.encode(trace.text, add_special_tokens=False)
                ids = (
                    ids + [engine.eos_id]
                    if trace.eos
                    else (ids or [0]) * (spec.max_tokens // max(len(ids), 1) + 1)
                )
                idx = i * spec.n + j
                self.plans[idx] = (ids, trace)
                self.states[idx] = _Partial(prompt_tokens=len(prompt), t0=time.perf_counter())
        self.live = list(self.plans)

    def _finalize(self, st: _Partial, reason: FinishReason) -> Completion:
        return finalize(self.e.tokenizer, st, reason, self.spec, self.want_entropy)

    def step(self) -> list[StreamEvent]:
        events, still = [], []
        for i in self.live:
            new: list[int] = []
            done = None
            while done is None and len(new) < self.e.tokens_per_step:
                new.append(self._next(i))
                done = self._done(self.states[i])
            if done is None:
                still.append(i)
            st, k = self.states[i], len(new)
            lps = tuple(st.logprobs[-k:]) if self.spec.logprobs else None
            top = tuple(st.top[-k:]) if self.spec.logprobs_k > 0 else None
            events.append(StreamEvent(i, tuple(new), done, lps, top))
        self.live = still
        self.e.steps += 1
        return events

    def _next(self, i: int) -> int:
        """Append request ``i``'s next scripted token (with its logprob, top-k and entropy); return it."""
        ids, trace = self.plans[i]
        st = self.states[i]
        pos = len(st.token_ids)
        tok = ids[pos]
        st.token_ids.append(tok)
        st.logprobs.append(trace.logprob)
        if self.spec.logprobs_k > 0:
            st.top.append(_top_k(tok, trace.logprob, self.spec.logprobs_k, len(self.e.tokenizer)))
        ent = trace.entropies[pos] if trace.entropies and pos < len(trace.entropies) else 0.0
        st.entropies.append(float(ent))
        return tok

    def _done(self, st: _Partial) -> Completion | None:
        """The request's Completion if its last token finished it (EOS, a stop string, max_tokens), else None."""
        tail = self.e.tokenizer.decode(st.token_ids[-16:], skip_special_tokens=True)
        reason: FinishReason | None = None
        if st.token_ids[-1] == self.e.eos_id or (self.spec.stop and cut_at_stop(tail, self.spec.stop)[1]):
            reason = "stop"
        elif len(st.token_ids) >= self.spec.max_tokens:
            reason = "length"
        return self._finalize(st, reason) if reason else None

    def _aborted(self, index: int) -> Completion:
        return self._finalize(self.states[index], "abort")


class FakeEngine(Engine):
    """Scripted engine (see module docstring). ``steps`` counts decoding steps taken (a wall-time proxy).
    ``tokens_per_step`` > 1 emits that many tokens per request per step (fewer when one finishes it), as a
    speculative engine does when it accepts drafts: strategies must give the same results either way."""

    name = "fake"

    def __init__(self, script: Script, tokenizer: Any = None, *, tokens_per_step: int = 1):
        if tokens_per_step < 1:
            raise ValueError(f"tokens_per_step must be >= 1, got {tokens_per_step}")
        self.tokens_per_step = tokens_per_step
        if tokenizer is None:
            from reasoner.models import build_tiny_tokenizer

            tokenizer = build_tiny_tokenizer()
        self.tokenizer = tokenizer
        self.script = script
        self.eos_id = tokenizer.eos_token_id
        self.model_name = "fake"
        self.steps = 0
        self.loaded: list[dict[str, Any]] = []

    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        return FakeSession(self, [list(p) for p in prompts], spec, entropies)

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        self.loaded.append(dict(named_tensors))
