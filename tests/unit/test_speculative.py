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


@pytest.mark.parametrize("text", ["ngram", "ngram:k=2,max=3", "suffix:k=8"])
def test_config_fields_take_the_flag_text(text):
    from evals.sweep import EvalConfig
    from reasoner.sections import RolloutConfig

    assert EvalConfig.from_dict({"speculative": text}).speculative == text
    assert RolloutConfig(speculative=text).speculative == text
    assert EvalConfig().speculative is None and RolloutConfig().speculative is None


def test_config_fields_reject_bad_text_naming_it():
    from pydantic import ValidationError

    from evals.sweep import EvalConfig
    from reasoner.config import ConfigError
    from reasoner.sections import RolloutConfig

    with pytest.raises((ValueError, ConfigError), match="speculative.*k"):
        EvalConfig.from_dict({"speculative": "ngram:k=0"})
    with pytest.raises(ValidationError, match="unknown key 'depth'"):
        RolloutConfig(speculative="ngram:depth=2")


def _timeless(row):
    data = row.to_json()
    for key in ("wall_s", "measured_s"):
        data.pop(key, None)
    for sample in data["samples"]:
        sample.pop("elapsed_s", None)
    return data


def test_eval_rows_equal_with_speculative_decoding_on_the_hf_engine(tiny_model, tmp_path):
    from evals.manifest import read_manifest
    from evals.runner import RunDir, run_sweep
    from evals.sweep import EvalConfig

    rows = {}
    for spec in (None, "ngram:k=3,max=3,min=1"):
        config = EvalConfig.from_dict({"model": tiny_model, "engine": "hf", "limit": 3, "budgets": [24],
                                       "seeds": [0], "strategies": ["greedy"], "batch_size": 3,
                                       "speculative": spec})  # fmt: skip
        run = RunDir(tmp_path / str(spec))
        run.prepare(config)
        run_sweep(config, run, progress=False)
        rows[spec] = [_timeless(r) for r in run.read_rows()]
        assert read_manifest(run.path)[-1]["engine"]["speculative"] == spec
    assert len(rows[None]) == 3 and rows[None] == rows["ngram:k=3,max=3,min=1"]
    assert all(row["samples"] for row in rows[None])
