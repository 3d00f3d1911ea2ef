"""Model resolution: aliases build once into an overridable cache; Hub ids and directories pass through."""

from __future__ import annotations

import json

import pytest

from reasoner.models import MODELS, UnknownModelError, cache_dir, resolve
from reasoner.types import SampleSpec


def test_tiny_alias_builds_into_overridable_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONER_CACHE", str(tmp_path))
    path = resolve("tiny-random-llama")
    assert path.startswith(str(tmp_path / "models"))
    config = json.loads((cache_dir() / path.split("/")[-1] / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["head_dim"] >= 32 and config["hidden_size"] // config["num_attention_heads"] >= 32
    assert resolve("tiny-random-llama") == path  # cached, not rebuilt


def test_tiny_tokenizer_has_chat_template_eos_and_think_tokens(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    assert len(tok.encode("</think>", add_special_tokens=False)) == 1
    assert tok.decode(tok.encode("<think>a</think>b"), skip_special_tokens=True) == "<think>a</think>b"


@pytest.mark.parametrize("hub_id", ["Qwen/Qwen2.5-Math-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"])
def test_hub_ids_pass_through(hub_id, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert resolve(hub_id) == hub_id


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_hub_ids_must_be_cached(tmp_path, monkeypatch, var):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv(var, "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    snapshot = tmp_path / "models--org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--cached" / "refs").mkdir()
    (tmp_path / "models--org--cached" / "refs" / "main").write_text("abc123")
    assert resolve("org/cached") == "org/cached"
    with pytest.raises(UnknownModelError) as err:
        resolve("org/not-cached")
    assert f"model 'org/not-cached' is not in the local Hugging Face cache ({tmp_path}) and {var}=1" in str(
        err.value
    )


def test_local_directory_passes_through(tiny_model, tmp_path):
    assert resolve(tiny_model) == tiny_model
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownModelError, match="has no config.json"):
        resolve(str(tmp_path / "empty"))


@pytest.mark.parametrize("name", ["smollm3", "", "a/b/c", "./nope"])
def test_unknown_names_list_aliases(name):
    with pytest.raises(UnknownModelError) as err:
        resolve(name)
    if name:
        assert all(alias in str(err.value) for alias in MODELS)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n": 0}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"logprobs_k": 21}, "logprobs_k"),
    ],
)
def test_sample_spec_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"SampleSpec.{field} must be"):
        SampleSpec(**kwargs)


def test_sample_spec_stop_string_becomes_tuple():
    assert SampleSpec(stop="\n\n").stop == ("\n\n",)


def test_a_wired_alias_is_registered_by_the_composition_root(monkeypatch):
    """``overthinker`` is built by ``reasoner.organism`` (above models): ``reasoner.wiring.wire()`` registers it;
    unwired, resolving it is an error that names the alias and says how to wire it."""
    from reasoner.models import WIRED_ALIASES, alias_names
    from reasoner.organism.build import build_overthinker
    from reasoner.wiring import wire

    monkeypatch.delitem(MODELS, "overthinker", raising=False)
    with pytest.raises(UnknownModelError, match=r"'overthinker' .*reasoner\.wiring\.wire\(\)"):
        resolve("overthinker")
    assert set(WIRED_ALIASES) <= set(alias_names())
    wire()
    assert MODELS["overthinker"] is build_overthinker
    assert set(WIRED_ALIASES) <= set(MODELS)
