"""Lossless speculative decoding with a training-free draft: n-gram (prompt-lookup) proposals.

Long chains of thought repeat themselves (a re-check copies earlier lines), so the tokens that follow the last few
generated tokens can often be found earlier in the prompt or the output. Prompt-lookup decoding (Saxena 2023,
github apoorvumang/prompt-lookup-decoding; vLLM's ``ngram`` proposer) matches the last n tokens (``min`` <= n <=
``max``) against the context and proposes the ``k`` tokens that followed the match; the model verifies all ``k``
in one forward pass and keeps the longest prefix it would have produced itself, plus one token of its own. The
output distribution is unchanged (exactly so for greedy decoding: the same token ids); only the number of target
forward passes per generated token falls, by the mean number of accepted draft tokens per step. Seeds that use
such drafts on reasoning traces: Goose, Token Recycling (issue [14]).

Backends: vLLM's speculative config (``vllm_speculative_config``); the transformers engine has none yet
(``load_engine`` refuses it with a clear error).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Speculative", "parse_speculative", "vllm_speculative_config"]


class Speculative(BaseModel):
    """A speculative-decoding setting (``--speculative ngram:k=4,max=4,min=2``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["ngram"] = "ngram"
    """Draft source: ``ngram`` (prompt lookup over the prompt and the output so far). Default ngram."""
    k: int = Field(4, ge=1)
    """Draft tokens proposed per verification step. Default 4."""
    max: int = Field(4, ge=1)
    """Longest n-gram matched against the context (tokens). Default 4."""
    min: int = Field(2, ge=1)
    """Shortest n-gram matched (tokens); <= max. Default 2."""

    @model_validator(mode="after")
    def _ordered(self) -> Speculative:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
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
    return {"method": spec.method, "num_speculative_tokens": spec.k, "prompt_lookup_max": spec.max,
            "prompt_lookup_min": spec.min}  # fmt: skip
