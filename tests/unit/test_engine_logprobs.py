"""Sampled-token logprobs only when asked (``SampleSpec.logprobs``): the default, the shape of a completion
without them, the readers that must ask for them, and the clear error for a reader that did not."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from fake_scripts import P1, P2, SPEC, fake_probe, per_sample, plain, thinking, words

from reasoner.engines.fake import FakeEngine, Trace
from reasoner.strategies import STRATEGIES, build_strategy
from reasoner.strategies.best_of_n import chain_score, token_confidences
from reasoner.strategies.early_exit import trial_confidence
from reasoner.types import Completion, SampleSpec

READERS = {"best-of-n", "deepconf", "early-exit"}
"""Strategies whose decisions read logprobs; every other strategy must not ask for them."""


class SpyEngine(FakeEngine):
    """A FakeEngine that records the SampleSpec of every session it starts."""

    def __init__(self, script):
        super().__init__(script)
        self.specs: list[SampleSpec] = []

    def start(self, prompts, spec, *, entropies=False):
        self.specs.append(spec)
        return super().start(prompts, spec, entropies=entropies)


def test_logprobs_are_off_by_default_and_top_k_needs_them():
    assert SampleSpec().logprobs is False
    assert SampleSpec(logprobs=True, logprobs_k=5).logprobs_k == 5
    with pytest.raises(ValueError, match=r"logprobs_k=3 needs logprobs=True"):
        SampleSpec(logprobs_k=3)


@pytest.mark.parametrize(
    "spec_kwargs, want_lp, want_top",
    [
        ({}, False, False),
        ({"logprobs": True}, True, False),
        ({"logprobs": True, "logprobs_k": 3}, True, True),
    ],
)
def test_fake_engine_returns_logprobs_only_when_asked(spec_kwargs, want_lp, want_top):
    engine = FakeEngine(per_sample([Trace(plain(4, "5"), logprob=-0.25)] * 2))
    spec = SampleSpec(n=2, max_tokens=16, seed=0, **spec_kwargs)
    prompt = engine.tokenizer.encode("hi", add_special_tokens=False)
    for c in engine.generate([prompt], spec)[0]:
        assert c.num_tokens > 0
        assert (c.logprobs is not None) == want_lp and (c.top_logprobs is not None) == want_top
        if want_lp:
            assert c.logprobs == (-0.25,) * c.num_tokens
        if want_top:
            assert len(c.top_logprobs) == c.num_tokens and all(len(t) == 3 for t in c.top_logprobs)
    with engine.stream([prompt], spec) as stream:
        for ev in stream:
            assert (ev.logprobs is not None) == want_lp and (ev.top_logprobs is not None) == want_top
            if want_lp:
                assert len(ev.logprobs) == len(ev.new_token_ids)


def test_greedy_tokens_do_not_depend_on_logprobs():
    engine = FakeEngine(per_sample([plain(6, "5")]))
    prompt = engine.tokenizer.encode("hi", add_special_tokens=False)
    off = engine.generate([prompt], SampleSpec(max_tokens=32, temperature=0.0))[0][0]
    on = engine.generate([prompt], SampleSpec(max_tokens=32, temperature=0.0, logprobs=True))[0][0]
    assert (off.token_ids, off.text, off.finish_reason) == (on.token_ids, on.text, on.finish_reason)
    assert off.logprobs is None and on.logprobs is not None


def _bare(tokens: int = 3) -> Completion:
    return Completion(tuple(range(tokens)), "x \\boxed{7}", None, None, "stop", 5)


def test_readers_of_a_completion_without_logprobs_fail_clearly():
    c = _bare()
    with pytest.raises(
        ValueError, match=r"^best-of-n score=logprob reads sampled-token logprobs.*logprobs=True"
    ):
        chain_score(c, "logprob")
    with pytest.raises(ValueError, match=r"reads top-k logprobs.*logprobs_k=k"):
        token_confidences(c)
    engine = FakeEngine(per_sample(["7}"]))
    with pytest.raises(ValueError, match=r"^early-exit trial confidence reads sampled-token logprobs"):
        trial_confidence(engine.tokenizer, _bare(), "mean")
    assert Completion((), "", (), None, "stop", 1).require_logprobs("x") == ()  # empty, but asked for


def _marker_script():
    """Chains with " Wait" markers (early exit probes there); forced answers answer 7."""
    chain = "<think>" + " Wait ".join([words(6)] * 3) + "</think> \\boxed{5}"

    def script(prompt: str, j: int):
        if prompt.endswith("\\boxed{"):
            return Trace("7}", logprob=-2.0)
        return chain[len(prompt.split("assistant\n", 1)[1]) :] if "assistant\n" in prompt else chain

    return script


PARAMS = {
    "majority": {"k": "3"},
    "best-of-n": {"n": "3"},
    "short-m@k": {"k": "3", "m": "2"},
    "fractured": {"n": "2", "H": "2"},
    "entropy-branch": {"threshold": "0.5"},
    "budget-forcing": {"budget": "6", "min_thinking": "4"},
    "early-exit": {"min_gap": "2", "threshold": "0.99"},
    "deepconf": {"k": "3", "mode": "online", "warmup": "1", "window": "2"},
    "adaptive:majority": {"mean": "3"},
    "adaptive:short-m@k": {"mean": "3", "min_k": "2", "m": "2"},
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategies_ask_for_logprobs_exactly_when_they_read_them(name, monkeypatch):
    if name.startswith("adaptive:"):
        fake_probe(monkeypatch)  # a FakeEngine has no hidden states: predicted pass rates 0.5
    if name == "early-exit":
        engine = SpyEngine(_marker_script())
    else:
        traces = [thinking(7, "5"), plain(3, "5"), thinking(11, "6")]
        engine = SpyEngine(per_sample([Trace(t, entropies=[1.0] * 40) for t in traces]))
    results = build_strategy(name, PARAMS.get(name, {})).run_batch(engine, [P1, P2], SPEC)
    asked = [s.logprobs for s in engine.specs]
    if name not in READERS:
        assert not any(asked)
        assert all(c.logprobs is None for r in results for c in r.completions)
    elif name == "early-exit":  # the reasoning segments need none, the probes do
        assert any(asked) and not all(asked)
        assert results[0].extra["trials"], "the script must make early exit probe"
    else:
        assert all(asked)
        assert all(c.logprobs is not None for r in results for c in r.completions)


def test_best_of_n_confidence_asks_for_top_k():
    engine = SpyEngine(per_sample([plain(3, "5"), plain(4, "6")]))
    build_strategy("best-of-n", {"n": "2", "score": "confidence", "conf_topk": "4"}).run(engine, P1, SPEC)
    assert [(s.logprobs, s.logprobs_k) for s in engine.specs] == [(True, 4)]


def test_grpo_rollouts_ask_for_logprobs():
    """TRL's importance ratios and the weight-sync check read the rollout engine's logprobs."""
    from reasoner.train.hooks import GRPOHooks

    trainer = SimpleNamespace(
        args=SimpleNamespace(max_completion_length=32, temperature=1.0, top_p=1.0, top_k=0),
        recipe=SimpleNamespace(rollout=SimpleNamespace(seed=0)),
        state=SimpleNamespace(global_step=3),
        num_generations=4,
    )
    spec = GRPOHooks._sample_spec(trainer, 0)
    assert spec.logprobs and spec.n == 4


def test_grpo_rollouts_refuse_a_missing_completion_cap():
    """``trainer.max_completion_length: null`` used to become 256 tokens in the rollouts; now the recipe fails."""
    from reasoner.config import ConfigError
    from reasoner.train.trainer import validate_trainer_args

    assert validate_trainer_args({"max_completion_length": 64})["max_completion_length"] == 64
    for bad in (None, 0):
        with pytest.raises(ConfigError, match=f"trainer.max_completion_length: .*got {bad}"):
            validate_trainer_args({"max_completion_length": bad})


@pytest.mark.parametrize("steps", [-3, -2, 0])
def test_max_steps_other_than_minus_one_below_one_is_an_error(steps):
    """TRL trains for epochs on any max_steps <= 0; only -1 means that, other values are typos."""
    from reasoner.config import ConfigError
    from reasoner.train.trainer import validate_sft_args, validate_trainer_args

    for validate in (validate_trainer_args, validate_sft_args):
        with pytest.raises(ConfigError, match=rf"trainer.max_steps: .*got {steps}"):
            validate({"max_steps": steps})
        assert validate({"max_steps": -1}) == {"max_steps": -1} and validate({"max_steps": 2}) == {
            "max_steps": 2
        }


def test_grpo_rollout_output_counts_and_logs_empty_completions(caplog):
    """An empty completion still reaches TRL as a lone EOS (TRL indexes ids[-1]), but no longer silently: it is
    logged and counted in the step's ``reasoner/empty_completions`` metric."""
    import torch

    from reasoner.train.batch import Group, RolloutBatch
    from reasoner.train.hooks import GRPOHooks

    def completion(ids):
        return Completion(tuple(ids), "x" * len(ids), tuple([-0.5] * len(ids)), None, "stop", 3)

    group = Group(
        P1, [1, 2, 3], [completion([5, 6]), completion([])], torch.zeros(2, 1), {"answer": ["2", "2"]}
    )
    batch = RolloutBatch([group], [group])
    hooks = SimpleNamespace(
        processing_class=SimpleNamespace(eos_token_id=0), state=SimpleNamespace(global_step=7)
    )
    with caplog.at_level("WARNING", logger="reasoner.train.hooks"):
        out = GRPOHooks._rollout_output(hooks, batch, slice(0, 1))
    assert out["completion_ids"] == [[5, 6], [0]] and out["logprobs"][0] == [-0.5, -0.5]
    assert len(out["logprobs"][1]) == 1 and math.isnan(out["logprobs"][1][0])  # no engine logprob: weight 1
    assert batch.stats["empty_completions"] == 1.0
    assert "step 7: 1 empty completion" in caplog.text


def test_vllm_unknown_finish_reason_is_an_error_naming_it():
    """vLLM's ``error`` (or any reason we do not know) used to be reported as a normal ``stop``."""
    from reasoner.engines.vllm import EngineError, finish_reason

    assert [finish_reason(r) for r in ("stop", "length", "abort")] == ["stop", "length", "abort"]
    for bad in ("error", None, "timeout"):
        with pytest.raises(EngineError, match=rf"request r7 finished with finish_reason={bad!r}"):
            finish_reason(bad, "r7")


@pytest.mark.parametrize(
    ("mode", "ok"), [("raw", True), ("processed", True), ("raw_logprobs", False), ("", False)]
)
def test_an_engines_logprobs_mode_is_raw_or_processed(mode, ok):
    from reasoner.engines.base import check_logprobs_mode

    if ok:
        assert check_logprobs_mode(mode) == mode
    else:
        with pytest.raises(ValueError, match=rf"logprobs_mode must be one of raw, processed, got {mode!r}"):
            check_logprobs_mode(mode)
