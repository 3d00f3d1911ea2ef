"""Chat rendering, the answer instruction, and ``<think> ... </think>`` span detection (in tokens).

Prompts are rendered with the tokenizer's own chat template (as vLLM's ``LLM.chat`` and TRL do) and then
tokenized without adding special tokens again, so both engines see identical prompt token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

ANSWER_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
"""The instruction math reasoning models are evaluated with (DeepSeek-R1, Qwen2.5-Math)."""
THINK_START = "<think>"
THINK_END = "</think>"
ANSWER_CUE = "\n\nThe final answer is \\boxed{"
"""Appended after a forced end of thinking (budget forcing, fractured sampling, early-exit probes)."""


def user_message(question: str, instruction: str | None = ANSWER_INSTRUCTION) -> str:
    """The user turn: the question followed by the answer instruction (if any)."""
    return f"{question}\n{instruction}" if instruction else question


def render(
    tokenizer: Any,
    question: str,
    *,
    instruction: str | None = ANSWER_INSTRUCTION,
    system: str | None = None,
) -> list[int]:
    """Render ``question`` as a single-turn chat with a generation prompt; return prompt token ids.

    Tokenizers without a chat template get the plain user text.
    """
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user_message(question, instruction)})
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer.encode(text, add_special_tokens=False))
    return list(tokenizer.encode(messages[-1]["content"]))


@lru_cache(maxsize=32)
def _delimiter_ids(tokenizer: Any, text: str) -> tuple[int, ...]:
    return tuple(tokenizer.encode(text, add_special_tokens=False))


def delimiter_ids(tokenizer: Any, text: str = THINK_END) -> tuple[int, ...]:
    """Token ids of a delimiter such as ``</think>`` (one id when it is an added token)."""
    try:
        return _delimiter_ids(tokenizer, text)
    except TypeError:  # unhashable tokenizer
        return tuple(tokenizer.encode(text, add_special_tokens=False))


def find_subsequence(seq: Sequence[int], sub: Sequence[int], start: int = 0) -> int:
    """Index of the first occurrence of ``sub`` in ``seq`` at or after ``start``, or -1."""
    n, m = len(seq), len(sub)
    if m == 0:
        return -1
    first = sub[0]
    for i in range(start, n - m + 1):
        if seq[i] == first and tuple(seq[i : i + m]) == tuple(sub):
            return i
    return -1


def think_end_index(token_ids: Sequence[int], end_ids: Sequence[int]) -> int | None:
    """Index just after the first ``</think>`` (given as token ids) in ``token_ids``, or None."""
    i = find_subsequence(token_ids, end_ids)
    return None if i < 0 else i + len(end_ids)


COMPRESSION_CUE = "<|eot_id|>{gamma}<|eot_id|>"
"""TokenSkip's compression-ratio cue (Xia et al. 2025, arXiv 2502.12067; hemingkx/TokenSkip), appended to the
question: ``{question}<|eot_id|>{gamma}<|eot_id|>``. The paper writes it into the user turn as text (its Qwen
template; a tokenizer without a ``<|eot_id|>`` token spells it out)."""


def check_compression(gamma: float) -> float:
    """``gamma`` (the kept ratio of reasoning tokens) when it is in (0, 1]; else a ``ValueError`` naming it."""
    if not 0 < gamma <= 1:
        raise ValueError(f"compression ratio gamma must be in (0, 1], got {gamma}")
    return float(gamma)


def compression_question(question: str, gamma: float | None) -> str:
    """The question with TokenSkip's gamma cue (``COMPRESSION_CUE``), used for its SFT data and at inference.

    ``gamma`` is the ratio of chain-of-thought tokens to keep, in (0, 1]. As in TokenSkip's data and evaluation,
    ``gamma = 1`` (the original traces) and ``None`` (no knob) leave the question unchanged: the model's plain
    prompt is its uncompressed mode. The ratio is written with ``%g`` (0.6 -> ``0.6``)."""
    if gamma is None or check_compression(gamma) == 1:
        return question
    return question + COMPRESSION_CUE.format(gamma=f"{gamma:g}")
