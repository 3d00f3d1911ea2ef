"""Token importance scorers for TokenSkip (``reasoner.distill.tokenskip``): self-information, own or reference.

Selective Context (Li et al. 2023, arXiv 2310.06201) scores a text's tokens by their self-information
``I(x_i) = -log p(x_i | x_<i)`` under a causal LM and drops the least informative. Two choices of LM:

- ``self_information``: the sampling model's own logprobs (free: the engine returns them with each sample).
- ``ReferenceScorer``: a separate causal LM (Selective Context's setting: the paper scores with GPT-2, not the
  model whose text it compresses), run with transformers over the question and the completion. Its tokens differ
  from the sampling model's, so its information is moved onto the trace's tokens by character offsets
  (``project_scores``): a reference token's information goes to the trace token where it starts, so a trace
  token gets ``-log p`` of the reference tokens starting inside it (the information of its text, to tokenization
  boundaries).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def self_information(logprobs: Sequence[float]) -> list[float]:
    """Per-token self-information ``-log p(x_i | x_<i)`` (nats) from the sampled tokens' logprobs."""
    return [-lp for lp in logprobs]


def offsets(pieces: Sequence[str]) -> list[int]:
    """Start character of each piece in ``"".join(pieces)``."""
    out, pos = [], 0
    for piece in pieces:
        out.append(pos)
        pos += len(piece)
    return out


def project_scores(
    src_starts: Sequence[int], src_scores: Sequence[float], dst_starts: Sequence[int]
) -> list[float]:
    """Scores of tokens starting at characters ``src_starts`` summed onto the tokens starting at ``dst_starts``
    (both increasing, same text): each source token goes to the last destination token starting at or before it
    (before the first: the first)."""
    out = [0.0] * len(dst_starts)
    if not out:
        return out
    for start, score in zip(src_starts, src_scores, strict=True):
        out[max(0, bisect.bisect_right(dst_starts, start) - 1)] += score
    return out


class ReferenceScorer:
    """Self-information of a completion's tokens under a reference causal LM (module docstring)."""

    def __init__(self, model: str, device: str | None = None):
        """``model``: an alias, local directory or Hub id (``reasoner.models.resolve``); ``device``: default cuda
        when available, else cpu. Weights in fp32."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from reasoner.models import resolve

        path = resolve(model)
        self.name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model_ = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        self.model = model_.to(self.device).eval()  # type: ignore[arg-type]  # as engines/hf.py

    def score(self, context: str, pieces: Sequence[str]) -> list[float]:
        """``-log p`` of the text ``"".join(pieces)`` after ``context`` under the reference LM, per piece."""
        import torch

        text = "".join(pieces)
        ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = torch.tensor([ctx + enc["input_ids"]], device=self.device)
        with torch.inference_mode():
            logp = torch.log_softmax(self.model(ids).logits[0, :-1].float(), dim=-1)
        targets = ids[0, 1:]
        info = (-logp.gather(1, targets[:, None])[:, 0]).tolist()[len(ctx) - 1 :] if ctx else None
        if info is None:  # no context: the first token has no prediction; count it as 0
            info = [0.0, *(-logp.gather(1, targets[:, None])[:, 0]).tolist()]
        starts = [s for s, _ in enc["offset_mapping"]]
        return project_scores(starts, info, offsets(pieces))
