"""The speculative-decoding setting (``--speculative``, ``EvalConfig.speculative``, ``rollout.speculative``): a
pydantic model and its ``METHOD[:key=value,...]`` text form. Layer 0, so config sections can check the text;
what the setting means and which engines run it: ``reasoner.engines.speculative``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "NGRAM_KEYS",
    "SUFFIX_KEYS",
    "Speculative",
    "check_speculative",
    "parse_speculative",
    "speculative_or_none",
]

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


def check_speculative(text: str | None) -> str | None:
    """A config field's ``--speculative`` text, checked by ``parse_speculative`` (``ValueError`` naming the bad
    part) and kept as written; None stays None (off)."""
    if text is not None:
        parse_speculative(text)
    return text


def speculative_or_none(text: str | None) -> Speculative | None:
    """``parse_speculative(text)``, or None for None (a config field's value -> ``load_engine``'s argument)."""
    return None if text is None else parse_speculative(text)
