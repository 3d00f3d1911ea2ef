"""Recipe loading: YAML + dotted CLI overrides -> a typed, validated recipe.

A recipe is a YAML file (``recipes/NAME.yaml``) of one of two kinds, a union keyed on ``kind``: ``grpo`` (the
default when ``kind`` is absent; RL on TRL's GRPOTrainer, ``RecipeConfig``) or ``sft`` (TRL's SFTTrainer on a
distilled dataset, ``SFTRecipeConfig``). Every section (``reasoner.sections``) is a pydantic model with ``extra="forbid"``, so an unknown
key is an error that names it (``unknown key 'rollout.foo'``), and a value of the wrong type is an error that
names the field (``advantages.normalize: Input should be ...``). Overrides (``reasoner.overrides``) are
``dotted.key=value`` strings applied to the YAML tree before validation.

Each ``rewards`` entry is ``{name, weight, params}``, a union keyed on ``name`` whose ``params`` are the fields of
the reward class of that name. This module does not import ``rewards``: the composition root passes the registry
(``rewards.REWARDS``, name -> pydantic model class) to ``load_recipe(..., rewards=REWARDS)``. An unknown reward
parameter is an error naming the reward and the parameter (``unknown key 'rewards.0.truncation.params.max_len'``)
and the reward's defaults appear in ``--print-config``.

``trainer:`` is passed through to TRL's ``GRPOConfig`` (``SFTConfig`` for sft) with TRL's field names. This
module does not import TRL (it is the light L0 layer); the caller passes ``trainer_validators`` (kind ->
``reasoner.train.trainer.validate_trainer_args`` / ``validate_sft_args``), which check the keys against TRL's
dataclass fields and coerce the values. Recipes ship as package data (``reasoner/recipes``, a link to the
repository's ``recipes/``), found with ``importlib.resources`` in a checkout, an editable install and a wheel.
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    create_model,
)

from reasoner.overrides import (
    ConfigError,
    apply_override,
    format_validation_error,
    parse_override,
    parse_yaml,
)
from reasoner.sections import (
    AdvantageConfig,
    DataConfig,
    DifficultyConfig,
    LoraConfig,
    ModelConfig,
    RayConfig,
    RolloutConfig,
    Section,
    SFTDataConfig,
)

RECIPES_DIR = Path(str(files("reasoner") / "recipes"))
"""Where recipe names (``reasoner train dler``) are looked up: ``NAME.yaml`` in the package data directory
``reasoner/recipes`` (in a checkout a link to the repository's ``recipes/``; a wheel holds a copy)."""

Registry = Mapping[str, type[BaseModel]]
"""Reward name -> its class (``rewards.REWARDS``), whose fields are the reward's parameters."""
TrainerValidator = Callable[[dict[str, Any]], dict[str, Any]]
"""Checks and coerces a recipe's ``trainer:`` section (TRL's GRPOConfig or SFTConfig fields)."""


class RewardSpec(Section):
    """One reward of a recipe. ``reward_spec`` derives the class for one registered reward: ``name`` a literal,
    ``params`` its reward class (a callable, frozen pydantic model)."""

    name: str
    """Reward function name in the ``rewards.REWARDS`` registry (accuracy, truncation, l1_exact, kimi, ...)."""
    weight: float = 1.0
    """Weight in the summed reward (TRL ``reward_weights``). Default 1.0."""
    params: Any = None
    """The reward's parameters (e.g. ``{max_length: 4000}``), validated into the reward class of ``name``; may be
    left out when every parameter has a default."""


def _unregistered(spec: RewardSpec) -> RewardSpec:
    raise ValueError(f"unknown reward {spec.name!r}: no rewards are registered")


@functools.cache
def reward_spec(name: str, reward: type[BaseModel]) -> type[RewardSpec]:
    """The ``RewardSpec`` of one registered reward: ``name: Literal[name]``, ``params: reward``."""
    required = any(field.is_required() for field in reward.model_fields.values())
    params = (reward, ...) if required else (reward, Field(default_factory=reward))
    tag: Any = Literal[name]  # a Literal of a runtime name: a type pydantic reads, not one mypy can check
    spec = create_model(f"{reward.__name__}Spec", __base__=RewardSpec, name=(tag, ...), params=params)
    spec.model_fields["params"].description = RewardSpec.model_fields["params"].description
    return spec


def reward_union(rewards: Registry) -> Any:
    """The type of one ``rewards`` entry: the union of the registered rewards' specs, keyed on ``name``. With
    no reward registered (loading SFT recipes), every reward entry is an error."""
    if not rewards:
        return Annotated[RewardSpec, AfterValidator(_unregistered)]
    specs = tuple(reward_spec(name, cls) for name, cls in rewards.items())
    return specs[0] if len(specs) == 1 else Annotated[Union[specs], Field(discriminator="name")]  # noqa: UP007


class RecipeConfig(Section):
    """An RL recipe (``kind: grpo``). Its ``rewards`` entries are typed by ``recipe_model(rewards)``."""

    kind: Literal["grpo"] = "grpo"
    """Recipe kind: ``grpo`` (the default), RL on TRL's GRPOTrainer."""
    name: str = ""
    """Recipe name (the YAML file stem unless set)."""
    description: str = ""
    """One line: what the recipe reproduces."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The policy and the dtype of its trained weights."""
    data: DataConfig = Field(default_factory=DataConfig)
    """Training problems: a benchmark and split (generated ones: size, levels, seed)."""
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    """Generation: the engine, its memory, the Ray pool size, the weight-sync check."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """The Ray rollout pool (used when rollout.workers > 0): cluster, resources, placement, lag, retries."""
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="accuracy")], min_length=1)
    """Reward functions and weights, summed (TRL ``reward_weights``)."""
    advantages: AdvantageConfig = Field(default_factory=AdvantageConfig)
    """Advantages: group/batch normalisation, dynamic sampling, D3S down-sampling."""
    difficulty: DifficultyConfig = Field(default_factory=DifficultyConfig)
    """Per-prompt pass rates: tracking, pruning (curriculum), Difficulty-Aware DLER caps."""
    lora: LoraConfig = Field(default_factory=LoraConfig)
    """A LoRA adapter instead of full fine-tuning (merged weights go to the engine)."""
    trainer: dict[str, Any] = {}
    """TRL ``GRPOConfig`` fields, passed through (output_dir, learning_rate, num_generations, ...)."""


class SFTRecipeConfig(Section):
    """An SFT recipe (``kind: sft``): TRL's SFTTrainer on a dataset directory (``reasoner.train.sft``)."""

    kind: Literal["sft"] = "sft"
    """Recipe kind: ``sft`` (TRL SFTTrainer). Recipes without ``kind`` are RL (GRPO) recipes."""
    name: str = ""
    """Recipe name (the YAML file stem unless set)."""
    description: str = ""
    """One line: what the recipe reproduces."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The model to fine-tune and the dtype of its weights."""
    data: SFTDataConfig
    """The dataset directory (a ``reasoner distill`` output), its split and size."""
    lora: LoraConfig = Field(default_factory=LoraConfig)
    """A LoRA adapter instead of full fine-tuning."""
    trainer: dict[str, Any] = {}
    """TRL ``SFTConfig`` fields, passed through (output_dir, learning_rate, max_length, max_steps, ...)."""
    loss_normalization: Literal["batch", "run"] = "batch"
    """What a batch's summed token loss is divided by. ``batch``: its own loss tokens (TRL's per-batch token
    mean). ``run``: the mean loss tokens per batch over the whole dataset, a constant, so every token weighs the
    same whichever batch it lands in. With ``group_by_length`` batches the per-batch mean weighs a token of a
    short batch more than one of a long batch, which skews what the model learns about length itself (the
    organism's number of re-checks came out ~2x too low); ``run`` does not. Default batch."""


RECIPE_KINDS = ("grpo", "sft")
"""Values of a recipe's ``kind`` key; absent means ``grpo``."""


def _kind(value: Any) -> str:
    """The recipe union's discriminator: ``kind``, ``grpo`` when absent."""
    return value.get("kind", "grpo") if isinstance(value, Mapping) else value.kind


def recipe_union(rewards: Registry) -> tuple[Any, TypeAdapter]:
    """The recipe type and its validator: ``RecipeConfig`` with its ``rewards`` entries typed by the registry
    (``reward_union``; kind ``grpo``, the default) | ``SFTRecipeConfig`` (kind ``sft``)."""
    return _recipe_union(tuple(rewards.items()))


@functools.cache
def _recipe_union(rewards: tuple[tuple[str, type[BaseModel]], ...]) -> tuple[Any, TypeAdapter]:
    field = RecipeConfig.model_fields["rewards"]
    default = Field(default_factory=lambda: [{"name": "accuracy"}], validate_default=True, min_length=1,
                    description=field.description)  # fmt: skip
    entries: Any = types.GenericAlias(
        list, (reward_union(dict(rewards)),)
    )  # list[<the union>], built at runtime
    rl = create_model("RecipeConfig", __base__=RecipeConfig, rewards=(entries, default))
    union = Annotated[
        Annotated[rl, Tag("grpo")] | Annotated[SFTRecipeConfig, Tag("sft")], Discriminator(_kind)
    ]
    return union, TypeAdapter(union)


# ---------------------------------------------------------------- loading


def recipe_path(recipe: str | Path, recipes_dir: Path | None = None) -> Path:
    """A recipe name (``dler`` -> ``recipes/dler.yaml``) or a path to a YAML file."""
    path = Path(recipe).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"recipe file {str(path)!r} does not exist")
        return path
    root = recipes_dir or RECIPES_DIR
    candidate = root / f"{recipe}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in root.glob("*.yaml"))
    raise ConfigError(
        f"unknown recipe {str(recipe)!r}: not a file, and not one of {', '.join(known) or '(none)'}"
    )


def recipe_kind(recipe: str | Path | Mapping[str, Any]) -> str:
    """``grpo`` or ``sft``: the ``kind`` of a recipe (name, path or YAML tree); errors name unknown kinds."""
    tree = recipe if isinstance(recipe, Mapping) else read_recipe_tree(recipe)[1]
    kind = _kind(tree)
    if kind not in RECIPE_KINDS:
        raise ConfigError(f"kind: unknown recipe kind {kind!r}; known: grpo (the default), sft")
    return kind


def build_config(
    tree: Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    rewards: Registry,
    trainer_validators: Mapping[str, TrainerValidator] | None = None,
) -> RecipeConfig | SFTRecipeConfig:
    """Validate a recipe tree (after applying overrides) into the recipe of its ``kind`` (``recipe_union``):
    reward entries typed by ``rewards`` (name -> class), ``trainer:`` checked by ``trainer_validators[kind]``."""
    data = copy.deepcopy(dict(tree))
    for item in overrides:
        path, value = parse_override(item)
        apply_override(data, path, value)
    kind = recipe_kind(data)
    union, adapter = recipe_union(rewards)
    try:
        config = adapter.validate_python(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, union, tagged_root=True)) from None
    validator = (trainer_validators or {}).get(kind)
    if validator is not None:
        config.trainer = validator(dict(config.trainer))
    return config


def read_recipe_tree(recipe: str | Path, recipes_dir: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The YAML tree of a recipe (name or path), checked to be a mapping; errors name the file."""
    path = recipe_path(recipe, recipes_dir)
    try:
        tree = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of sections, got {type(tree).__name__}")
    return path, tree


def load_recipe(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    *,
    rewards: Registry,
    trainer_validators: Mapping[str, TrainerValidator] | None = None,
    recipes_dir: Path | None = None,
) -> RecipeConfig | SFTRecipeConfig:
    """Load ``recipe`` (a name in ``reasoner/recipes`` or a YAML path), apply ``key=value`` overrides, validate
    (``build_config``): a ``RecipeConfig`` (``kind: grpo``, the default) or an ``SFTRecipeConfig`` (``kind: sft``)."""
    path, tree = read_recipe_tree(recipe, recipes_dir)
    tree.setdefault("name", path.stem)
    return build_config(tree, overrides, rewards=rewards, trainer_validators=trainer_validators)
