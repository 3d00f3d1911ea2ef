"""Prompt-lookup speculative decoding in the transformers engine (``reasoner.engines.hf_spec``): the proposer and
acceptance rules on hand tables, and losslessness on the real tiny model: greedy ids (and logprobs, top-k,
entropies) identical to plain decoding, and the sampled distribution unchanged (a rule that is not fails)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from reasoner.engines import load_engine
from reasoner.engines.hf_spec import SpeculativeHFSession, accept_greedy, accept_sampled, propose_ngram
from reasoner.engines.speculative import Speculative
from reasoner.prompts import render
from reasoner.types import SampleSpec

QUESTIONS = [
    "What is 2+3?",
    "Step A: add 2. Step A: add 2. Step A: add 2. Step A:",
    "Solve 3x + 4 = 19.",
    "x",
]


@pytest.mark.parametrize(
    ("context", "k", "lo", "hi", "draft"),
    [
        ([1, 2, 3, 9, 1, 2, 3], 2, 2, 4, [9, 1]),  # 3-gram [1,2,3] at 0 -> what followed it
        ([1, 2, 3, 9, 1, 2, 3], 5, 2, 4, [9, 1, 2, 3]),  # capped by the context's end
        ([5, 2, 3, 8, 1, 2, 3, 7, 2, 3], 3, 2, 4, [8, 1, 2]),  # two 2-gram matches: the earliest (vLLM)
        ([4, 2, 3, 8, 9, 2, 3, 7, 4, 2, 3], 2, 2, 4, [8, 9]),  # the longest n wins: [4,2,3] at 0
        ([1, 2, 3, 4], 3, 1, 4, []),  # no earlier occurrence
        ([7, 7, 7], 2, 2, 2, [7]),  # overlapping match, ends before the last token
        ([1, 2, 1, 2], 3, 3, 3, []),  # only a 2-gram matches but min is 3
        ([6, 1, 6], 2, 1, 2, [1, 6]),  # a 1-gram when min allows it
    ],
)
def test_propose_ngram(context, k, lo, hi, draft):
    assert propose_ngram(context, k, lo, hi) == draft


@pytest.mark.parametrize(
    ("argmax", "draft", "emitted"),
    [
        ([5, 6, 7], [5, 6], [5, 6, 7]),  # all accepted + the bonus token
        ([5, 9, 7], [5, 6], [5, 9]),  # second rejected: the model's own token replaces it
        ([4, 6, 7], [5, 6], [4]),  # first rejected
        ([3], [], [3]),  # no draft: a plain step
    ],
)
def test_accept_greedy(argmax, draft, emitted):
    assert accept_greedy(argmax, draft) == emitted


def _chi2_crit(df: int, z: float = 3.09) -> float:
    """Wilson-Hilferty upper quantile of chi-square(df) (z = 3.09: p = 0.001)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _two_sample_chi2(a: Counter, b: Counter) -> tuple[float, int]:
    keys = sorted(set(a) | set(b))
    na, nb = sum(a.values()), sum(b.values())
    stat = 0.0
    for key in keys:
        tot = a[key] + b[key]
        for obs, n in ((a[key], na), (b[key], nb)):
            exp = tot * n / (na + nb)
            stat += (obs - exp) ** 2 / exp
    return stat, len(keys) - 1


def _wrong_rule(probs, draft, gen):
    """A lossy rule: on rejection sample from p itself (not the residual) -> x is over-produced."""
    out = []
    for j, x in enumerate(draft):
        if torch.rand((), generator=gen) < probs[j, x]:
            out.append(int(x))
            continue
        out.append(int(torch.multinomial(probs[j], 1, generator=gen)))
        return out
    out.append(int(torch.multinomial(probs[len(draft)], 1, generator=gen)))
    return out


@pytest.mark.parametrize(("rule", "lossless"), [(accept_sampled, True), (_wrong_rule, False)])
def test_accept_sampled_frequencies_match_p(rule, lossless):
    probs = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.4, 0.4]])
    gen = torch.Generator().manual_seed(0)
    runs = [tuple(rule(probs, [0], gen)) for _ in range(4000)]
    first = Counter(r[0] for r in runs)
    stat = sum((first[t] - 4000 * float(p)) ** 2 / (4000 * float(p)) for t, p in enumerate(probs[0]) if p > 0)
    assert (stat < _chi2_crit(2)) is lossless, stat
    if lossless:  # after an accepted draft, one more token from probs[1]; a rejection ends the step
        assert all(len(r) == (2 if r[0] == 0 else 1) for r in runs)
        second = Counter(r[1] for r in runs if len(r) == 2)
        m = sum(second.values())
        assert sum(
            (second[t] - m * float(p)) ** 2 / (m * float(p)) for t, p in enumerate(probs[1])
        ) < _chi2_crit(3)


@pytest.fixture(scope="module")
def pair(tiny_model):
    plain = load_engine("hf", tiny_model, dtype="float32")
    fast = load_engine("hf", tiny_model, dtype="float32", speculative=Speculative(k=3, max=3, min=1))
    return plain, fast


def _gen(engine, spec, entropies=True):
    prompts = [render(engine.tokenizer, q) for q in QUESTIONS]
    return [c for g in engine.generate(prompts, spec, entropies=entropies) for c in g]


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        assert (x.token_ids, x.finish_reason, x.text) == (y.token_ids, y.finish_reason, y.text)
        if x.logprobs is not None:
            assert np.allclose(x.logprobs, y.logprobs, atol=1e-4)
            assert np.allclose(x.entropies, y.entropies, atol=1e-4)
            for ta, tb in zip(x.top_logprobs, y.top_logprobs, strict=True):
                assert list(ta) == list(tb) and np.allclose(list(ta.values()), list(tb.values()), atol=1e-4)


def test_greedy_identical_with_logprobs_entropies_and_n(pair):
    plain, fast = pair
    spec = SampleSpec(n=2, max_tokens=48, temperature=0.0, logprobs=True, logprobs_k=3)
    before = fast.spec_counters.accepted
    _same(_gen(plain, spec), _gen(fast, spec))
    assert fast.spec_counters.accepted > before  # the drafts were used, not only plain steps


@pytest.mark.parametrize("max_tokens", [1, 2, 5, 13, 30])
def test_greedy_identical_at_any_max_tokens(pair, max_tokens):
    plain, fast = pair
    spec = SampleSpec(max_tokens=max_tokens, temperature=0.0)
    _same(_gen(plain, spec, False), _gen(fast, spec, False))


def test_greedy_identical_with_stop_strings_and_eos_inside_a_draft(pair, tiny_model):
    plain, fast = pair
    spec = SampleSpec(max_tokens=48, temperature=0.0)
    ref = _gen(plain, spec, False)
    stop = ref[1].text[20:24]  # a string the repetitive row produces mid-way
    with_stop = SampleSpec(max_tokens=48, temperature=0.0, stop=(stop,))
    a, b = _gen(plain, with_stop, False), _gen(fast, with_stop, False)
    _same(a, b)
    assert a[1].finish_reason == "stop" and a[1].num_tokens < ref[1].num_tokens
    # EOS: make a token the repetitive row emits mid-run an end-of-sequence token of both engines
    eos = ref[1].token_ids[12]
    plain2 = load_engine("hf", tiny_model, dtype="float32")
    fast2 = load_engine("hf", tiny_model, dtype="float32", speculative=Speculative(k=4, max=3, min=1))
    for e in (plain2, fast2):
        e.eos_ids = e.eos_ids | {eos}
    a, b = _gen(plain2, spec, False), _gen(fast2, spec, False)
    _same(a, b)
    assert a[1].finish_reason == "stop" and a[1].token_ids[-1] == eos


def test_abort_midway_returns_a_prefix_and_the_rest_finish(pair):
    plain, fast = pair
    spec = SampleSpec(n=2, max_tokens=40, temperature=0.0)
    ref = _gen(plain, spec, False)
    prompts = [render(fast.tokenizer, q) for q in QUESTIONS]
    with fast.stream(prompts, spec) as stream:
        aborted = None
        for ev in stream:
            if ev.index == 2 and aborted is None and ev.finished is None:
                (aborted,) = stream.abort([2])
    done = stream.all_completions()
    assert aborted is not None and aborted.finish_reason == "abort"
    assert ref[2].token_ids[: aborted.num_tokens] == aborted.token_ids
    _same([c for i, c in enumerate(ref) if i != 2], [c for i, c in enumerate(done) if i != 2])


def _model_draft(self):
    """Test proposer: the model's own greedy next token (a point-mass draft with large p, so rules differ)."""
    by_len: dict[int, list[int]] = {}
    for r, i in enumerate(self.rows):
        by_len.setdefault(len(self.states[i].token_ids), []).append(r)
    out: list[list[int]] = [[] for _ in self.rows]
    for rows in by_len.values():
        ctx = torch.tensor([[*self._flat[self.rows[r]], *self.states[self.rows[r]].token_ids] for r in rows])
        with torch.no_grad():
            best = self.e.model(input_ids=ctx).logits[:, -1].argmax(-1).tolist()
        for r, t in zip(rows, best, strict=True):
            room = self.spec.max_tokens - len(self.states[self.rows[r]].token_ids) - 1
            out[r] = [t] if room > 0 else []
    return out


@pytest.mark.parametrize(("rule", "lossless"), [(accept_sampled, True), (_wrong_rule, False)])
def test_sampled_distribution_unchanged_on_the_tiny_model(pair, monkeypatch, rule, lossless):
    plain, fast = pair
    monkeypatch.setattr(SpeculativeHFSession, "_propose", _model_draft)
    monkeypatch.setattr("reasoner.engines.hf_spec.accept_sampled", rule)
    prompt = render(plain.tokenizer, QUESTIONS[0])
    spec = SampleSpec(n=1500, max_tokens=3, temperature=1.0, top_k=3, seed=7)
    a = Counter(c.token_ids for c in plain.generate([prompt], spec)[0])
    b = Counter(c.token_ids for c in fast.generate([prompt], spec)[0])
    stat, df = _two_sample_chi2(a, b)
    assert (stat < _chi2_crit(df)) is lossless, (stat, df)


@pytest.mark.slow
def test_greedy_identical_on_the_organism():
    """The organism's re-checks copy earlier lines, so drafts are accepted often: ids, logprobs and stop-string
    finishes equal plain decoding's (``-m slow``; ~1 min on 2 CPU cores)."""
    from evals.benchmarks import load_problems

    plain = load_engine("hf", "overthinker", dtype="float32")
    fast = load_engine("hf", "overthinker", dtype="float32", speculative=Speculative(k=4))
    prompts = [render(plain.tokenizer, p.question) for p in load_problems("multistep", "test", n=4, seed=0)]
    for spec in (SampleSpec(n=2, max_tokens=160, temperature=0.0, logprobs=True, logprobs_k=2),
                 SampleSpec(max_tokens=160, temperature=0.0, stop=("\n\n",))):  # fmt: skip
        a = [c for g in plain.generate(prompts, spec) for c in g]
        b = [c for g in fast.generate(prompts, spec) for c in g]
        for x, y in zip(a, b, strict=True):
            assert (x.token_ids, x.finish_reason) == (y.token_ids, y.finish_reason)
            if x.logprobs is not None:
                assert np.allclose(x.logprobs, y.logprobs, atol=1e-4)
    assert fast.spec_counters.accepted > fast.spec_counters.verify_rows  # > 1 accepted token per step
