"""Shared scripts for the strategy tests on the FakeEngine: problems, a spec, chains of known token lengths."""

from __future__ import annotations

from reasoner.engines.fake import FakeEngine
from reasoner.types import Problem, SampleSpec

SPEC = SampleSpec(max_tokens=64, temperature=0.7, seed=0)
P1 = Problem("p1", "What is 2+3?", "5")
P2 = Problem("p2", "What is 1+1?", "2")


def words(n: int, w: str = "a") -> str:
    """Exactly n tokens with the tiny tokenizer (" a" is one token)."""
    return " ".join([w] * n)


def plain(n: int, answer: str) -> str:
    """A chain for a model without think tags: n reasoning tokens then a boxed answer."""
    return f"{words(n)} \\boxed{{{answer}}}"


def thinking(n: int, answer: str) -> str:
    return f"<think>{words(n)}</think> \\boxed{{{answer}}}"


def ntok(engine: FakeEngine, text: str) -> int:
    return len(engine.tokenizer.encode(text, add_special_tokens=False))


def per_sample(traces):
    """Script: sample j of every prompt gets traces[j]; forced answers (after the cue) answer 9."""

    def script(prompt: str, j: int):
        if prompt.endswith("\\boxed{"):
            return "9}"
        return traces[j]

    return script


def fake_probe(monkeypatch, passes=None):
    """Stand in for the difficulty probe of the ``adaptive:*`` strategies: predicted pass rates ``passes`` (one
    per prompt, in batch order; default 0.5 each) instead of hidden states of a real model. Returns the list of
    prompt batches it was asked about."""
    import reasoner.strategies.adaptive as adaptive

    asked: list[list[list[int]]] = []

    def predict(engine, probe, prompts):
        asked.append([list(p) for p in prompts])
        return list(passes) if passes is not None else [0.5] * len(prompts)

    monkeypatch.setattr(adaptive, "predicted_pass_rates", predict)
    return asked
