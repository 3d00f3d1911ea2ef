"""Recipe config: YAML + dotted overrides -> typed config; unknown keys and bad types name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reasoner.config import (
    RECIPES_DIR,
    ConfigError,
    RecipeConfig,
    apply_override,
    build_config,
    load_recipe,
    parse_override,
    parse_value,
)
from reasoner.models import MODELS
from reasoner.train.sft import recipe_kind


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-6", 1e-6), ("3", 3), ("0.28", 0.28), ("true", True), ("null", None), ("hf", "hf"),
     ("[a, b]", ["a", "b"]), ("", ""), ("-2E3", -2000.0)],
)  # fmt: skip
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_parse_override_splits_dotted_key():
    assert parse_override("trainer.learning_rate=1e-6") == (["trainer", "learning_rate"], 1e-6)
    assert parse_override("data.instruction=a=b") == (["data", "instruction"], "a=b")


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", ".a=1"])
def test_parse_override_rejects_malformed(bad):
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override(bad)


def test_apply_override_into_lists_and_new_sections():
    tree = {"rewards": [{"name": "accuracy"}, {"name": "kimi"}]}
    apply_override(tree, ["rewards", "1", "weight"], 0.5)
    apply_override(tree, ["advantages", "d3s", "enabled"], True)
    assert tree["rewards"][1]["weight"] == 0.5 and tree["advantages"]["d3s"]["enabled"] is True
    with pytest.raises(ConfigError, match="not an index"):
        apply_override(tree, ["rewards", "5", "weight"], 1)


def test_overrides_become_typed_fields():
    cfg = build_config(
        {"rollout": {"engine": "vllm"}},
        ["rollout.engine=hf", "advantages.normalize=batch", "advantages.d3s.rho_start=0.5",
         "difficulty.prune.skip_epochs=3", "lora.target_modules=[q_proj, v_proj]", "trainer.learning_rate=1e-6"],
    )  # fmt: skip
    assert cfg.rollout.engine == "hf" and cfg.advantages.normalize == "batch"
    assert cfg.advantages.d3s.rho_start == 0.5 and cfg.difficulty.prune.skip_epochs == 3
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.trainer == {"learning_rate": 1e-6}


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("rollout.foo=1", "'rollout.foo'"),
        ("foo=1", "'foo'"),
        ("advantages.d3s.sampel_k=2", "did you mean 'sample_k'"),
        ("difficulty.prune.skip=2", "'difficulty.prune.skip'"),
    ],
)
def test_unknown_key_is_named(override, names):
    with pytest.raises(ConfigError, match="unknown key") as err:
        build_config({}, [override])
    assert names in str(err.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("rollout.engine=tpu", "rollout.engine"),
        ("advantages.normalize=groups", "advantages.normalize"),
        ("advantages.dynamic_sampling.max_rounds=abc", "advantages.dynamic_sampling.max_rounds"),
        ("advantages.d3s.rho_end=0", "advantages.d3s.rho_end"),
        ("lora.r=0", "lora.r"),
        ("data.n=many", "data.n"),
    ],
)
def test_type_errors_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") + ":"):
        build_config({}, [override])


def test_ray_pool_settings_from_overrides():
    cfg = build_config({}, ["rollout.workers=2", "ray.address=ray://head:10001", "ray.num_cpus=2",
                            "ray.placement=SPREAD", "ray.sync_timeout_s=30", "ray.max_lag=1"])  # fmt: skip
    assert cfg.rollout.workers == 2
    assert (cfg.ray.address, cfg.ray.num_cpus, cfg.ray.placement) == ("ray://head:10001", 2.0, "SPREAD")
    assert (cfg.ray.sync_timeout_s, cfg.ray.max_lag, cfg.ray.transport) == (30.0, 1, "auto")


@pytest.mark.parametrize(
    ("override", "field"),
    [("rollout.workers=-1", "rollout.workers"), ("ray.placement=RANDOM", "ray.placement"),
     ("ray.sync_timeout_s=0", "ray.sync_timeout_s"), ("ray.num_gpus=-1", "ray.num_gpus")],
)  # fmt: skip
def test_bad_ray_settings_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") + ":"):
        build_config({}, [override])


def test_da_caps_must_be_ordered():
    with pytest.raises(ConfigError, match="min_length"):
        build_config({}, ["difficulty.da_dler.min_length=5000"])


def test_trainer_validator_sees_overrides_and_can_reject():
    seen = {}

    def validator(args):
        seen.update(args)
        if "bogus" in args:
            raise ConfigError("unknown key 'trainer.bogus'")
        return {k: float(v) for k, v in args.items()}

    cfg = build_config(
        {"trainer": {"learning_rate": "1e-6"}}, ["trainer.beta=0"], trainer_validator=validator
    )
    assert cfg.trainer == {"learning_rate": 1e-6, "beta": 0.0} and seen == {
        "learning_rate": "1e-6",
        "beta": 0,
    }
    with pytest.raises(ConfigError, match="trainer.bogus"):
        build_config({}, ["trainer.bogus=1"], trainer_validator=validator)


def test_load_recipe_by_path_and_name(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "tiny-random-qwen2"}, "trainer": {"max_steps": 3}}))
    cfg = load_recipe(path, ["trainer.max_steps=5"])
    assert cfg.name == "mine" and cfg.model.name == "tiny-random-qwen2" and cfg.trainer["max_steps"] == 5
    assert load_recipe("mine", recipes_dir=tmp_path).name == "mine"
    with pytest.raises(ConfigError, match="unknown recipe 'nope'.*mine"):
        load_recipe("nope", recipes_dir=tmp_path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "a: [unclosed\n"])
def test_load_recipe_rejects_non_mapping_yaml(tmp_path: Path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_recipe(path)


def test_fields_carry_docstrings():
    from reasoner.config import AdvantageConfig, DACapConfig, RolloutConfig

    for model in (RolloutConfig, AdvantageConfig, DACapConfig):
        for name, field in model.model_fields.items():
            if name not in ("dynamic_sampling", "d3s"):
                assert field.description, f"{model.__name__}.{name} has no docstring"
    assert "tokens" in DACapConfig.model_fields["max_length"].description


RL_RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if recipe_kind(p) == "grpo")
"""SFT recipes (kind: sft) validate as ``SFTRecipeConfig``, tested in tests/integration/test_merge_distill.py."""


@pytest.mark.parametrize("recipe", RL_RECIPES)
def test_shipped_recipes_validate(recipe):
    cfg = load_recipe(recipe)
    assert isinstance(cfg, RecipeConfig) and cfg.name == recipe and cfg.description
    assert cfg.model.name in MODELS  # a built-in alias: every shipped recipe runs offline as it is
