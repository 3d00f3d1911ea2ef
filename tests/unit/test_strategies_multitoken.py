"""Strategies give the same results when an engine streams several tokens per step, as a speculative engine does
when it accepts drafts (``FakeEngine(tokens_per_step=k)``): stops decided mid-step (budget caps, DeepConf's
window, DEER's markers, entropy branches' caps) land where one-token steps put them. short-m@k is left out on
purpose: it stops at the *step* the m-th chain finishes, so the tokens of the chains it aborts depend on the
step size by definition (its answer does not, see the last test)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_scripts import P1, P2, SPEC, per_sample, plain, thinking
from test_strategies_adaptive import branch_script, conf_script, deer_script

from reasoner.engines.fake import FakeEngine
from reasoner.strategies import build_strategy


def _view(results):
    return [
        (r.answer, r.tokens, [(c.token_ids, c.finish_reason, c.logprobs, c.think_end) for c in r.completions])
        for r in results
    ]


CASES = [
    ("budget-forcing", {"budget": "13"}, lambda: per_sample([thinking(60, "5")])),
    ("budget-forcing", {"budget": "50", "min_thinking": "8"}, lambda: per_sample([thinking(3, "5")])),
    ("deepconf", {"k": "4", "warmup": "2", "mode": "online", "window": "8"},
     lambda: conf_script([-0.01, -0.01, -2.0, -0.01], ["5", "5", "6", "5"], length=30)),
    ("early-exit", {"min_gap": "4"}, lambda: deer_script(-0.01)),
    ("early-exit", {"min_gap": "4", "threshold": "0.5"}, lambda: deer_script(-2.0)),
    ("entropy-branch", {"threshold": "2.5", "max_branches": "4"},
     lambda: branch_script([0.1, 3.0, 0.2, 5.0, 4.0, 0.1])[0]),
    ("majority", {"k": "3"}, lambda: per_sample([plain(80, "5"), plain(4, "5"), thinking(7, "6")])),
    ("fractured", {"n": "2", "H": "3", "m": "1"}, lambda: per_sample([thinking(20, "5"), thinking(9, "6")])),
]  # fmt: skip


@pytest.mark.parametrize("step", [2, 3, 7])
@pytest.mark.parametrize(("name", "params", "script"), CASES)
def test_multi_token_steps_give_the_same_results(name, params, script, step):
    spec = replace(SPEC, logprobs=True)
    one = build_strategy(name, params).run_batch(FakeEngine(script()), [P1, P2], spec)
    many = build_strategy(name, params).run_batch(FakeEngine(script(), tokens_per_step=step), [P1, P2], spec)
    assert _view(many) == _view(one)


def test_the_fake_engine_streams_several_tokens_per_step():
    engine = FakeEngine(per_sample([plain(10, "5")]), tokens_per_step=4)
    with engine.stream([[1, 2]], SPEC) as stream:
        sizes = [len(ev.new_token_ids) for ev in stream]
    total = stream.all_completions()[0].num_tokens
    assert sizes[:-1] == [4] * (len(sizes) - 1) and sum(sizes) == total and 1 <= sizes[-1] <= 4
    with pytest.raises(ValueError, match="tokens_per_step"):
        FakeEngine(per_sample(["x"]), tokens_per_step=0)


def test_short_m_answer_does_not_depend_on_the_step_size():
    script = per_sample([thinking(30, "6"), thinking(5, "5"), thinking(6, "5"), thinking(40, "6")])
    one = build_strategy("short-m@k", {"k": "4", "m": "2"}).run(FakeEngine(script), P1, SPEC)
    many = build_strategy("short-m@k", {"k": "4", "m": "2"}).run(
        FakeEngine(script, tokens_per_step=3), P1, SPEC
    )
    assert one.answer == many.answer == "5"


@pytest.mark.parametrize("step", [1, 3, 4])
def test_generate_capped_cuts_a_step_that_passes_the_cap(step):
    from reasoner.strategies.base import generate_capped

    engine = FakeEngine(per_sample([plain(40, "5")] * 2), tokens_per_step=step)
    spec = replace(SPEC, n=2, logprobs=True)
    groups = generate_capped(engine, [[1, 2], [3, 4]], [5, 13], spec)
    assert [[c.num_tokens for c in g] for g in groups] == [[5, 5], [13, 13]]
    assert all(c.finish_reason == "length" and len(c.logprobs) == c.num_tokens for g in groups for c in g)
    plain_run = generate_capped(FakeEngine(per_sample([plain(40, "5")] * 2)), [[1, 2], [3, 4]], [5, 13], spec)
    assert [[c.text for c in g] for g in groups] == [[c.text for c in g] for g in plain_run]
