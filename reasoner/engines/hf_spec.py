"""Prompt-lookup speculative decoding inside the transformers engine's own decode loop (issue [14]).

Each step, every live row proposes up to ``k`` draft tokens by n-gram lookup (``propose_ngram``: the rule of
vLLM's ``ngram`` proposer) and the whole batch verifies ``[next_token, draft_1..draft_k]`` in ONE forward pass.
Position j's logits are the model's distribution for the token after ``draft_j`` (``draft_0`` = next_token), so
a row keeps the longest prefix of its draft the model accepts, plus one token of the model's own:

- greedy (``accept_greedy``): accept ``draft_{j+1}`` while it equals ``argmax`` at position j, then append
  the argmax at the first mismatch (or after the last draft). The token ids are exactly plain decoding's.
- sampling (``accept_sampled``): the lossless rule of speculative sampling for a point-mass draft (Leviathan et
  al. 2023, arXiv 2211.17192; Chen et al. 2023, arXiv 2302.01318) with q = delta_x: accept x with probability
  min(1, p(x) / q(x)) = p(x), else sample from the residual norm(max(0, p - q)) = p with x removed,
  renormalised; p is the distribution after temperature, top-k and top-p (``hf.process_logits``). Every emitted
  token is then distributed exactly as in plain sampling (the random stream differs, so seeded samples do too).

Rows accept different numbers of tokens. The batch keeps one ``DynamicCache`` that grows by ``1 + width`` columns a
step for every row (width = the longest draft this step); a row's rejected drafts and padding stay in the cache but
are zeroed in the 2-D attention mask, and per-row ``position_ids`` advance by ``1 + accepted``, so later tokens
see exactly the keys plain decoding would (left padding already works this way). Chosen over per-row cache
cropping: ``DynamicCache.crop`` cuts every row to one length, so rows that accepted more would have to be fed
again; masking costs only the dead columns' attention (at most ``k`` per step, cheap next to the MLPs at
these context lengths) and no extra forward pass.

Bookkeeping per generated token (logprobs in the engine's ``logprobs_mode``, top-k, exact entropies) comes from the
same position's logits as in plain decoding; a ``StreamEvent`` carries every token a row emitted this step,
and stop checks (EOS, stop strings, ``max_tokens``) run token by token, so a finish inside an accepted run
drops the rest, as plain decoding would never have produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from reasoner.engines.base import Session, StreamEvent
from reasoner.engines.hf import HFEngine, HFSession, process_logits, reported_logprobs

if TYPE_CHECKING:
    from reasoner.speculation import Speculative
    from reasoner.types import SampleSpec

__all__ = [
    "SpecCounters",
    "SpeculativeHFEngine",
    "SpeculativeHFSession",
    "accept_greedy",
    "accept_sampled",
    "propose_ngram",
]


@dataclass
class SpecCounters:
    """Running totals of speculative decoding (an engine's ``spec_counters``; read before/after a run)."""

    forwards: int = 0
    """Batched decode forward passes after the prefill (plain steps included)."""
    verify_rows: int = 0
    """Row-steps that verified at least one draft token (vLLM's ``spec_decode_num_drafts``)."""
    drafted: int = 0
    """Draft tokens proposed."""
    accepted: int = 0
    """Draft tokens accepted (vLLM's ``spec_decode_num_accepted_tokens``)."""

    def snapshot(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def propose_ngram(context: Sequence[int], k: int, min_n: int, max_n: int) -> list[int]:
    """Up to ``k`` tokens that followed an earlier occurrence of the context's last n tokens.

    vLLM's ``ngram`` proposer rule (``vllm/v1/spec_decode/ngram_proposer.py``,
    ``_find_longest_matched_ngram_and_propose_tokens``): the longest n with ``max_n >= n >= min_n`` whose
    suffix occurs earlier in ``context`` (prompt + output; occurrences may overlap the suffix but must end before
    the last token), at its EARLIEST occurrence; the draft is the (at most ``k``) tokens after it. transformers'
    ``PromptLookupCandidateGenerator`` also tries n from longest down and takes the first match left to right.
    Empty when nothing matches.
    """
    arr = np.asarray(context, dtype=np.int64)
    for n in range(min(max_n, len(arr) - 1), min_n - 1, -1):
        windows = np.lib.stride_tricks.sliding_window_view(arr[:-1], n)
        hits = np.flatnonzero((windows == arr[-n:]).all(axis=1))
        if hits.size:
            start = int(hits[0]) + n
            return arr[start : start + k].tolist()
    return []


def accept_greedy(argmax: Sequence[int], draft: Sequence[int]) -> list[int]:
    """Tokens a greedy row emits: ``argmax[j]`` (the model's choice after input j) while it equals
    ``draft[j]``, then the first mismatching argmax (or the one after the last draft): accepted + 1 tokens."""
    out = []
    for j, x in enumerate(draft):
        out.append(int(argmax[j]))
        if argmax[j] != x:
            return out
    out.append(int(argmax[len(draft)]))
    return out


def accept_sampled(probs: torch.Tensor, draft: Sequence[int], gen: torch.Generator | None) -> list[int]:
    """Tokens a sampling row emits, from ``probs`` [len(draft) + 1, V] (processed distributions after each
    input): accept ``draft[j]`` with probability p_j(x); at the first rejection sample from p_j with x removed
    (renormalised: the residual max(0, p - delta_x) of arXiv 2211.17192 for a point-mass draft) and stop; when
    all are accepted, sample one more token from the last distribution."""
    out: list[int] = []
    for j, x in enumerate(draft):
        u = torch.rand((), generator=gen, device=probs.device)
        if u < probs[j, x]:
            out.append(int(x))
            continue
        residual = probs[j].clone()
        residual[x] = 0.0
        out.append(int(torch.multinomial(residual, 1, generator=gen)))
        return out
    out.append(int(torch.multinomial(probs[len(draft)], 1, generator=gen)))
    return out


class SpeculativeHFSession(HFSession):
    """``HFSession`` whose decode steps verify n-gram drafts (see module docstring); the prefill is plain."""

    def __init__(self, engine, prompts, spec, entropies, speculative: Speculative, counters: SpecCounters):
        super().__init__(engine, prompts, spec, entropies)
        self.drafting, self.counters = speculative, counters
        self._flat = list(self._prompts)  # request index -> prompt ids (the lookup searches prompt + output)

    def _propose(self) -> list[list[int]]:
        """One draft per live row (``propose_ngram`` over prompt + output), cut so a step emits at most the
        row's remaining ``max_tokens``."""
        d, out = self.drafting, []
        for i in self.rows:
            st = self.states[i]
            room = min(d.k, self.spec.max_tokens - len(st.token_ids) - 1)
            ctx = [*self._flat[i], *st.token_ids]
            out.append(propose_ngram(ctx, room, d.min, d.max) if room > 0 else [])
        return out

    @torch.no_grad()
    def _verify(self, drafts: list[list[int]]) -> torch.Tensor:
        """One forward of ``[next_token, draft, pad...]`` for every row; its [B, 1 + width, V] fp32 logits."""
        assert self.mask is not None and self.pos is not None and self.next_ids is not None  # prefilled
        width, dev = max(map(len, drafts)), self.e.device
        pad = self.e.pad_id
        ids = torch.tensor([[*d, *[pad] * (width - len(d))] for d in drafts], device=dev, dtype=torch.long)
        ids = torch.cat([self.next_ids, ids], dim=-1)
        valid = torch.tensor([[1] * (1 + len(d)) + [0] * (width - len(d)) for d in drafts], device=dev)
        self.mask = torch.cat([self.mask, valid.to(self.mask.dtype)], dim=-1)
        pos = self.pos + 1 + torch.arange(1 + width, device=dev)
        out = self.e.model(input_ids=ids, attention_mask=self.mask, position_ids=pos,
                           past_key_values=self.cache, use_cache=True)  # fmt: skip
        self.cache = out.past_key_values
        return out.logits.float()

    def step(self) -> list[StreamEvent]:
        if self.cache is None or not self.rows:
            return super().step()  # the prefill: one plain token per row
        drafts = self._propose()
        self.counters.forwards += 1
        if not any(drafts):
            return super().step()
        logits = self._verify(drafts)
        emitted = self._accept(logits, drafts)
        width = logits.shape[1]
        assert self.mask is not None and self.pos is not None
        base = self.mask.shape[1] - width
        for r, toks in enumerate(emitted):
            self.mask[r, base + len(toks) :] = 0  # rejected drafts and padding: dead cache columns
            self.pos[r] += len(toks)
            self.counters.verify_rows += bool(drafts[r])
            self.counters.drafted += len(drafts[r])
            self.counters.accepted += len(toks) - 1
        return self._emit(logits, emitted)

    def _accept(self, logits: torch.Tensor, drafts: list[list[int]]) -> list[list[int]]:
        if self.spec.greedy:
            best = logits.argmax(-1).tolist()
            return [accept_greedy(best[r], d) for r, d in enumerate(drafts)]
        b, w, v = logits.shape
        probs = process_logits(logits.view(b * w, v), self.spec).softmax(-1).view(b, w, v)
        return [
            accept_sampled(probs[r, : len(d) + 1], d, self.gens.get(self.rows[r]))
            for r, d in enumerate(drafts)
        ]

    def _emit(self, logits: torch.Tensor, emitted: list[list[int]]) -> list[StreamEvent]:
        """Append each row's tokens one by one (with logprobs, top-k, entropies), stopping at a finish."""
        need = self.want_lp or self.want_entropy
        logp = reported_logprobs(logits, self.spec, self.e.logprobs_mode) if need else None
        tops = torch.topk(logp, self.spec.logprobs_k, dim=-1) if logp is not None and self.want_top else None
        ents = -(logp.exp() * logp).nan_to_num().sum(-1) if logp is not None and self.want_entropy else None
        events, keep, last = [], [], []
        for r, i in enumerate(self.rows):
            st, done, n0 = self.states[i], None, len(self.states[i].token_ids)
            for j, tok in enumerate(emitted[r]):
                st.token_ids.append(tok)
                if logp is not None and self.want_lp:
                    st.logprobs.append(float(logp[r, j, tok]))
                if tops is not None:
                    st.top.append(
                        dict(zip(tops.indices[r, j].tolist(), tops.values[r, j].tolist(), strict=True))
                    )
                if ents is not None:
                    st.entropies.append(float(ents[r, j]))
                reason = self._finish_reason(st, tok)
                if reason:
                    done = self._finalize(st, reason)
                    break
            if done is None:
                keep.append(r)
            last.append(st.token_ids[-1])
            lps = tuple(st.logprobs[n0:]) if self.want_lp else None
            top = tuple(st.top[n0:]) if tops is not None else None
            events.append(StreamEvent(i, tuple(st.token_ids[n0:]), done, lps, top))
        self._keep(keep, torch.tensor(last, dtype=torch.long, device=self.e.device))
        return events


class SpeculativeHFEngine(HFEngine):
    """``HFEngine`` whose sessions verify prompt-lookup drafts (``load_engine(..., speculative=...)``).
    ``spec_counters`` accumulates over its sessions: read it before and after a run."""

    def __init__(self, model: str, *, speculative: Speculative, **kwargs: Any):
        if speculative.method != "ngram":
            raise ValueError(
                f"speculative.method={speculative.method!r}: the hf engine has only 'ngram' drafts"
            )
        super().__init__(model, **kwargs)
        self.speculative = speculative
        self.spec_counters = SpecCounters()

    def start(
        self, prompts: Sequence[Sequence[int]], spec: SampleSpec, *, entropies: bool = False
    ) -> Session:
        prompts_ = [list(p) for p in prompts]
        return SpeculativeHFSession(self, prompts_, spec, entropies, self.speculative, self.spec_counters)
