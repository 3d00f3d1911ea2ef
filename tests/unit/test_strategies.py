"""Decoding strategies on the scripted FakeEngine: known lengths, entropies and logprobs, one token per step."""

from __future__ import annotations

import pytest
from fake_scripts import P1, P2, SPEC, fake_probe, ntok, per_sample, plain, thinking, words

from reasoner.engines.fake import FakeEngine, Trace
from reasoner.prompts import ANSWER_CUE, THINK_END
from reasoner.strategies import (
    STRATEGIES,
    build_strategy,
    simulate,
    strategy_help,
)
from reasoner.strategies.voting import forced_answer, vote
from reasoner.types import SampleSpec

# ---------------------------------------------------------------- registry and build_strategy


def test_registry_names_and_documented_configs():
    assert set(STRATEGIES) == {
        "greedy", "sample", "majority", "best-of-n", "short-m@k", "fractured",
        "entropy-branch", "budget-forcing", "early-exit", "deepconf", "adaptive:majority", "adaptive:short-m@k",
    }  # fmt: skip
    for name, cls in STRATEGIES.items():
        assert cls.name == name
        assert all(f.doc for f in strategy_help(name)), name
        module_doc = __import__(cls.__module__, fromlist=["_"]).__doc__
        assert name in ("greedy", "sample") or "arxiv.org/abs/" in module_doc, name


@pytest.mark.parametrize(
    "name, params, expect",
    [
        ("majority", {"k": "4"}, {"k": 4}),
        ("short-m@k", {"k": "8", "m": "3", "mode": "simulated"}, {"k": 8, "m": 3, "mode": "simulated"}),
        ("fractured", {"n": "2", "H": "3", "m": "2"}, {"n": 2, "H": 3, "m": 2, "answer_tokens": 16}),
        ("entropy-branch", {"threshold": "1.5"}, {"threshold": 1.5, "max_branches": 4}),
        ("budget-forcing", {"budget": "32", "wait_text": " Wait"}, {"budget": 32, "wait_text": " Wait"}),
        ("deepconf", {"mode": "online", "keep": "0.1"}, {"mode": "online", "keep": 0.1}),
        ("best-of-n", {"score": "confidence"}, {"score": "confidence", "n": 8}),
        ("greedy", {}, {}),
    ],
)
def test_build_strategy_parses_typed_values(name, params, expect):
    s = build_strategy(name, params)
    assert isinstance(s, STRATEGIES[name])
    for key, value in expect.items():
        assert getattr(s.config, key) == value


@pytest.mark.parametrize(
    "name, params, fragments",
    [
        ("nope", {}, ["unknown strategy 'nope'", "short-m@k", "majority"]),
        ("majority", {"kk": "3"}, ["unknown parameter 'kk'", "valid keys: k"]),
        ("majority", {"k": "three"}, ["k='three'", "integer", "valid keys: k"]),
        ("majority", {"k": "0"}, ["k='0'", "greater than or equal to 1", "valid keys: k"]),
        ("short-m@k", {"k": "4", "m": "5"}, ["m must be in [1, k=4]", "valid keys: k, m, mode"]),
        ("short-m@k", {"mode": "fast"}, ["mode='fast'", "'live' or 'simulated'"]),
        ("entropy-branch", {"threshold": "high"}, ["threshold='high'", "a number"]),
        ("deepconf", {"keep": "1.5"}, ["keep='1.5'", "less than or equal to 1"]),
        ("deepconf", {"k": "2", "warmup": "3"}, ["warmup must be in [1, k=2], got 3"]),
        ("early-exit", {"markers": "||"}, ["markers='||'", "non-empty |-separated list"]),
        ("best-of-n", {"n": "2", "conf_topk": "21", "score": "x"}, ["conf_topk='21'", "score='x'"]),
        ("greedy", {"k": "1"}, ["unknown parameter 'k'", "takes no parameters"]),
    ],
)
def test_build_strategy_errors_name_the_problem(name, params, fragments):
    with pytest.raises(ValueError) as err:
        build_strategy(name, params)
    for fragment in fragments:
        assert fragment in str(err.value)


# ---------------------------------------------------------------- voting


@pytest.mark.parametrize(
    "answers, weights, ties, winner, votes",
    [
        (["5", "6", "6", "5"], None, None, "5", {"5": 2.0, "6": 2.0}),  # tie -> first appearance
        (["5", "6", "6", "5"], None, [9, 1, 8, 7], "6", {"5": 2.0, "6": 2.0}),  # tie -> smallest key
        (["5", "5.0", "6", None], None, None, "5", {"5": 2.0, "6": 1.0}),  # numbers compared exactly
        (["5", "6", "6"], [3.0, 1.0, 1.5], None, "5", {"5": 3.0, "6": 2.5}),  # weighted
        ([None, None], None, None, None, {}),
        (
            ["34 + 33 = 69", "67", "34 + 33 = 67", "x \\leq 3"],
            None,
            None,
            "67",
            {"69": 1, "67": 2, "x \\leq 3": 1},
        ),
    ],
)
def test_vote_groups_and_breaks_ties(answers, weights, ties, winner, votes):
    v = vote(answers, weights, ties)
    assert v.answer == winner
    assert v.votes == votes


def test_vote_uses_math_verify_equivalence():
    v = vote(["\\frac{1}{2}", "0.5", "3"])
    assert v.answer == "\\frac{1}{2}" and v.votes == {"\\frac{1}{2}": 2.0, "3": 1.0}
    assert v.winners == (0, 1)


@pytest.mark.parametrize(
    "continuation, answer",
    [("7}", "7"), ("\\frac{1}{2}} because", "\\frac{1}{2}"), ("42\nmore text", "42"), ("", None)],
)
def test_forced_answer_closes_the_cue_box(continuation, answer):
    assert ANSWER_CUE.endswith("\\boxed{")
    assert forced_answer(continuation) == answer


def test_majority_votes_as_the_lenient_grader_in_one_round_trip(monkeypatch):
    """Unmarked answers count as the evaluator's lenient grader reads them (math-verify's own extraction), a
    digit inside a word is no answer, and the unmarked texts of all problems cost one verifier round trip."""
    from reasoner.verify import grading

    sizes = []
    real = grading.run_cached

    def counting(pool, tasks, timeout):
        sizes.append([kind for kind, _, _ in tasks])
        return real(pool, tasks, timeout)

    monkeypatch.setattr(grading, "run_cached", counting)
    traces = [r"so it is $\frac13$", "AZYUK2A", "about 1/3", plain(3, "2")]
    results = build_strategy("majority", {"k": "4"}).run_batch(FakeEngine(per_sample(traces)), [P1, P2], SPEC)
    for r in results:
        assert r.extra["answers"] == ["\\frac{1}{3}", None, "1/3", "2"]
        assert r.answer == "\\frac{1}{3}" and r.votes == {"\\frac{1}{3}": 2.0, "2": 1.0}
    assert sizes[0] == ["extract"] * 6


# ---------------------------------------------------------------- short-m@k


def test_short_1_returns_after_first_finisher_and_counts_aborted_work():
    traces = [plain(20, "5"), plain(4, "6"), plain(12, "5"), plain(30, "5")]
    engine = FakeEngine(per_sample(traces))
    lens = [ntok(engine, t) + 1 for t in traces]  # + EOS
    r = build_strategy("short-m@k", {"k": "4", "m": "1"}).run(engine, P1, SPEC)
    assert engine.steps == lens[1]  # the stream ended at the first finisher's last step
    assert r.answer == "6"
    assert r.extra["finishers"] == [1] and r.extra["aborted"] == [0, 2, 3]
    assert [c.finish_reason for c in r.completions] == ["abort", "stop", "abort", "abort"]
    assert [c.num_tokens for c in r.completions] == [lens[1]] * 4  # partial work up to the abort
    assert r.tokens.generated == 4 * lens[1] and r.tokens.sequential == lens[1]
    assert r.tokens.thinking == 0 and r.tokens.answer == r.tokens.generated  # no think tags


def test_short_m_think_finishers_complete_their_answers_while_others_abort():
    traces = [thinking(20, "5"), thinking(3, "6"), thinking(6, "5"), thinking(40, "7")]
    engine = FakeEngine(per_sample(traces))
    r = build_strategy("short-m@k", {"k": "4", "m": "2"}).run(engine, P1, SPEC)
    ends = [c.think_end for c in r.completions]
    full = [ntok(engine, t) + 1 for t in traces]
    cut = ends[2]  # the 2nd finisher closed </think> at this step
    assert r.extra["finishers"] == [1, 2] and r.extra["aborted"] == [0, 3] and r.extra["cutoff"] == cut
    assert [c.num_tokens for c in r.completions] == [cut, full[1], full[2], cut]
    assert engine.steps == full[2]  # waited for the 2nd finisher's answer, not for the long chains
    assert r.tokens.generated == 2 * cut + full[1] + full[2]
    assert r.tokens.thinking == 2 * cut + ends[1] + ends[2]
    assert r.answer == "6"  # 1-1 tie between 6 and 5 -> the shorter thinking (sample 1)


def test_short_m_fewer_finishers_than_m_aborts_nothing():
    traces = [Trace(words(50), eos=False), plain(5, "3"), Trace(words(50), eos=False)]
    engine = FakeEngine(per_sample(traces))
    r = build_strategy("short-m@k", {"k": "3", "m": "2"}).run(engine, P1, SampleSpec(max_tokens=16, seed=0))
    assert r.extra["aborted"] == [] and r.extra["finishers"] == [1]
    assert [c.finish_reason for c in r.completions] == ["length", "stop", "length"]
    assert r.answer == "3" and r.tokens.generated == 16 + ntok(engine, traces[1]) + 1 + 16


TRACE_SETS = [
    [plain(9, "5"), plain(4, "6"), plain(12, "5"), plain(4, "5"), plain(30, "7")],  # tie in length
    [thinking(9, "5"), thinking(2, "6"), thinking(12, "5"), thinking(5, "5"), thinking(30, "7")],
    [thinking(5, "5"), Trace(words(40), eos=False), thinking(5, "6"), plain(7, "6"), thinking(3, "5")],
]


@pytest.mark.parametrize("traces", TRACE_SETS)
@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_simulated_and_live_short_m_agree(traces, m):
    engine = FakeEngine(per_sample(traces))
    spec = SampleSpec(max_tokens=48, seed=3)
    live = build_strategy("short-m@k", {"k": "5", "m": str(m)}).run_batch(engine, [P1, P2], spec)
    sim = build_strategy("short-m@k", {"k": "5", "m": str(m), "mode": "simulated"}).run_batch(
        engine, [P1, P2], spec
    )
    for a, b in zip(live, sim, strict=True):
        assert a.answer == b.answer and a.votes == b.votes
        assert a.tokens == b.tokens
        assert [c.token_ids for c in a.completions] == [c.token_ids for c in b.completions]
        assert [c.finish_reason for c in a.completions] == [c.finish_reason for c in b.completions]
        for key in ("finishers", "aborted", "cutoff"):
            assert a.extra[key] == b.extra[key], key


def test_simulate_on_saved_traces_matches_formula():
    traces = [plain(9, "5"), plain(4, "6"), plain(12, "5"), plain(6, "5")]
    engine = FakeEngine(per_sample(traces))
    full = build_strategy("majority", {"k": "4"}).run(engine, P1, SPEC).completions
    lens = [c.num_tokens for c in full]
    m = 2
    selected, replay = simulate(engine.tokenizer, full, m)
    len_m = sorted(lens)[m - 1]
    assert selected == [1, 3]
    assert sum(c.num_tokens for c in replay) == sum(min(n, len_m) for n in lens)


def test_live_short_m_batches_problems_independently():
    def script(prompt: str, j: int):
        if "2+3" in prompt:
            return [plain(3, "5"), plain(20, "5")][j]
        return [plain(25, "2"), plain(10, "2")][j]

    engine = FakeEngine(script)
    strat = build_strategy("short-m@k", {"k": "2", "m": "1"})
    both = strat.run_batch(engine, [P1, P2], SPEC)
    alone = [strat.run(engine, p, SPEC) for p in (P1, P2)]
    for a, b in zip(both, alone, strict=True):
        assert a.answer == b.answer and a.tokens == b.tokens and a.extra["aborted"] == b.extra["aborted"]
    assert both[0].extra["finishers"] == [0] and both[1].extra["finishers"] == [1]


# ---------------------------------------------------------------- fractured


@pytest.mark.parametrize("n, H, m", [(2, 3, 1), (3, 4, 2), (1, 1, 3)])
def test_fractured_answers_at_cut_points(n, H, m):
    lengths = [12, 7, 9]
    seen: list[str] = []

    def script(prompt: str, j: int):
        if prompt.endswith("\\boxed{"):
            seen.append(prompt)
            think = prompt.rsplit("<think>", 1)[1].split(THINK_END)[0]
            return f"{think.count('a')}}}"  # answer = how many reasoning tokens the cut kept
        return thinking(lengths[j], "5")

    engine = FakeEngine(script)
    cfg = {"n": str(n), "H": str(H), "m": str(m)}
    r = build_strategy("fractured", cfg).run(engine, P1, SPEC)
    assert len(seen) == n * H * m
    for j in range(n):
        think_len = 1 + lengths[j]  # "<think>" + the words
        assert r.extra["cuts"][j] == [i * think_len // H for i in range(1, H + 1)]
    depth = r.extra["depth_answers"]
    assert len(depth) == H and all(len(d) == n * m for d in depth)
    for i in range(H):
        expect = [str(max(0, (i + 1) * (1 + lengths[j]) // H - 1)) for j in range(n) for _ in range(m)]
        assert depth[i] == expect
    assert all(p.endswith(THINK_END + ANSWER_CUE) for p in seen)
    forced = r.completions[n:]
    assert len(forced) == n * H * m
    assert r.tokens.prefilled == sum(c.prompt_tokens for c in r.completions)
    assert r.tokens.answer >= sum(c.num_tokens for c in forced)


def test_fractured_cut_requests_reuse_the_prefix_without_regenerating_it():
    engine = FakeEngine(per_sample([thinking(10, "5")]))
    r = build_strategy("fractured", {"n": "1", "H": "2"}).run(engine, P1, SPEC)
    traj, *answers = r.completions
    assert r.tokens.generated == traj.num_tokens + sum(c.num_tokens for c in answers)
    prompt = traj.prompt_tokens
    delim = ntok(engine, THINK_END) + ntok(engine, ANSWER_CUE)
    assert [c.prompt_tokens for c in answers] == [prompt + cut + delim for cut in r.extra["cuts"][0]]


# ---------------------------------------------------------------- accounting invariants, every strategy

SMALL = {
    "majority": {"k": "3"},
    "best-of-n": {"n": "3", "score": "confidence"},
    "short-m@k": {"k": "3", "m": "2"},
    "fractured": {"n": "2", "H": "2"},
    "entropy-branch": {"threshold": "0.5"},
    "budget-forcing": {"budget": "6", "min_thinking": "4"},
    "early-exit": {"min_gap": "2"},
    "deepconf": {"k": "3", "mode": "online", "warmup": "1", "window": "2"},
    "adaptive:majority": {"mean": "3", "max_k": "3"},
    "adaptive:short-m@k": {"mean": "3", "min_k": "2", "max_k": "3", "m": "2"},
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_token_accounting_is_complete(name, monkeypatch):
    fake_probe(monkeypatch)  # adaptive:* read a difficulty probe; here every problem is predicted at 0.5
    traces = [thinking(7, "5"), plain(3, "5") + " Wait ok", thinking(11, "6")]
    ent = [Trace(t, entropies=[1.0] * 40) for t in traces]
    engine = FakeEngine(per_sample(ent))
    results = build_strategy(name, SMALL.get(name, {})).run_batch(engine, [P1, P2], SPEC)
    assert len(results) == 2
    for r in results:
        t = r.tokens
        assert t.generated == sum(c.num_tokens for c in r.completions)
        assert t.prefilled == sum(c.prompt_tokens for c in r.completions)
        assert t.thinking + t.answer == t.generated
        assert 0 < t.sequential <= t.generated
        assert 0 <= r.wall_s <= r.extra["batch_wall_s"] + 1e-6
        assert r.answer is None or r.answer in r.votes


def test_greedy_and_run_equals_run_batch_of_one():
    engine = FakeEngine(per_sample([plain(3, "5")]))
    strat = build_strategy("greedy", {})
    a = strat.run(engine, P1, SPEC)
    b = strat.run_batch(engine, [P1], SPEC)[0]
    assert a.answer == b.answer == "5" and a.tokens == b.tokens
    assert strat.run_batch(engine, [], SPEC) == []


def test_decode_help_lists_every_strategy_parameter(capsys):
    """``reasoner decode --help`` lists each strategy's ``--param`` keys from its config fields."""
    from reasoner.cli import build_parser
    from reasoner.strategies import STRATEGIES

    with pytest.raises(SystemExit):
        build_parser().parse_args(["decode", "--help"])
    text = capsys.readouterr().out
    for name, cls in STRATEGIES.items():
        assert f"  {name}:" in text
        for key, field in cls.Config.model_fields.items():
            assert f"    {key} (" in text and " ".join(str(field.description).split()[:3]) in " ".join(
                text.split()
            )
