"""DAP, difficulty-aware prompting (Wu et al. 2025, arXiv 2505.19716, github Evanwu1125/LiteCoT).

A teacher model shortens long reasoning traces by an amount that depends on how hard the problem is:

1. trace: the row's long reasoning trace, or one the teacher writes (``render(question)``, greedy by default);
2. rate: the teacher answers a difficulty prompt, its reply primed with ``Difficulty:``; ``parse_difficulty``
   maps the reply to a level (``easy``/``medium``/``hard`` by default, synonyms and 1..K digits accepted;
   unparsable -> the fallback level, counted as ``unrated``);
3. rewrite: the teacher rewrites the trace to at most B(level) tokens (``DAPConfig.budgets``), generation
   capped at ``cap_factor * B`` tokens;
4. verify: the rewrite must reach the gold answer (``reasoner.verify``), end before the cap and be shorter
   (tokens) than the original; otherwise the original is kept and the reason counted
   (``kept_incorrect``, ``kept_truncated``, ``kept_longer``).

Stats per level: problems, rewritten/kept counts, tokens before/after (mean and total) and the reduction.
All lengths are teacher-tokenizer tokens. The paper's teacher is DeepSeek-R1 writing LiteCoT (100K traces,
~720 tokens on average); its budgets are set by the prompt, ours default to 256/512/1024 tokens.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reasoner.distill.data import RecordLog, TraceRow, sft_row
from reasoner.prompts import ANSWER_INSTRUCTION, render
from reasoner.types import Completion, SampleSpec

if TYPE_CHECKING:
    from reasoner.engines.base import Engine

log = logging.getLogger(__name__)

__all__ = ["DAPConfig", "dap_rows", "dap_stats", "distill_dap", "parse_difficulty", "rewrite_outcome"]

DEFAULT_BUDGETS: dict[str, int] = {"easy": 256, "medium": 512, "hard": 1024}
"""Level -> rewrite budget in tokens, easiest first."""
SYNONYMS: dict[str, str] = {
    "simple": "easy", "trivial": "easy", "elementary": "easy", "basic": "easy",
    "moderate": "medium", "intermediate": "medium", "average": "medium", "normal": "medium",
    "difficult": "hard", "challenging": "hard", "complex": "hard", "advanced": "hard", "tough": "hard",
}  # fmt: skip
"""Words mapped onto the default level names when those names are in use."""

RATE_PROMPT = (
    "How difficult is the following math problem for a strong student? Answer with exactly one word: {levels}."
    "\n\nProblem:\n{question}"
)
RATE_CUE = "Difficulty:"
"""Prefilled at the start of the teacher's rating reply (after the chat template's generation prompt), as
budget forcing primes an answer: small chat models then answer with a level word instead of an essay."""
REWRITE_PROMPT = (
    "Below is a math problem and a long solution to it. The problem is {level}. Rewrite the solution to be "
    "concise: use at most {budget} tokens, keep only the steps needed to reach the answer, and end with the "
    "final answer in \\boxed{{}}.\n\nProblem:\n{question}\n\nLong solution:\n{trace}\n\nConcise solution:"
)


@dataclass(frozen=True)
class DAPConfig:
    """Settings of a DAP run."""

    budgets: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    """Difficulty level -> rewrite budget in tokens, easiest first (order defines levels 1..K)."""
    fallback: str | None = None
    """Level used when the rating cannot be parsed; None: the hardest (largest budget, safest). Default None."""
    cap_factor: float = 1.5
    """Rewrite generation stops at ceil(cap_factor * budget) tokens; a rewrite that hits it is rejected."""
    trace_max_tokens: int = 1024
    """Cap (tokens) for traces the teacher writes for rows without one. Default 1024."""
    rate_max_tokens: int = 16
    """Cap (tokens) for the difficulty reply. Default 16."""
    temperature: float = 0.0
    """Teacher sampling temperature for all three calls; 0 = greedy. Default 0."""
    seed: int = 0
    """Sampling seed. Default 0."""
    instruction: str | None = ANSWER_INSTRUCTION
    """Answer instruction in the SFT prompt (and when the teacher writes a trace)."""
    system: str | None = None
    """Optional system prompt in the SFT rows. Default None."""

    def __post_init__(self) -> None:
        if not self.budgets:
            raise ValueError("budgets: need at least one difficulty level")
        for level, budget in self.budgets.items():
            if not re.fullmatch(r"[a-z][a-z_-]*", level):
                raise ValueError(f"budgets: level names are lower-case words, got {level!r}")
            if int(budget) < 1:
                raise ValueError(f"budgets: {level}={budget} must be >= 1 token")
        if self.fallback is not None and self.fallback not in self.budgets:
            raise ValueError(f"fallback: {self.fallback!r} is not a level ({', '.join(self.budgets)})")
        if not self.cap_factor >= 1.0:
            raise ValueError(f"cap_factor: must be >= 1, got {self.cap_factor}")

    @property
    def levels(self) -> list[str]:
        return list(self.budgets)

    @property
    def fallback_level(self) -> str:
        return self.fallback or max(self.budgets, key=lambda k: self.budgets[k])

    def cap(self, level: str) -> int:
        return math.ceil(self.cap_factor * self.budgets[level])


def parse_difficulty(text: str, levels: Sequence[str]) -> str | None:
    """The level a rating reply names: the first level word (or synonym) in it, else a digit 1..K, else None."""
    lowered = text.lower()
    words = {lvl: lvl for lvl in levels}
    words |= {syn: lvl for syn, lvl in SYNONYMS.items() if lvl in words and syn not in words}
    found = [(m.start(), words[m.group(0)]) for m in re.finditer(r"[a-z]+", lowered) if m.group(0) in words]
    if found:
        return min(found)[1]
    digit = re.search(r"\b([1-9])\b", lowered)
    if digit and int(digit.group(1)) <= len(levels):
        return levels[int(digit.group(1)) - 1]
    return None


def rewrite_outcome(tokens_before: int, rewrite: Completion, correct: bool) -> str:
    """``rewritten`` when the rewrite is finished, correct and shorter; else why the original is kept."""
    if rewrite.finish_reason != "stop":
        return "kept_truncated"
    if not correct:
        return "kept_incorrect"
    if rewrite.num_tokens >= tokens_before:
        return "kept_longer"
    return "rewritten"


def _generate(
    engine: Engine, texts: Sequence[str], max_tokens: int, config: DAPConfig, cue: str = ""
) -> list[Completion]:
    """One greedy/sampled completion per raw prompt text (a chat turn, no extra instruction), the reply
    starting after ``cue``."""
    prefix = list(engine.tokenizer.encode(cue, add_special_tokens=False)) if cue else []
    prompts = [render(engine.tokenizer, t, instruction=None) + prefix for t in texts]
    spec = SampleSpec(n=1, max_tokens=max_tokens, temperature=config.temperature, seed=config.seed)
    return [g[0] for g in engine.generate(prompts, spec)] if prompts else []


def _traces(engine: Engine, rows: Sequence[TraceRow], config: DAPConfig) -> list[tuple[str, int, bool]]:
    """(trace, tokens, written by the teacher) per row; missing traces are generated in one batch."""
    missing = [i for i, r in enumerate(rows) if not r.trace]
    written: dict[int, Completion] = {}
    if missing:
        prompts = [render(engine.tokenizer, rows[i].problem.question, instruction=config.instruction,
                          system=config.system) for i in missing]  # fmt: skip
        spec = SampleSpec(n=1, max_tokens=config.trace_max_tokens, temperature=config.temperature,
                          seed=config.seed)  # fmt: skip
        written = {i: g[0] for i, g in zip(missing, engine.generate(prompts, spec), strict=True)}
    out = []
    for i, row in enumerate(rows):
        if i in written:
            out.append((written[i].text, written[i].num_tokens, True))
        else:
            assert row.trace is not None  # rows without a trace were written above
            out.append((row.trace, len(engine.tokenizer.encode(row.trace, add_special_tokens=False)), False))
    return out


def _dap_batch(engine: Engine, rows: Sequence[TraceRow], config: DAPConfig) -> list[dict[str, Any]]:
    from reasoner.verify import grade_many

    traces = _traces(engine, rows, config)
    levels_text = ", ".join(config.levels)
    replies = _generate(engine, [RATE_PROMPT.format(levels=levels_text, question=r.problem.question)
                                 for r in rows], config.rate_max_tokens, config, RATE_CUE)  # fmt: skip
    parsed = [parse_difficulty(c.text, config.levels) for c in replies]
    levels = [p or config.fallback_level for p in parsed]
    rewrites = []
    for level in dict.fromkeys(levels):  # one generate call per level: the cap differs
        idx = [i for i, lv in enumerate(levels) if lv == level]
        texts = [REWRITE_PROMPT.format(level=level, budget=config.budgets[level], question=rows[i].problem.question,
                                       trace=traces[i][0]) for i in idx]  # fmt: skip
        rewrites += list(zip(idx, _generate(engine, texts, config.cap(level), config), strict=True))
    rewrite = dict(rewrites)
    golds = [r.problem.answer for r in rows]
    verdicts = grade_many(golds * 2, [t[0] for t in traces] + [rewrite[i].text for i in range(len(rows))])
    out = []
    for i, row in enumerate(rows):
        (trace, before, generated), new = traces[i], rewrite[i]
        outcome = rewrite_outcome(before, new, verdicts[len(rows) + i].correct)
        final_ok = verdicts[len(rows) + i].correct if outcome == "rewritten" else verdicts[i].correct
        out.append({
            "id": row.problem.id, "question": row.problem.question, "answer": row.problem.answer,
            "level": levels[i], "rated": parsed[i] is not None, "rating_reply": replies[i].text,
            "budget": config.budgets[levels[i]], "trace_generated": generated,
            "original_correct": verdicts[i].correct, "outcome": outcome, "final_correct": final_ok,
            "tokens_before": before, "tokens_rewrite": new.num_tokens,
            "tokens_after": new.num_tokens if outcome == "rewritten" else before,
            "completion": new.text if outcome == "rewritten" else trace,
        })  # fmt: skip
    return out


def distill_dap(
    engine: Engine | None,
    rows: Sequence[TraceRow],
    config: DAPConfig,
    records: RecordLog,
    *,
    batch_size: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run DAP (module docstring) over ``rows`` not yet in ``records``; return all records of ``rows``.

    ``engine`` is the teacher (a ``reasoner.engines`` engine); ``batch_size`` problems go through the three
    teacher calls together and are appended to ``records`` when done (an interrupted run resumes); it may be
    None when every row is already in ``records``.
    """
    done = records.done_ids()
    todo = [r for r in rows if r.problem.id not in done]
    log.info("dap: %d problems to do, %d done", len(todo), len(rows) - len(todo))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        if engine is None:
            raise ValueError(f"distill_dap: {len(todo)} problems left to do and no engine")
        records.append(_dap_batch(engine, batch, config))
        if on_done is not None:
            on_done(len(batch))
    wanted = {r.problem.id for r in rows}
    return [r for r in records.read() if r["id"] in wanted]


def dap_rows(
    records: Sequence[Mapping[str, Any]], config: DAPConfig, *, require_correct: bool = False
) -> list[dict[str, Any]]:
    """SFT rows (prompt-completion); ``require_correct`` drops rows whose kept trace misses the gold."""
    rows = []
    for r in records:
        if require_correct and not r["final_correct"]:
            continue
        row = sft_row(r["question"], r["completion"], instruction=config.instruction, system=config.system)
        rows.append(row | {key: r[key] for key in ("id", "question", "answer", "level", "outcome",
                                                     "tokens_before", "tokens_after")})  # fmt: skip
    return rows


def _level_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    before = [r["tokens_before"] for r in records]
    after = [r["tokens_after"] for r in records]
    outcomes = [r["outcome"] for r in records]
    out: dict[str, Any] = {"problems": len(records), "rewritten": outcomes.count("rewritten"),
                           "kept": len(records) - outcomes.count("rewritten")}  # fmt: skip
    for reason in ("kept_incorrect", "kept_truncated", "kept_longer"):
        out[reason] = outcomes.count(reason)
    out["tokens_before_mean"] = round(statistics.fmean(before), 2) if before else None
    out["tokens_after_mean"] = round(statistics.fmean(after), 2) if after else None
    out["tokens_before_total"], out["tokens_after_total"] = sum(before), sum(after)
    out["reduction"] = round(1 - sum(after) / sum(before), 4) if sum(before) else None
    return out


def dap_stats(
    records: Sequence[Mapping[str, Any]], config: DAPConfig, *, require_correct: bool = False
) -> dict:
    """Per level and overall: problems, rewritten/kept (with reasons), tokens before/after, reduction."""
    levels = {lvl: _level_stats([r for r in records if r["level"] == lvl]) for lvl in config.levels}
    return {
        "method": "dap",
        "budgets": dict(config.budgets),
        "levels": levels,
        "overall": _level_stats(records),
        "unrated": sum(not r["rated"] for r in records),
        "traces_generated": sum(r["trace_generated"] for r in records),
        "original_correct": sum(r["original_correct"] for r in records),
        "final_correct": sum(r["final_correct"] for r in records),
        "dropped_incorrect": sum(not r["final_correct"] for r in records) if require_correct else 0,
    }
