"""DeepConf: confidence-filtered, confidence-weighted voting (Fu et al. 2025, https://arxiv.org/abs/2508.15260).

Token confidence over the top-k logprobs at step t (higher = a more peaked distribution = surer):

    C_t   = -(1/k) sum_{j=1..k} log P_t(j)
    C_G(t) = (1/w) sum_{s=t-w+1..t} C_s                  (group confidence, sliding window of w tokens)
    trace confidence c = min_t C_G(t)  ("lowest-group", DeepConf's default; a trace shorter than w is one
                         group), or mean_t C_t ("mean"), or the mean over the last w tokens ("tail")

- offline: sample k traces, keep the top ``keep`` fraction by c, vote weighted by c:
  answer = argmax_a sum_{i kept} c_i 1[ans_i == a]   (ties: first appearance).
- online: sample ``warmup`` traces per problem in full; bar s = the (1 - keep) quantile of their c
  (keep = 0.9 is DeepConf-high, 0.1 DeepConf-low); stream the other k - warmup traces and abort a trace as
  soon as its current window (once it holds w tokens) has C_G < s. Aborted traces do not vote; the rest
  (warm-up included) vote weighted by c.

Confidences come from the engine's top-k logprobs of the raw distribution (``conf_topk``; vLLM caps k at 20).
Tokens: generated includes aborted traces' partial work; sequential = the longest trace (offline) or the
longest warm-up trace + the longest streamed trace (online: two phases).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from reasoner.engines.base import truncate
from reasoner.strategies.base import (
    Clock,
    Ledger,
    Strategy,
    Task,
    derive,
    offset_seed,
    parallel_tokens,
    sample_all,
)
from reasoner.strategies.best_of_n import token_confidences
from reasoner.strategies.params import StrategyConfig
from reasoner.strategies.voting import extract_rows, vote
from reasoner.types import Completion, SampleSpec, StrategyResult

if TYPE_CHECKING:
    from reasoner.engines.base import Engine


class DeepConfConfig(StrategyConfig):
    k: int = Field(8, ge=1)
    """Traces per problem, warm-up included (>= 1). Default 8."""
    mode: Literal["offline", "online"] = "offline"
    """offline: filter finished traces; online: stop traces early against a warm-up bar. Default offline."""
    warmup: int = Field(4, ge=1)
    """Online: warm-up traces per problem that set the bar (1 <= warmup <= k). Default 4."""
    window: int = Field(64, ge=1)
    """Sliding window w in tokens for group confidence (>= 1; the paper uses 2048). Default 64."""
    conf_topk: int = Field(5, ge=1, le=20)
    """k of the top-k logprobs in the token confidence (1..20). Default 5."""
    keep: float = Field(0.9, gt=0, le=1)
    """Fraction of traces kept (offline), or 1 - the warm-up quantile used as the bar (online), in (0, 1]."""
    metric: Literal["lowest-group", "mean", "tail"] = "lowest-group"
    """Trace confidence: lowest window mean, mean over all tokens, or mean of the last window."""

    @model_validator(mode="after")
    def _warmup_within_k(self) -> DeepConfConfig:
        if self.warmup > self.k:
            raise ValueError(f"warmup must be in [1, k={self.k}], got {self.warmup}")
        return self


def trace_confidence(c: Completion, metric: str, window: int) -> float:
    """Trace confidence of a completion (module docstring); 0 for an empty one."""
    conf = token_confidences(c)
    if not conf:
        return 0.0
    if metric == "mean":
        return sum(conf) / len(conf)
    if metric == "tail" or len(conf) <= window:
        tail = conf[-window:]
        return sum(tail) / len(tail)
    run = sum(conf[:window])
    low = run
    for t in range(window, len(conf)):
        run += conf[t] - conf[t - window]
        low = min(low, run)
    return low / window


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated q-quantile (numpy's default), q in [0, 1]."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class DeepConf(Strategy):
    """DeepConf offline / online (see module docstring)."""

    name = "deepconf"
    Config = DeepConfConfig
    config: DeepConfConfig

    @property
    def live(self) -> bool:
        return self.config.mode == "online"

    def _run(self, engine: Engine, tasks: list[Task], spec: SampleSpec, clock: Clock) -> list[StrategyResult]:
        cfg = self.config
        lk = max(spec.logprobs_k, cfg.conf_topk)
        if cfg.mode == "offline":
            rows, ready = sample_all(engine, tasks, spec, clock, n=cfg.k, logprobs=True, logprobs_k=lk)
            answer_rows = extract_rows([[c.text for c in row] for row in rows])
            return [
                self._offline(engine.tokenizer, t, row, r, answers)
                for t, row, r, answers in zip(tasks, rows, ready, answer_rows, strict=True)
            ]
        warm, _ = sample_all(engine, tasks, spec, clock, n=cfg.warmup, logprobs=True, logprobs_k=lk)
        bars = [quantile([self._conf(c) for c in row], 1 - cfg.keep) for row in warm]
        start = clock.now()
        streamed = self._stream(engine, tasks, bars, derive(spec, logprobs=True, logprobs_k=lk))
        out = []
        answer_rows = extract_rows([[c.text for c in [*w, *s]] for w, s in zip(warm, streamed, strict=True)])
        for task, w, s, bar, answers in zip(tasks, warm, streamed, bars, answer_rows, strict=True):
            done_at = Clock.ready(start, s or w)
            out.append(self._online(engine.tokenizer, task, w, s, bar, done_at, answers))
        return out

    def _conf(self, c: Completion) -> float:
        return trace_confidence(c, self.config.metric, self.config.window)

    def _offline(
        self, tok: Any, task: Task, row: list[Completion], ready: float, answers: list[str | None]
    ) -> StrategyResult:
        confs = [self._conf(c) for c in row]
        kept = sorted(
            sorted(range(len(row)), key=lambda i: -confs[i])[: max(1, math.ceil(self.config.keep * len(row)))]
        )
        v = vote([answers[i] for i in kept], weights=[confs[i] for i in kept])
        extra = {"confidences": confs, "kept": kept, "answers": answers}
        return StrategyResult(v.answer, tuple(row), v.votes, parallel_tokens(tok, task, row), ready, extra)

    def _stream(
        self, engine: Engine, tasks: list[Task], bars: list[float], spec: SampleSpec
    ) -> list[list[Completion]]:
        """The k - warmup online traces of every problem in one stream, each aborted when its window
        confidence drops below its problem's bar."""
        cfg = self.config
        n = cfg.k - cfg.warmup
        if n == 0:
            return [[] for _ in tasks]
        windows: list[deque[float]] = [deque(maxlen=cfg.window) for _ in range(len(tasks) * n)]
        seen = [0] * (len(tasks) * n)
        stopped: dict[int, int] = {}  # request -> tokens at the position its window fell below the bar
        online = derive(spec, n=n, seed=offset_seed(spec, cfg.warmup))
        with engine.stream([t.ids for t in tasks], online) as stream:
            for ev in stream:
                i, win, bar = ev.index, windows[ev.index], bars[ev.index // n]
                if ev.top_logprobs is None:
                    raise ValueError("deepconf online: the engine streamed no top-k logprobs")
                # token by token: a step may carry several tokens (speculative decoding); plain decoding
                # would have stopped at the first position whose window mean fell below the bar
                last, was_stopped = len(ev.top_logprobs) - 1, i in stopped
                for j, top in enumerate(ev.top_logprobs):
                    seen[i] += 1
                    win.append(-sum(top.values()) / len(top) if top else 0.0)
                    low = sum(win) / cfg.window < bar - 1e-9 * max(1.0, abs(bar))
                    ended = ev.finished is not None and j == last  # finished by this token: nothing to stop
                    if len(win) == cfg.window and low and not ended and i not in stopped:
                        stopped[i] = seen[i]
                if i in stopped and not was_stopped and ev.finished is None:
                    stream.abort([i])
        flat = [
            truncate(engine.tokenizer, c, stopped[i], "abort", online.stop) if i in stopped else c
            for i, c in enumerate(stream.all_completions())
        ]
        return [flat[p * n : (p + 1) * n] for p in range(len(tasks))]

    def _online(
        self,
        tok: Any,
        task: Task,
        warm: list[Completion],
        streamed: list[Completion],
        bar: float,
        ready: float,
        answers: list[str | None],
    ) -> StrategyResult:
        row = [*warm, *streamed]
        confs = [self._conf(c) for c in row]
        voters = [i for i, c in enumerate(row) if c.finish_reason != "abort"]
        v = vote([answers[i] for i in voters], weights=[confs[i] for i in voters])
        ledger = Ledger()
        for c in row:
            ledger.add_split(tok, c, task.span_open)
        longest = max(c.num_tokens for c in warm) + max((c.num_tokens for c in streamed), default=0)
        extra = {
            "confidences": confs,
            "bar": bar,
            "aborted": [i for i, c in enumerate(row) if c.finish_reason == "abort"],
            "answers": answers,
        }
        return StrategyResult(v.answer, tuple(row), v.votes, ledger.count(longest), ready, extra)
