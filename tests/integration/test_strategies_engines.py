"""Every decoding strategy on the tiny fp32 model, through both engines (transformers and vLLM).

The model is random, so answers are noise: these tests check the contract (shapes, honest token accounting,
aborts, budgets, prefix lengths) and agreement between engines and between live and simulated short-m@k.
"""

from __future__ import annotations

import pytest

from reasoner.prompts import ANSWER_CUE, THINK_END, render
from reasoner.strategies import STRATEGIES, build_strategy
from reasoner.strategies.base import span_open, thinking_prefix
from reasoner.types import Problem, SampleSpec

PROBLEMS = [Problem("a", "What is 2+3?", "5"), Problem("b", "Solve for x: 3x + 4 = 19.", "5")]
SPEC = SampleSpec(max_tokens=16, temperature=1.0, seed=0)
PARAMS = {
    "greedy": {},
    "sample": {},
    "majority": {"k": "3"},
    "best-of-n": {"n": "3", "score": "confidence"},
    "short-m@k": {"k": "4", "m": "2"},
    "fractured": {"n": "2", "H": "2", "answer_tokens": "4"},
    "entropy-branch": {"threshold": "1.0", "max_branches": "2"},
    "budget-forcing": {"budget": "8", "min_thinking": "6", "answer_tokens": "4"},
    "early-exit": {"markers": "e|a", "min_gap": "4", "probe_tokens": "4", "max_probes": "2"},
    "deepconf": {"k": "4", "mode": "online", "warmup": "2", "window": "4"},
    "adaptive:majority": {"mean": "3", "max_k": "5"},
    "adaptive:short-m@k": {"mean": "3", "min_k": "2", "max_k": "5", "m": "2"},
}
KINDS = ["hf", "vllm"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_on_real_engine(engines, kind, name, tmp_path):
    params = dict(PARAMS[name])
    if name.startswith(
        "adaptive:"
    ):  # a real probe file (planted weights) on the tiny model's real hidden states
        params["probe"] = str(_planted_probe(engines[kind].model_name, tmp_path))
    results = build_strategy(name, params).run_batch(engines[kind], PROBLEMS, SPEC)
    assert len(results) == len(PROBLEMS)
    for r in results:
        t = r.tokens
        assert r.completions and all(c.num_tokens <= SPEC.max_tokens for c in r.completions)
        assert t.generated == sum(c.num_tokens for c in r.completions)
        assert t.prefilled == sum(c.prompt_tokens for c in r.completions)
        assert t.thinking + t.answer == t.generated
        assert 0 < t.sequential <= t.generated
        assert 0 <= r.wall_s <= r.extra["batch_wall_s"] + 1e-6
        assert r.answer is None or r.answer in r.votes


def _planted_probe(model: str, tmp_path):
    """A linear probe over the last layer of ``model`` with seeded random weights (not fitted: the strategies
    only need a probe of the right shape whose predictions differ across prompts)."""
    import random

    from transformers import AutoConfig

    from reasoner.strategies.difficulty import LinearProbe

    size = AutoConfig.from_pretrained(model).hidden_size
    rng = random.Random(0)
    weights = tuple(rng.gauss(0, 0.1) for _ in range(size))
    return LinearProbe(layer=-1, mean=(0.0,) * size, std=(1.0,) * size, weights=weights, bias=0.5).save(
        tmp_path / "difficulty_probe.json"
    )


def test_greedy_agrees_across_engines(engines):
    spec = SampleSpec(max_tokens=24, temperature=0.0)
    hf, vl = (build_strategy("greedy", {}).run_batch(engines[k], PROBLEMS, spec) for k in KINDS)
    for a, b in zip(hf, vl, strict=True):
        assert a.completions[0].token_ids == b.completions[0].token_ids
        assert a.answer == b.answer and a.tokens == b.tokens


@pytest.mark.parametrize("kind", KINDS)
def test_live_short_m_aborts_and_agrees_with_simulated(engines, kind):
    engine = engines[kind]
    spec = SampleSpec(max_tokens=24, temperature=1.0, seed=11)
    live = build_strategy("short-m@k", {"k": "6", "m": "2"}).run_batch(engine, PROBLEMS, spec)
    sim = build_strategy("short-m@k", {"k": "6", "m": "2", "mode": "simulated"}).run_batch(
        engine, PROBLEMS, spec
    )
    full = build_strategy("majority", {"k": "6"}).run_batch(engine, PROBLEMS, spec)
    for a, b, f in zip(live, sim, full, strict=True):
        assert a.extra["finishers"] == b.extra["finishers"]
        assert a.answer == b.answer and a.tokens == b.tokens
        assert a.tokens.generated <= f.tokens.generated
        for i in a.extra["aborted"]:
            assert a.completions[i].finish_reason == "abort"
            assert a.completions[i].num_tokens == a.extra["cutoff"]


@pytest.mark.parametrize("kind", KINDS)
def test_fractured_and_budget_forcing_prefixes(engines, kind):
    engine = engines[kind]
    tok = engine.tokenizer
    prompt = len(render(tok, PROBLEMS[0].question))
    cue = len(tok.encode(ANSWER_CUE, add_special_tokens=False))
    r = build_strategy("fractured", {"n": "2", "H": "3", "answer_tokens": "3"}).run(engine, PROBLEMS[0], SPEC)
    forced = r.completions[2:]
    assert len(forced) == 2 * 3
    cuts = [(j, c) for j, row in enumerate(r.extra["cuts"]) for c in row]
    # the cue follows the cut, after </think> where the random trace's thinking left a span open
    close = len(tok.encode(THINK_END, add_special_tokens=False))
    opened = [span_open(tok, thinking_prefix(tok, c)) for c in r.completions[:2]]
    expected = [prompt + cut + cue + close * opened[j] for j, cut in cuts]
    assert [c.prompt_tokens for c in forced] == expected
    bf = build_strategy("budget-forcing", {"budget": "5", "answer_tokens": "3"}).run(
        engine, PROBLEMS[0], SPEC
    )
    assert bf.tokens.thinking <= 5
