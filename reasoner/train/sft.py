"""SFT recipes: supervised fine-tuning on a concise chain-of-thought dataset with TRL's SFTTrainer.

The second way to shorter reasoning beside RL: train on short, correct traces built by ``reasoner distill``
(shortest-correct distillation, or DAP's difficulty-aware rewrites, arXiv 2505.19716). A recipe with
``kind: sft`` (``recipes/sft_short.yaml``) has the sections ``model`` (the student), ``data`` (the dataset
directory), ``lora`` (optional PEFT adapter) and ``trainer`` (TRL ``SFTConfig`` fields, passed through and
checked against SFTConfig's dataclass fields). Every section rejects unknown keys, naming them, as RL recipes
do. ``reasoner train sft_short [key=value ...]`` runs it: ``reasoner.train.cli`` dispatches on ``kind``.

The dataset rows are TRL's conversational prompt-completion format, so the loss covers the completion only
(SFTConfig ``completion_only_loss`` defaults to that for prompt-completion data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasoner.config import (
    ConfigError,
    LoraConfig,
    ModelConfig,
    apply_override,
    format_validation_error,
    parse_override,
    read_recipe_tree,
)

log = logging.getLogger(__name__)

__all__ = [
    "SFTDataConfig",
    "SFTRecipeConfig",
    "load_sft_dataset",
    "load_sft_recipe",
    "recipe_kind",
    "train_sft",
]

SFT_COLUMNS = ({"prompt", "completion"}, {"messages"}, {"text"})
"""Column sets TRL's SFTTrainer trains on (prompt-completion, conversational LM, plain LM)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class SFTDataConfig(_Section):
    path: str
    """Dataset directory (``datasets`` ``save_to_disk``), e.g. the ``--out`` of ``reasoner distill``, with
    prompt/completion (or messages, or text) columns. Relative paths are from the working directory."""
    split: str = "train"
    """Split to use when the directory holds a DatasetDict. Default train."""
    limit: int | None = Field(None, ge=1)
    """Train on the first ``limit`` rows only (None: all). Default None."""


class SFTRecipeConfig(_Section):
    kind: Literal["sft"] = "sft"
    """Recipe kind: ``sft`` (TRL SFTTrainer). Recipes without ``kind`` are RL (GRPO) recipes."""
    name: str = ""
    """Recipe name (the YAML file stem unless set)."""
    description: str = ""
    """One line: what the recipe reproduces."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: SFTDataConfig
    lora: LoraConfig = Field(default_factory=LoraConfig)
    trainer: dict[str, Any] = {}
    """TRL ``SFTConfig`` fields, passed through (output_dir, learning_rate, max_length, max_steps, ...)."""
    loss_normalization: Literal["batch", "run"] = "batch"
    """What a batch's summed token loss is divided by. ``batch``: its own loss tokens (TRL's per-batch token
    mean). ``run``: the mean loss tokens per batch over the whole dataset, a constant, so every token weighs the
    same whichever batch it lands in. With ``group_by_length`` batches the per-batch mean weighs a token of a
    short batch more than one of a long batch, which skews what the model learns about length itself (the
    organism's number of re-checks came out ~2x too low); ``run`` does not. Default batch."""


def recipe_kind(recipe: str | Path) -> str:
    """``sft`` for SFT recipes, ``grpo`` for RL recipes (no ``kind`` key); errors name unknown kinds."""
    kind = read_recipe_tree(recipe)[1].get("kind", "grpo")
    if kind not in ("grpo", "sft"):
        raise ConfigError(f"kind: unknown recipe kind {kind!r}; known: grpo (the default), sft")
    return kind


def load_sft_recipe(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    *,
    trainer_validator: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> SFTRecipeConfig:
    """Load an SFT recipe (name in ``recipes/`` or YAML path), apply dotted overrides, validate."""
    import copy

    path, tree = read_recipe_tree(recipe)
    tree.setdefault("name", path.stem)
    data = copy.deepcopy(tree)
    for item in overrides:
        keys, value = parse_override(item)
        apply_override(data, keys, value)
    try:
        config = SFTRecipeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, SFTRecipeConfig)) from None
    if trainer_validator is not None:
        config.trainer = trainer_validator(dict(config.trainer))
    return config


def load_sft_dataset(data: SFTDataConfig) -> Any:
    """The training ``datasets.Dataset`` of ``data``; ConfigError naming ``data.path`` when it is unusable."""
    import datasets

    path = Path(data.path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"data.path: {str(path)!r} is not a directory; build one with `reasoner distill "
                          f"shortest-correct --out {data.path}` (or `distill dap`)")  # fmt: skip
    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise ConfigError(f"data.path: {str(path)!r} is not a saved datasets directory ({err})") from None
    if isinstance(ds, datasets.DatasetDict):
        if data.split not in ds:
            raise ConfigError(f"data.split: {data.split!r} not in {str(path)!r} (splits: {', '.join(ds)})")
        ds = ds[data.split]
    if not any(cols <= set(ds.column_names) for cols in SFT_COLUMNS):
        raise ConfigError(f"data.path: {str(path)!r} has columns {ds.column_names}; SFT needs prompt+completion, "
                          "messages or text")  # fmt: skip
    if len(ds) == 0:
        raise ConfigError(f"data.path: {str(path)!r} has no rows")
    return ds.select(range(min(data.limit, len(ds)))) if data.limit else ds


def train_sft(
    config: SFTRecipeConfig,
    *,
    resume: bool | str | None = None,
    quiet: bool | Literal["bar"] = False,
    callbacks: Sequence[Any] = (),
) -> Any:
    """Run an SFT recipe end to end; return the trainer (model and tokenizer saved to ``output_dir``).
    ``quiet``: as ``build_sft_trainer``'s (True: no console output, "bar": the progress bar only)."""
    from reasoner.train.trainer import build_sft_trainer, prepare_output_dir

    dataset = load_sft_dataset(config.data)
    trainer = build_sft_trainer(config, dataset, callbacks=callbacks, quiet=quiet)
    out = prepare_output_dir(trainer.args.output_dir, config, resume)
    log.info(
        "sft %s: %d rows from %s, output %s", config.name or "recipe", len(dataset), config.data.path, out
    )
    trainer.train(resume_from_checkpoint=resume)
    trainer.model.config.use_cache = True  # trainers turn the KV cache off; the saved model is for generation
    trainer.save_model(str(out))
    return trainer
