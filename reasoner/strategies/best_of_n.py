"""Best-of-n without a reward model: sample n chains, keep the one the model itself is surest of.

Scores (higher is better), over the chain's T generated tokens:

- ``logprob``: mean log-probability of the sampled tokens, (1/T) sum_t log p(y_t | y_<t);
- ``confidence``: DeepConf's token confidence averaged over the chain, (1/T) sum_t C_t with
  C_t = -(1/k) sum_{j=1..k} log P_t(j) over the top-k tokens at step t (https://arxiv.org/abs/2508.15260).

The answer is the top-scoring chain's answer (chains without an extractable answer are skipped; ties: the
first). Logprobs are of the raw distribution (before temperature), as both engines report them.
Compute: n full chains; sequential = the longest chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from reasoner.strategies.base import Clock, Strategy, Task, parallel_tokens, sample_all
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract_rows
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class BestOfNConfig(StrategyConfig):
    n: int = Field(8, ge=1)
    """Samples per problem (>= 1). Default 8."""
    score: Literal["logprob", "confidence"] = "logprob"
    """Chain score: mean token logprob, or mean DeepConf token confidence. Default logprob."""
    conf_topk: int = Field(5, ge=1, le=20)
    """k of the top-k logprobs behind the confidence score (1..20). Default 5."""


def token_confidences(c: Completion) -> list[float]:
    """DeepConf token confidence per position: -mean of the top-k logprobs (the completion must have been
    generated with ``logprobs_k > 0``, else ``ValueError``)."""
    tops = c.require_top_logprobs("token confidence (DeepConf, best-of-n score=confidence)")
    return [-sum(top.values()) / len(top) if top else 0.0 for top in tops]


def chain_score(c: Completion, score: str) -> float:
    if score == "logprob":
        values = list(c.require_logprobs("best-of-n score=logprob"))
    else:
        values = token_confidences(c)
    return sum(values) / len(values) if values else float("-inf")


class BestOfN(Strategy):
    """best-of-n by the model's own score (see module docstring)."""

    name = "best-of-n"
    Config = BestOfNConfig
    config: BestOfNConfig

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg = self.config
        k = max(spec.logprobs_k, cfg.conf_topk if cfg.score == "confidence" else 0)
        rows, ready = sample_all(engine, tasks, spec, clock, n=cfg.n, logprobs=True, logprobs_k=k)
        out = []
        answer_rows = extract_rows([[c.text for c in row] for row in rows])
        for task, row, t, answers in zip(tasks, rows, ready, answer_rows, strict=True):
            scores = [chain_score(c, cfg.score) for c in row]
            ranked = sorted((i for i, a in enumerate(answers) if a is not None), key=lambda i: -scores[i])
            best = ranked[0] if ranked else None
            votes: dict[str, float] = {}
            for i in ranked:
                answer = answers[i]
                if answer is not None:  # always: ranked holds only the chains with an answer
                    votes.setdefault(answer, scores[i])
            out.append(
                StrategyResult(
                    answer=answers[best] if best is not None else None,
                    completions=tuple(row),
                    votes=votes,
                    tokens=parallel_tokens(engine.tokenizer, task, row),
                    wall_s=t,
                    extra={"scores": scores, "best": best, "answers": answers},
                )
            )
        return out
