"""``--speculative`` parsing and the vLLM config it becomes (``reasoner.engines.speculative``)."""

from __future__ import annotations

import argparse

import pytest

from reasoner.engines import EngineUnavailableError, add_engine_args, load_engine
from reasoner.engines.speculative import Speculative, parse_speculative, vllm_speculative_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ngram", Speculative()),
        ("ngram:k=8", Speculative(k=8)),
        ("ngram: k=3, max=5 ,min=1", Speculative(k=3, max=5, min=1)),
        ("ngram:min=4", Speculative(min=4)),  # min = max is allowed
    ],
)
def test_parse(text, expected):
    assert parse_speculative(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eagle", "method"),
        ("ngram:k=0", "k"),
        ("ngram:k=two", "k"),
        ("ngram:depth=3", "unknown key 'depth'"),
        ("ngram:method=ngram", "unknown key 'method'"),
        ("ngram:k", "expected key=value"),
        ("ngram:min=5", "min \\(5\\) must be <= max \\(4\\)"),
    ],
)
def test_parse_errors_name_the_bad_part(text, message):
    with pytest.raises(ValueError, match=message):
        parse_speculative(text)


def test_vllm_config_and_cli_flag():
    assert vllm_speculative_config(Speculative(k=6, max=3, min=2)) == {
        "method": "ngram", "num_speculative_tokens": 6, "prompt_lookup_max": 3, "prompt_lookup_min": 2,
    }  # fmt: skip
    parser = argparse.ArgumentParser()
    add_engine_args(parser)
    assert parser.parse_args([]).speculative is None
    assert parser.parse_args(["--speculative", "ngram:k=2"]).speculative == Speculative(k=2)
    with pytest.raises(SystemExit):
        parser.parse_args(["--speculative", "ngram:k=0"])


def test_hf_engine_takes_speculative_decoding(tiny_model):
    engine = load_engine("hf", tiny_model, speculative=Speculative(k=2))
    assert engine.speculative == Speculative(k=2) and engine.spec_counters.drafted == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("suffix", Speculative(method="suffix")),
        ("suffix:k=16,max_spec_factor=2", Speculative(method="suffix", k=16, max_spec_factor=2.0)),
        (
            "suffix:min_token_prob=0,max_cached_requests=0",
            Speculative(method="suffix", min_token_prob=0, max_cached_requests=0),
        ),
    ],
)
def test_parse_suffix(text, expected):
    assert parse_speculative(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suffix:max=3", "max do not apply to method 'suffix'"),
        ("ngram:max_tree_depth=8", "max_tree_depth do not apply to method 'ngram'"),
        ("suffix:min_token_prob=1.5", "min_token_prob"),
    ],
)
def test_parse_suffix_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_speculative(text)


def test_vllm_suffix_config_uses_vllms_names():
    assert vllm_speculative_config(Speculative(method="suffix", k=8, max_tree_depth=12)) == {
        "method": "suffix", "num_speculative_tokens": 8, "suffix_decoding_max_tree_depth": 12,
        "suffix_decoding_max_cached_requests": 10000, "suffix_decoding_max_spec_factor": 1.0,
        "suffix_decoding_min_token_prob": 0.1,
    }  # fmt: skip


def test_suffix_errors_name_why(tiny_model, monkeypatch):
    with pytest.raises(EngineUnavailableError, match="hf engine has no suffix proposer"):
        load_engine("hf", tiny_model, speculative=Speculative(method="suffix"))
    import reasoner.engines as engines

    if not engines.vllm_available()[0]:
        pytest.skip("vllm is not importable")
    monkeypatch.setattr(engines, "suffix_available", lambda: (False, "needs the arctic-inference package"))
    with pytest.raises(EngineUnavailableError, match="arctic-inference"):
        load_engine("vllm", tiny_model, speculative=Speculative(method="suffix"))
