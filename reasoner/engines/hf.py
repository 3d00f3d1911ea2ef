"""The transformers engine: the reference implementation, on any CPU or GPU.

A batched decode loop over a ``DynamicCache``: left-padded prefill, then one token per live request per
``step``. Finished and aborted requests leave the batch at once (``batch_select_indices``), so aborting
really saves compute. Logprobs are ``log_softmax`` of the raw logits (before temperature, as vLLM's default
``raw_logprobs``), or with ``logprobs_mode="processed"`` of the logits the engine samples from (temperature, top-k,
top-p: vLLM's ``processed_logprobs``), computed only when ``spec.logprobs`` or entropies ask; entropies are exact
over the full vocabulary of the same distribution: H = -sum_v p_v log p_v.

Sampling follows vLLM's order: temperature, then top-k, then top-p; each sample has its own
``torch.Generator`` seeded with ``sample_seed(spec, j, prompt)``, so a sample does not depend on what else is in
the batch.

``engines.hf_spec.SpeculativeHFEngine`` adds prompt-lookup speculative decoding to this loop
(``--speculative ngram:...``): the same tokens for greedy decoding, the same distribution for sampling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from reasoner.engines.base import (
    Engine,
    Session,
    StreamEvent,
    _Partial,
    check_logprobs_mode,
    cut_at_stop,
    engine_dtype,
    finalize,
    sample_seed,
)
from reasoner.types import Completion, FinishReason, SampleSpec

if TYPE_CHECKING:
    from transformers import DynamicCache

log = logging.getLogger(__name__)
_DTYPES = {"auto": "auto", "float32": torch.float32, "float": torch.float32, "bfloat16": torch.bfloat16,
           "float16": torch.float16, "half": torch.float16}  # fmt: skip


def process_logits(logits: torch.Tensor, spec: SampleSpec) -> torch.Tensor:
    """Temperature, top-k, top-p (vLLM's order) applied to a [..., V] logits tensor; masked entries -inf."""
    x = logits / spec.temperature
    if spec.top_k > 0 and spec.top_k < x.shape[-1]:
        kth = torch.topk(x, spec.top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if spec.top_p < 1.0:
        sorted_x, order = torch.sort(x, dim=-1, descending=False)
        cum = sorted_x.softmax(-1).cumsum(-1)
        drop_sorted = cum <= 1 - spec.top_p
        drop_sorted[..., -1] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        x = x.masked_fill(drop, float("-inf"))
    return x


def reported_logprobs(logits: torch.Tensor, spec: SampleSpec, mode: str) -> torch.Tensor:
    """The [..., V] logprobs an engine in ``mode`` (``Engine.logprobs_mode``) reports for ``logits``: of the
    raw logits, or (``processed``, not greedy) of ``process_logits``' output, -inf where it masks."""
    processed = mode == "processed" and not spec.greedy
    return torch.log_softmax(process_logits(logits, spec) if processed else logits, -1)


class HFSession(Session):
    """A batch of requests decoded together by the transformers model."""

    def __init__(self, engine: HFEngine, prompts: list[list[int]], spec: SampleSpec, entropies: bool):
        self.e, self.spec, self.want_entropy = engine, spec, entropies
        self.want_lp, self.want_top = spec.logprobs, spec.logprobs_k > 0
        self.rows = list(range(len(prompts) * spec.n))  # live request indices, in batch order
        flat = [p for p in prompts for _ in range(spec.n)]
        self.states = {i: _Partial(prompt_tokens=len(flat[i]), t0=time.perf_counter()) for i in self.rows}
        self.gens = {}
        for i in self.rows:
            seed = sample_seed(spec, i % spec.n, flat[i])
            if seed is not None:
                self.gens[i] = torch.Generator(device=engine.device).manual_seed(seed)
        self._prompts = flat
        # Decoding state, set by the first forward (prefill): KV cache, attention mask, positions, next inputs.
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None
        self.pos: torch.Tensor | None = None
        self.next_ids: torch.Tensor | None = None

    @torch.no_grad()
    def _forward(self) -> torch.Tensor:
        model, dev = self.e.model, self.e.device
        if self.cache is None:
            from transformers import DynamicCache

            width = max(len(p) for p in self._prompts)
            pad = self.e.pad_id
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in self._prompts], device=dev)
            self.mask = torch.tensor(
                [[0] * (width - len(p)) + [1] * len(p) for p in self._prompts], device=dev
            )
            pos = (self.mask.cumsum(-1) - 1).clamp(min=0)
            self.cache = DynamicCache()
            # use_cache explicitly: trainers save checkpoints with config.use_cache=False, and then the
            # cache would silently stay empty (every step would see one token).
            out = model(input_ids=ids, attention_mask=self.mask, position_ids=pos, past_key_values=self.cache,
                        use_cache=True)  # fmt: skip
            self.pos = pos[:, -1:]
        else:
            assert self.mask is not None and self.pos is not None  # set with the cache by the prefill
            self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=-1)
            self.pos = self.pos + 1
            out = model(
                input_ids=self.next_ids,
                attention_mask=self.mask,
                position_ids=self.pos,
                past_key_values=self.cache,
                use_cache=True,
            )
        self.cache = out.past_key_values
        return out.logits[:, -1, :].float()

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        if self.spec.greedy:
            return logits.argmax(-1)
        probs = process_logits(logits, self.spec).softmax(-1)
        picks = [torch.multinomial(probs[r], 1, generator=self.gens.get(i)) for r, i in enumerate(self.rows)]
        return torch.cat(picks)

    def step(self) -> list[StreamEvent]:
        if not self.rows:
            return []
        logits = self._forward()
        tokens = self._sample(logits)
        need_logp = self.want_lp or self.want_entropy
        logp = reported_logprobs(logits, self.spec, self.e.logprobs_mode) if need_logp else None
        # logp is not None whenever one of these asks for it (want_top implies want_lp: SampleSpec checks it)
        picked = (
            logp.gather(-1, tokens.view(-1, 1)).view(-1).tolist()
            if logp is not None and self.want_lp
            else None
        )
        tops = torch.topk(logp, self.spec.logprobs_k, dim=-1) if logp is not None and self.want_top else None
        ents = -(logp.exp() * logp).nan_to_num().sum(-1) if logp is not None and self.want_entropy else None
        events, keep = [], []
        token_list = tokens.tolist()
        for r, i in enumerate(self.rows):
            st, tok = self.states[i], token_list[r]
            st.token_ids.append(tok)
            if picked is not None:
                st.logprobs.append(picked[r])
            if tops is not None:
                st.top.append(dict(zip(tops.indices[r].tolist(), tops.values[r].tolist(), strict=True)))
            if ents is not None:
                st.entropies.append(float(ents[r]))
            reason = self._finish_reason(st, tok)
            done = self._finalize(st, reason) if reason else None
            if done is None:
                keep.append(r)
            lps = (picked[r],) if picked is not None else None
            top = (st.top[-1],) if tops is not None else None
            events.append(StreamEvent(i, (tok,), done, lps, top))
        self._keep(keep, tokens)
        return events

    def _finish_reason(self, st: _Partial, tok: int) -> FinishReason | None:
        if tok in self.e.eos_ids:
            return "stop"
        if self.spec.stop:
            tail = self.e.tokenizer.decode(st.token_ids[-16:], skip_special_tokens=True)
            if cut_at_stop(tail, self.spec.stop)[1]:
                return "stop"
        if len(st.token_ids) >= self.spec.max_tokens:
            return "length"
        return None

    def _finalize(self, st: _Partial, reason: FinishReason) -> Completion:
        return finalize(self.e.tokenizer, st, reason, self.spec, self.want_entropy)

    def _keep(self, keep: list[int], tokens: torch.Tensor) -> None:
        if len(keep) != len(self.rows):
            idx = torch.tensor(keep, dtype=torch.long, device=self.e.device)
            if keep:
                assert self.cache is not None and self.mask is not None and self.pos is not None  # prefilled
                self.cache.batch_select_indices(idx)
                self.mask, self.pos, tokens = self.mask[idx], self.pos[idx], tokens[idx]
            self.rows = [self.rows[r] for r in keep]
        self.next_ids = tokens.view(-1, 1)

    def abort(self, indices: Iterable[int]) -> list[Completion | None]:
        indices = list(indices)
        out = [self._finalize(self.states[i], "abort") if i in self.rows else None for i in indices]
        drop = set(indices)
        keep = [r for r, i in enumerate(self.rows) if i not in drop]
        if self.next_ids is not None:
            self._keep(keep, self.next_ids.view(-1))
        else:  # not prefilled yet: just forget the prompts
            self._prompts = [p for r, p in enumerate(self._prompts) if r in keep]
            self.rows = [self.rows[r] for r in keep]
        return out

    def has_unfinished(self) -> bool:
        return bool(self.rows)

    def close(self) -> None:
        self.rows, self.cache = [], None


class HFEngine(Engine):
    """Generation with a transformers ``AutoModelForCausalLM`` (see module docstring)."""

    name = "hf"

    def __init__(
        self, model: str, *, dtype: str = "auto", device: str | None = None, seed: int = 0,
        logprobs_mode: str = "raw",
    ):  # fmt: skip
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        self.logprobs_mode = check_logprobs_mode(logprobs_mode)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model_name = model
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        torch_dtype = _DTYPES[engine_dtype(dtype, self.device)]
        # transformers types PreTrainedModel.to as a wrapper of nn.Module.to that loses the bound self
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()  # type: ignore[arg-type]
        self.dtype = str(self.model.dtype).removeprefix("torch.")
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = frozenset(eos)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (eos[0] if eos else 0)
        torch.manual_seed(seed)

    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        return HFSession(self, [list(p) for p in prompts], spec, entropies)

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        state = {name: t for name, t in named_tensors}
        result = self.model.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"load_weights: unknown parameter names {result.unexpected_keys[:5]}")
        log.debug("hf: loaded %d tensors", len(state))
