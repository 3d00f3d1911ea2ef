"""TokenSkip: controllable chain-of-thought compression by dropping the least important reasoning tokens.

TokenSkip (Xia et al. 2025, arXiv 2502.12067; github hemingkx/TokenSkip) samples a model's chain-of-thought on
training problems, keeps the correct ones, scores every reasoning token for importance, keeps the top
``round(gamma * n)`` of a trace's ``n`` reasoning tokens (in their original order) for ratios ``gamma`` in
{1.0, 0.9, 0.8, 0.7, 0.6, 0.5}, and fine-tunes the model on ``question + gamma cue -> compressed CoT + answer``;
at inference the cue (``reasoner.prompts.compression_question``) picks gamma. Only the reasoning is compressed:
here the tokens strictly between ``<think>`` and ``</think>`` (``reasoning_span``); the answer is kept whole.

Importance scorer: the sampling model's own self-information (Selective Context, Li et al. 2023, arXiv
2310.06201), ``s_i = -log p(x_i | x_<i)`` under the raw (temperature-free) distribution, which the engine
returns with each sampled token (``SampleSpec.logprobs``), so scoring costs nothing beyond sampling and runs
offline for any model. The paper uses LLMLingua-2 (arXiv 2403.12968), an XLM-RoBERTa-large token classifier
trained on GPT-4 compressions of English meeting transcripts: 560M parameters and not in the offline model cache.
Measured on the organism's traces (``bench/tokenskip.py``'s scorer check, 53 traces): at gamma 0.6 self-
information keeps 100% of the values the chain computes (the token after ``=``), a reference SmolLM2-135M
(``TokenSkipConfig.scorer``, Selective Context's own setting) 72%, a random scorer 63%; ``numbers_kept@g`` in
``tokenskip_stats`` is the share of digit tokens kept. Its limit there: a near-deterministic model rates most
tokens ~0 (operators, labels) and its re-checks no lower than its first chain, so compression thins every line
instead of dropping the redundant re-checks (README "TokenSkip (issue [14])"). ``TokenSkipConfig.scorer_file``
swaps in LLMLingua-2's kind of scorer, trained on the model's own shortest correct traces
(``reasoner.distill.trained_scorer``).

Selection (``keep_indices``): ``k = round(gamma * n)`` (halves up), the ``k`` highest scores kept, ties going to
the earlier token, order preserved. Data: one SFT row per (correct trace, gamma) with the cue in the prompt;
gamma 1.0 is the original prompt and trace, as in TokenSkip's data (the paper draws one gamma per trace instead;
one row per gamma gives every trace every ratio). ``force_tokens`` / ``force_digits`` keep tokens first whatever
their score (TokenSkip's LLaMA-3 setting: LLMLingua-2 with ``force_tokens=['Step', ':']`` and
``force_reserve_digit``). Lengths are model tokens.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reasoner.distill.data import RecordLog, sample_and_record, sft_row
from reasoner.distill.scorers import self_information
from reasoner.prompts import (
    ANSWER_INSTRUCTION,
    THINK_END,
    THINK_START,
    check_compression,
    compression_question,
    user_message,
)
from reasoner.types import Completion, Problem, SampleSpec

if TYPE_CHECKING:
    from reasoner.distill.scorers import ReferenceScorer
    from reasoner.distill.trained_scorer import TrainedScorer
    from reasoner.engines.base import Engine

log = logging.getLogger(__name__)

GAMMAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
"""TokenSkip's ratios (arXiv 2502.12067, section 4)."""


@dataclass(frozen=True)
class TokenSkipConfig:
    """Settings of a TokenSkip data build."""

    gammas: tuple[float, ...] = GAMMAS
    """Kept ratios of reasoning tokens, each in (0, 1], distinct; one SFT row per (trace, gamma)."""
    instruction: str | None = ANSWER_INSTRUCTION
    """Answer instruction after the question in prompts and SFT rows."""
    system: str | None = None
    """Optional system prompt in prompts and SFT rows. Default None."""
    force_tokens: tuple[str, ...] = ()
    """Tokens always kept, by their text without surrounding spaces (TokenSkip's LLaMA-3 setting of LLMLingua-2:
    ``force_tokens=['Step', ':']``); they rank above every scored token. Default none."""
    force_digits: bool = False
    """Always keep reasoning tokens holding a digit (LLMLingua-2's ``force_reserve_digit``). Default False."""
    scorer: str | None = None
    """Importance scorer: None (default) the sampling model's own self-information; a model name: a reference
    causal LM's self-information (``reasoner.distill.scorers.ReferenceScorer``, Selective Context's setting)."""
    scorer_file: str | None = None
    """A trained keep scorer (``reasoner.distill.trained_scorer``, LLMLingua-2's mould, fitted by ``reasoner
    distill tokenskip-scorer``): importance is its keep probability, read from the stored token ids and self-
    information when the rows are built. Needs the records' own self-information (not ``scorer``). Default None."""

    def __post_init__(self) -> None:
        if not self.gammas:
            raise ValueError("gammas: need at least one ratio")
        for gamma in self.gammas:
            try:
                check_compression(gamma)
            except ValueError:
                raise ValueError(f"gammas: each ratio must be in (0, 1], got {gamma}") from None
        if len(set(self.gammas)) != len(self.gammas):
            raise ValueError(f"gammas: ratios must be distinct, got {list(self.gammas)}")
        if self.scorer_file is not None and self.scorer is not None:
            raise ValueError("scorer_file: the trained scorer reads the sampling model's own self-information; "
                             f"drop the reference scorer {self.scorer!r}")  # fmt: skip


def parse_gammas(text: str) -> tuple[float, ...]:
    """``1.0,0.8,0.5`` -> (1.0, 0.8, 0.5); a ``ValueError`` naming ``--gammas`` otherwise."""
    try:
        gammas = tuple(float(x) for x in text.split(",") if x.strip())
        return TokenSkipConfig(gammas=gammas).gammas
    except ValueError as err:
        raise ValueError(f"--gammas: expected distinct ratios in (0, 1], got {text!r} ({err})") from None


def kept_count(n: int, gamma: float) -> int:
    """``round(gamma * n)`` with halves rounded up: how many of ``n`` reasoning tokens a ratio keeps."""
    check_compression(gamma)
    return min(n, int(gamma * n + 0.5 + 1e-9))


def keep_indices(scores: Sequence[float], gamma: float) -> list[int]:
    """Indices of the ``kept_count(len(scores), gamma)`` highest ``scores``, in increasing order (the tokens'
    order); among equal scores the earlier token is kept."""
    k = kept_count(len(scores), gamma)
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(ranked[:k])


def reasoning_span(pieces: Sequence[str]) -> tuple[int, int] | None:
    """``(start, end)``: the tokens strictly between ``<think>`` and ``</think>`` of a completion given as its
    tokens' texts (start 0 when ``<think>`` was in the prompt); None when it never closes thinking or the span
    is empty. A token holding part of a tag counts as the tag's."""
    text = "".join(pieces)
    close = text.find(THINK_END)
    if close < 0:
        return None
    offsets, pos = [], 0
    for piece in pieces:
        offsets.append(pos)
        pos += len(piece)
    open_ = text.rfind(THINK_START, 0, close)
    body = 0 if open_ < 0 else open_ + len(THINK_START)
    start = next((i for i, o in enumerate(offsets) if o >= body), len(pieces))
    end = max(i for i, o in enumerate(offsets) if o <= close)  # the token holding the start of </think>
    return (start, end) if end > start else None


def trace_record(
    completion: Completion, tokenizer: Any, scorer: ReferenceScorer | None = None, context: str = ""
) -> dict[str, Any] | None:
    """A correct trace as stored in ``records.jsonl``: token ids, importance scores (the sampling model's
    self-information, or ``scorer``'s after ``context``) and the reasoning span; None when the completion has no
    closed, non-empty thinking span."""
    ids = list(completion.token_ids)
    pieces = [tokenizer.decode([i]) for i in ids]
    span = reasoning_span(pieces)
    if span is None:
        return None
    if scorer is None:
        scores = self_information(completion.require_logprobs("distill tokenskip"))
    else:
        scores = scorer.score(context, pieces)
    return {"token_ids": ids, "scores": [round(s, 5) for s in scores], "span": list(span)}


def forced_scores(
    scores: Sequence[float], pieces: Sequence[str], tokens: Sequence[str] = (), digits: bool = False
) -> list[float]:
    """``scores`` with the forced tokens (text in ``tokens`` once stripped, or holding a digit when ``digits``)
    raised to +inf, so that ``keep_indices`` keeps them first (the earliest, when they alone exceed the budget)."""
    forced = set(tokens)
    return [math.inf if p.strip() in forced or (digits and any(c.isdigit() for c in p)) else s
            for s, p in zip(scores, pieces, strict=True)]  # fmt: skip


@functools.lru_cache(maxsize=4)
def load_trained(path: str) -> TrainedScorer:
    """``TrainedScorer.load(path)``, once per path."""
    from reasoner.distill.trained_scorer import TrainedScorer

    return TrainedScorer.load(path)


def span_scores(trace: Mapping[str, Any], tokenizer: Any, config: TokenSkipConfig) -> list[float]:
    """The scores of the trace's reasoning tokens, forced tokens raised (``forced_scores``)."""
    start, end = trace["span"]
    scores = trace["scores"][start:end]
    if config.scorer_file is not None:
        scores = load_trained(config.scorer_file).score(trace["token_ids"][start:end], scores)
    if not config.force_tokens and not config.force_digits:
        return list(scores)
    pieces = [tokenizer.decode([i]) for i in trace["token_ids"][start:end]]
    return forced_scores(scores, pieces, config.force_tokens, config.force_digits)


def compress(trace: Mapping[str, Any], gamma: float, scores: Sequence[float] | None = None) -> list[int]:
    """The trace's token ids with its reasoning cut to ``keep_indices`` at ``gamma`` of ``scores`` (the reasoning
    span's; default: the stored scores)."""
    ids, (start, end) = trace["token_ids"], trace["span"]
    kept = keep_indices(trace["scores"][start:end] if scores is None else scores, gamma)
    return ids[:start] + [ids[start + i] for i in kept] + ids[end:]


def distill_tokenskip(
    engine: Engine | None,
    problems: Sequence[Problem],
    spec: SampleSpec,
    records: RecordLog,
    config: TokenSkipConfig,
    *,
    batch_size: int = 8,
    on_done: Callable[[int], None] | None = None,
    scorer: ReferenceScorer | None = None,
) -> list[dict[str, Any]]:
    """Sample ``spec.n`` traces per problem not yet in ``records`` (with logprobs), keep the correct finished
    ones that close a thinking span (``trace_record``; scored by ``scorer`` when given, which reads the user
    turn before the trace), append one record per problem; return all records."""

    tokenizer = engine.tokenizer if engine is not None else None  # no engine: nothing left to sample

    def make(batch, groups, verdicts):
        out = []
        for problem, group, graded in zip(batch, groups, verdicts, strict=True):
            correct = [bool(v.correct) for v in graded]
            finished = [c.finish_reason == "stop" for c in group]
            context = user_message(problem.question, config.instruction) + "\n"
            traces = [trace_record(c, tokenizer, scorer, context)
                      for c, ok, f in zip(group, correct, finished, strict=True) if ok and f]  # fmt: skip
            out.append({"id": problem.id, "question": problem.question, "answer": problem.answer,
                        "traces": [t for t in traces if t is not None], "sample_tokens": [c.num_tokens for c in group],
                        "sample_correct": correct, "sample_finished": finished})  # fmt: skip
        return out

    spec = dataclasses.replace(spec, logprobs=True)
    return sample_and_record("tokenskip", engine, problems, spec, records, make, instruction=config.instruction,
                             system=config.system, batch_size=batch_size, on_done=on_done)  # fmt: skip


def tokenskip_rows(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, config: TokenSkipConfig
) -> list[dict[str, Any]]:
    """One SFT row per (trace, gamma): the cued question (``compression_question``) -> the compressed trace."""
    rows = []
    for r in records:
        for trace in r["traces"]:
            scores = span_scores(trace, tokenizer, config)
            for gamma in config.gammas:
                ids = compress(trace, gamma, scores)
                question = compression_question(r["question"], gamma)
                row = sft_row(question, tokenizer.decode(ids, skip_special_tokens=True),
                              instruction=config.instruction, system=config.system)  # fmt: skip
                think = ids[trace["span"][0] : len(ids) - (len(trace["token_ids"]) - trace["span"][1])]
                rows.append(row | {"id": r["id"], "question": r["question"], "answer": r["answer"],
                                   "gamma": gamma, "num_tokens": len(ids), "think_tokens": len(think)})  # fmt: skip
    return rows


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def number_tokens(trace: Mapping[str, Any], tokenizer: Any) -> list[int]:
    """Positions (within the reasoning span) of reasoning tokens whose text holds a digit."""
    start, end = trace["span"]
    pieces = [tokenizer.decode([i]) for i in trace["token_ids"][start:end]]
    return [i for i, piece in enumerate(pieces) if any(ch.isdigit() for ch in piece)]


def tokenskip_stats(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, config: TokenSkipConfig
) -> dict[str, Any]:
    """Counts, sample accuracy, mean reasoning tokens per gamma (``think_tokens@g``) and the fraction of digit-
    holding reasoning tokens kept per gamma (``numbers_kept@g``), all over the kept traces."""
    samples = [n for r in records for n in r["sample_tokens"]]
    correct = sum(ok for r in records for ok in r["sample_correct"])
    traces = [t for r in records for t in r["traces"]]
    stats: dict[str, Any] = {
        "method": "tokenskip",
        "scorer": "self-information" if config.scorer is None else f"reference {config.scorer}",
        **({"scorer": f"trained {config.scorer_file}"} if config.scorer_file else {}),
        "forced": " ".join([*config.force_tokens, *(["<digits>"] if config.force_digits else [])]) or "none",
        "problems": len(records),
        "samples": len(samples),
        "correct_samples": correct,
        "sample_accuracy": round(correct / len(samples), 4) if samples else None,
        "traces": len(traces),
        "skipped_no_trace": sum(not r["traces"] for r in records),
        "rows": len(traces) * len(config.gammas),
        "mean_tokens_all": _mean(samples),
    }
    numbers = [set(number_tokens(t, tokenizer)) for t in traces]
    scores = [span_scores(t, tokenizer, config) for t in traces]
    for gamma in config.gammas:
        kept = [set(keep_indices(s, gamma)) for s in scores]
        stats[f"think_tokens@{gamma:g}"] = _mean([len(k) for k in kept])
        hits = sum(len(k & nums) for k, nums in zip(kept, numbers, strict=True))
        total = sum(len(nums) for nums in numbers)
        stats[f"numbers_kept@{gamma:g}"] = round(hits / total, 4) if total else None
    return stats
