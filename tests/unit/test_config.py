"""Recipe config: YAML + dotted overrides -> typed config; unknown keys and bad types name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from reasoner.config import (
    RECIPES_DIR,
    ConfigError,
    RecipeConfig,
    SFTRecipeConfig,
    build_config,
    load_recipe,
    recipe_kind,
)
from reasoner.models import MODELS
from reasoner.overrides import apply_override, parse_override, parse_value
from rewards import REWARDS


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
        rewards=REWARDS,
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
        build_config({}, [override], rewards=REWARDS)
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
        build_config({}, [override], rewards=REWARDS)


def test_ray_pool_settings_from_overrides():
    cfg = build_config({}, ["rollout.workers=2", "ray.address=ray://head:10001", "ray.num_cpus=2",
                            "ray.placement=SPREAD", "ray.sync_timeout_s=30", "ray.max_lag=1"], rewards=REWARDS)  # fmt: skip
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
        build_config({}, [override], rewards=REWARDS)


def test_bad_difficulty_settings_name_the_field():
    with pytest.raises(ConfigError, match=r"difficulty\.prune\.min_seen"):
        build_config({}, ["difficulty.prune.min_seen=0"], rewards=REWARDS)


def test_trainer_validator_sees_overrides_and_can_reject():
    seen = {}

    def validator(args):
        seen.update(args)
        if "bogus" in args:
            raise ConfigError("unknown key 'trainer.bogus'")
        return {k: float(v) for k, v in args.items()}

    cfg = build_config(
        {"trainer": {"learning_rate": "1e-6"}},
        ["trainer.beta=0"],
        rewards=REWARDS,
        trainer_validators={"grpo": validator},
    )
    assert cfg.trainer == {"learning_rate": 1e-6, "beta": 0.0} and seen == {
        "learning_rate": "1e-6",
        "beta": 0,
    }
    with pytest.raises(ConfigError, match="trainer.bogus"):
        build_config({}, ["trainer.bogus=1"], rewards=REWARDS, trainer_validators={"grpo": validator})


def test_load_recipe_by_path_and_name(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "tiny-random-qwen2"}, "trainer": {"max_steps": 3}}))
    cfg = load_recipe(path, ["trainer.max_steps=5"], rewards=REWARDS)
    assert cfg.name == "mine" and cfg.model.name == "tiny-random-qwen2" and cfg.trainer["max_steps"] == 5
    assert load_recipe("mine", rewards=REWARDS, recipes_dir=tmp_path).name == "mine"
    with pytest.raises(ConfigError, match="unknown recipe 'nope'.*mine"):
        load_recipe("nope", rewards=REWARDS, recipes_dir=tmp_path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "a: [unclosed\n"])
def test_load_recipe_rejects_non_mapping_yaml(tmp_path: Path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_recipe(path, rewards=REWARDS)


def test_fields_carry_docstrings():
    from reasoner.sections import AdvantageConfig, DifficultyConfig, RolloutConfig

    for model in (RolloutConfig, AdvantageConfig, DifficultyConfig):
        for name, field in model.model_fields.items():
            if name not in ("dynamic_sampling", "d3s", "prune"):
                assert field.description, f"{model.__name__}.{name} has no docstring"


RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_shipped_recipes_validate(recipe):
    cfg = load_recipe(recipe, rewards=REWARDS)
    assert cfg.kind == recipe_kind(recipe) and cfg.name == recipe and cfg.description
    assert isinstance(cfg, RecipeConfig if cfg.kind == "grpo" else SFTRecipeConfig)
    if cfg.kind == "grpo":
        assert cfg.model.name in MODELS  # a built-in alias: every shipped RL recipe runs offline as it is
        assert [spec.params for spec in cfg.rewards] == [REWARDS[spec.name](**tree_params(recipe, i))
                                                           for i, spec in enumerate(cfg.rewards)]  # fmt: skip
        # the printed recipe (--print-config, the run's recipe.yaml) loads back to the same recipe
        assert build_config(cfg.model_dump(mode="json"), rewards=REWARDS) == cfg


def tree_params(recipe: str, i: int) -> dict:
    return yaml.safe_load((RECIPES_DIR / f"{recipe}.yaml").read_text())["rewards"][i].get("params", {})


def test_recipes_are_package_data_from_the_repository_recipes():
    """``RECIPES_DIR`` (``importlib.resources``: ``reasoner/recipes``) holds the repository's ``recipes/``."""
    repository = Path(__file__).resolve().parents[2] / "recipes"
    assert RECIPES_DIR.name == "recipes" and RECIPES_DIR.parent.name == "reasoner"
    assert RECIPES == sorted(p.stem for p in repository.glob("*.yaml")) and len(RECIPES) >= 8
    assert (RECIPES_DIR / "dler.yaml").read_text() == (repository / "dler.yaml").read_text()


def test_reward_params_are_typed_by_the_registry_with_defaults():
    cfg = load_recipe("dler", ["rewards.0.weight=0.5", "rewards.0.params.timeout=2"], rewards=REWARDS)
    (spec,) = cfg.rewards
    assert spec.name == "truncation" and spec.weight == 0.5
    assert spec.params == REWARDS["truncation"](max_length=96, timeout=2.0)
    dumped = cfg.model_dump(mode="json")["rewards"][0]
    assert dumped["params"] == {**REWARDS["truncation"](max_length=96).model_dump(), "timeout": 2.0}
    assert dumped["params"]["cap_column"] == "max_length"  # a default, shown by --print-config
    accuracy = build_config({}, rewards=REWARDS).rewards  # the default reward: accuracy, all defaults
    assert [(s.name, s.weight, s.params) for s in accuracy] == [("accuracy", 1.0, REWARDS["accuracy"]())]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rewards.0.params.max_len=3"], "unknown key 'rewards.0.truncation.params.max_len'; did you mean 'max_length'?"),
        (["rewards.0.params.max_length=0"], "rewards.0.truncation.params.max_length: Input should be greater than or equal to 1"),
        (["rewards.0.params.max_length=2.5"], "rewards.0.truncation.params.max_length: Input should be a valid integer"),
        (["rewards.0.params.mode=loose"], "rewards.0.truncation.params.mode: Input should be 'lenient' or 'strict'"),
        (["rewards.0.params={}"], "rewards.0.truncation.params.max_length: Field required"),
        (["rewards.0.name=bogus"], "rewards.0: Input tag 'bogus' found using 'name' does not match"),
        (["rewards.0.name=kimi"], "unknown key 'rewards.0.kimi.params.max_length'"),
        (["rewards.0.weight=heavy"], "rewards.0.truncation.weight: Input should be a valid number"),
    ],
)  # fmt: skip
def test_reward_errors_name_the_reward_and_the_param(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_recipe("dler", overrides, rewards=REWARDS)
    assert message in str(err.value)


def test_without_a_reward_registry_every_reward_is_unknown():
    with pytest.raises(ConfigError, match="rewards.0: unknown reward 'accuracy': no rewards are registered"):
        build_config({}, rewards={})
    assert isinstance(build_config({"kind": "sft", "data": {"path": "d"}}, rewards={}), SFTRecipeConfig)


def test_kind_is_one_union_grpo_by_default():
    assert build_config({}, rewards=REWARDS).kind == "grpo"
    grpo = build_config({"kind": "grpo"}, rewards=REWARDS)
    assert isinstance(grpo, RecipeConfig) and grpo.kind == "grpo"
    sft = build_config({"kind": "sft", "data": {"path": "runs/x"}}, ["trainer.max_steps=3"], rewards=REWARDS)
    assert isinstance(sft, SFTRecipeConfig) and sft.data.path == "runs/x" and sft.trainer == {"max_steps": 3}
    with pytest.raises(ConfigError, match="kind: unknown recipe kind 'ppo'; known: grpo"):
        build_config({"kind": "ppo"}, rewards=REWARDS)
    with pytest.raises(ConfigError, match="unknown key 'rewards'"):  # an SFT recipe has no rewards
        build_config({"kind": "sft", "data": {"path": "d"}, "rewards": []}, rewards=REWARDS)
    with pytest.raises(ConfigError, match="unknown key 'data.path'"):  # nor an RL recipe a dataset path
        build_config({"kind": "grpo", "data": {"path": "d"}}, rewards=REWARDS)
    seen = []
    validators = {"grpo": lambda t: seen.append("grpo") or t, "sft": lambda t: seen.append("sft") or t}
    build_config({"kind": "sft", "data": {"path": "d"}}, rewards=REWARDS, trainer_validators=validators)
    build_config({}, rewards=REWARDS, trainer_validators=validators)
    assert seen == ["sft", "grpo"]


@pytest.mark.parametrize("model", [RecipeConfig, SFTRecipeConfig])
def test_train_help_lists_every_key_of_the_config(model):
    """``reasoner train --help`` lists the recipe keys from the fields (``keys_help``): every section's every
    key, nested sections included, with its docstring's first sentence, so the help cannot drift."""
    from pydantic import BaseModel

    from reasoner.overrides import keys_help

    text = " ".join(keys_help(model).split())

    def section_keys(m: type[BaseModel]) -> list[str]:
        out = []
        for key, field in m.model_fields.items():
            inner = field.annotation
            args = getattr(inner, "__args__", ())
            sub = next((a for a in (inner, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            out += [key] + (section_keys(sub) if sub is not None else [])
        return out

    for key in section_keys(model):
        assert re.search(rf"[{{ ,.]{key}[}},.]|^{key} | {key} ", text), key
    for key, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{key} has no attribute docstring"
        assert field.description.split(". ")[0].split()[0] in text
