"""Adaptive-compute strategies on the scripted FakeEngine: entropy-gated branching, budget forcing, early exit
(DEER), DeepConf. Known lengths, entropies and logprobs, one token per step."""

from __future__ import annotations

import math

import pytest
from fake_scripts import P1, P2, SPEC, ntok, per_sample, plain, thinking, words

from reasoner.engines.fake import FakeEngine, Trace
from reasoner.prompts import ANSWER_CUE, THINK_END, render
from reasoner.strategies import BranchBudget, EntropyBranch, EntropyBranchConfig, build_strategy

# ---------------------------------------------------------------- entropy-branch


def branch_script(entropies, main="5", branch="6"):
    seen: list[str] = []

    def script(prompt: str, j: int):
        if "<think>" in prompt:  # a branch: the prompt carries a prefix of the main path
            seen.append(prompt)
            return Trace(f" b</think> \\boxed{{{branch}}}")
        return Trace(f"<think>{words(12)}</think> \\boxed{{{main}}}", entropies=entropies)

    return script, seen


@pytest.mark.parametrize(
    "entropies, threshold, cap, expect",
    [
        ([0.1, 3.0, 0.2, 5.0, 4.0, 0.1], 2.5, 4, [1, 3, 4]),
        ([0.1, 3.0, 0.2, 5.0, 4.0, 0.1], 4.5, 4, [3]),
        ([0.1] + [9.0] * 13, 2.5, 2, [1, 2]),  # never past the cap
        ([0.5] * 14, 2.5, 4, []),  # never branches below the threshold
        ([2.5] * 14, 2.5, 4, []),  # strictly above
    ],
)
def test_entropy_branch_only_above_threshold_and_within_cap(entropies, threshold, cap, expect):
    script, seen = branch_script(entropies)
    engine = FakeEngine(script)
    cfg = EntropyBranchConfig(threshold=threshold, max_branches=cap)
    r = EntropyBranch(cfg).run(engine, P1, SPEC)
    assert r.extra["branch_points"] == expect
    assert len(r.completions) == 1 + len(expect) and len(seen) == len(expect)
    main = r.completions[0]
    head = len(render(engine.tokenizer, P1.question))
    for t, c in zip(expect, r.completions[1:], strict=True):
        assert c.prompt_tokens == head + t
        assert c.num_tokens <= SPEC.max_tokens - t
    assert r.tokens.generated == main.num_tokens + sum(c.num_tokens for c in r.completions[1:])
    assert r.answer == ("5" if len(expect) < 2 else "6")  # main path wins ties; branches outvote it


def test_entropy_branch_shared_budget_moves_unused_branches():
    calm, busy = [0.1] * 14, [0.1] + [9.0] * 13

    def script(prompt: str, j: int):
        if "<think>" in prompt:
            return " b</think> \\boxed{6}"
        return Trace(f"<think>{words(12)}</think> \\boxed{{5}}", entropies=busy if "2+3" in prompt else calm)

    engine = FakeEngine(script)
    cfg = EntropyBranchConfig(threshold=2.5, max_branches=2)
    alone = EntropyBranch(cfg).run_batch(engine, [P1, P2], SPEC)
    assert [len(r.extra["branch_points"]) for r in alone] == [2, 0]  # P2's unused branches go nowhere
    budget = BranchBudget(total=4, per_problem=4)
    shared = EntropyBranch(cfg, budget=budget).run_batch(engine, [P1, P2], SPEC)
    assert [len(r.extra["branch_points"]) for r in shared] == [4, 0] and budget.remaining == 0
    again = EntropyBranch(cfg, budget=budget).run(engine, P1, SPEC)
    assert again.extra["branch_points"] == []  # the pool is spent


# ---------------------------------------------------------------- budget forcing


@pytest.mark.parametrize("budget", [1, 5, 13, 40])
def test_budget_forcing_never_exceeds_budget(budget):
    engine = FakeEngine(per_sample([thinking(60, "5")]))
    r = build_strategy("budget-forcing", {"budget": str(budget)}).run(engine, P1, SPEC)
    assert r.tokens.thinking <= budget
    assert r.extra["forced"] and r.answer == "9"  # the answer comes after the forced cue
    think, answer = r.completions
    assert think.num_tokens == budget and think.finish_reason == "length"
    forced = ntok(engine, THINK_END) + ntok(engine, ANSWER_CUE)  # the span is open: </think> + cue
    assert answer.prompt_tokens == think.prompt_tokens + budget + forced
    assert r.tokens.sequential == budget + answer.num_tokens


def test_budget_forcing_natural_end_and_wait_extension():
    def script(prompt: str, j: int):
        if prompt.endswith("\\boxed{"):
            return "9}"
        if prompt.count("Wait") >= 1:
            return f"{words(6, 'b')}</think> \\boxed{{4}}"
        return f"<think>{words(3)}</think> \\boxed{{5}}"

    engine = FakeEngine(script)
    short = build_strategy("budget-forcing", {"budget": "50"}).run(engine, P1, SPEC)
    assert short.extra["waits"] == 0 and short.tokens.thinking == 1 + 3 + 1  # <think> a a a </think>
    waited = build_strategy("budget-forcing", {"budget": "50", "min_thinking": "8"}).run(engine, P1, SPEC)
    second = ntok(engine, words(6, "b") + THINK_END)
    assert waited.extra["waits"] == 1 and waited.tokens.thinking == 5 + second <= 50
    tight = build_strategy("budget-forcing", {"budget": "8", "min_thinking": "20"}).run(engine, P1, SPEC)
    assert tight.tokens.thinking <= 8


def test_budget_forcing_without_think_tags_keeps_a_natural_answer():
    engine = FakeEngine(per_sample([plain(4, "5")]))
    r = build_strategy("budget-forcing", {"budget": "50"}).run(engine, P1, SPEC)
    assert not r.extra["forced"] and r.answer == "5" and len(r.completions) == 1


# ---------------------------------------------------------------- early exit (DEER)


def deer_script(probe_logprob: float):
    chain = "<think>" + " Wait ".join([words(10)] * 4) + "</think> \\boxed{5}"

    def script(prompt: str, j: int):
        if prompt.endswith("\\boxed{"):
            return Trace("7}", logprob=probe_logprob)
        return chain[len(prompt.split("assistant\n", 1)[1]) :] if "assistant\n" in prompt else chain

    return script


def test_early_exit_stops_at_a_confident_probe():
    engine = FakeEngine(deer_script(-0.01))
    r = build_strategy("early-exit", {"min_gap": "4"}).run(engine, P1, SPEC)
    assert r.extra["exited_early"] and r.answer == "7"
    pos, answer, conf = r.extra["trials"][0]
    assert answer == "7" and conf == pytest.approx(math.exp(-0.01))
    full = build_strategy("greedy", {}).run(engine, P1, SPEC)
    assert r.tokens.thinking < full.tokens.generated


def test_early_exit_keeps_reasoning_when_probes_are_unsure():
    engine = FakeEngine(deer_script(-2.0))
    r = build_strategy("early-exit", {"min_gap": "4", "threshold": "0.5"}).run(engine, P1, SPEC)
    assert not r.extra["exited_early"] and r.answer == "5"
    assert len(r.extra["trials"]) == 3  # one probe per "Wait"
    assert all(conf < 0.5 for _, _, conf in r.extra["trials"])


# ---------------------------------------------------------------- deepconf


def conf_script(lps, answers, length=20):
    """Traces handed out in request order (warm-up first, then the streamed ones)."""
    traces = [Trace(plain(length, a), logprob=lp) for lp, a in zip(lps, answers, strict=True)]
    calls = iter(range(10**6))
    return lambda prompt, j: traces[next(calls) % len(traces)]


def test_deepconf_offline_drops_low_confidence_traces():
    engine = FakeEngine(conf_script([-0.01, -2.0, -2.0, -0.01], ["5", "6", "6", "5"]))
    r = build_strategy("deepconf", {"k": "4", "keep": "0.5"}).run(engine, P1, SPEC)
    assert sorted(r.extra["kept"]) == [0, 3] and r.answer == "5"
    confs = r.extra["confidences"]
    assert confs[0] > confs[1]  # peaked top-k = confident
    assert r.votes == {"5": pytest.approx(2 * confs[0])}


def test_deepconf_online_aborts_traces_below_the_warmup_bar():
    engine = FakeEngine(conf_script([-0.01, -0.01, -2.0, -0.01], ["5", "5", "6", "5"], length=30))
    r = build_strategy("deepconf", {"k": "4", "warmup": "2", "mode": "online", "window": "8"}).run(
        engine, P1, SPEC
    )
    assert r.extra["aborted"] == [2]
    assert r.completions[2].num_tokens == 8  # stopped as soon as its first window was full
    assert r.tokens.generated == sum(c.num_tokens for c in r.completions)
    assert r.answer == "5"
