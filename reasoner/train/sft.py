"""SFT recipes: supervised fine-tuning on a concise chain-of-thought dataset with TRL's SFTTrainer.

The second way to shorter reasoning beside RL: train on short, correct traces built by ``reasoner distill``
(shortest-correct distillation, or DAP's difficulty-aware rewrites, arXiv 2505.19716). A recipe with
``kind: sft`` (``recipes/sft_short.yaml``) has the sections ``model`` (the student), ``data`` (the dataset
directory), ``lora`` (optional PEFT adapter) and ``trainer`` (TRL ``SFTConfig`` fields, passed through and
checked against SFTConfig's dataclass fields): ``reasoner.config.SFTRecipeConfig``, the ``sft`` member of the
recipe union keyed on ``kind``. Every section rejects unknown keys, naming them, as RL recipes do.
``reasoner train sft_short [key=value ...]`` runs it (``reasoner.config.load_recipe`` picks the kind).

The dataset rows are TRL's conversational prompt-completion format, so the loss covers the completion only
(SFTConfig ``completion_only_loss`` defaults to that for prompt-completion data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from reasoner.config import (
    ConfigError,
    SFTRecipeConfig,
    TrainerValidator,
    build_config,
    read_recipe_tree,
    recipe_kind,
)
from reasoner.sections import SFTDataConfig

log = logging.getLogger(__name__)

__all__ = [
    "SFTDataConfig",
    "SFTRecipeConfig",
    "load_sft_dataset",
    "load_sft_recipe",
    "train_sft",
]

SFT_COLUMNS = ({"prompt", "completion"}, {"messages"}, {"text"})
"""Column sets TRL's SFTTrainer trains on (prompt-completion, conversational LM, plain LM)."""


def load_sft_recipe(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    *,
    trainer_validator: TrainerValidator | None = None,
) -> SFTRecipeConfig:
    """Load an SFT recipe (name in ``recipes/`` or YAML path), apply dotted overrides, validate: the ``sft``
    member of the recipe union (``reasoner.config.build_config``); a recipe of another kind is an error."""
    path, tree = read_recipe_tree(recipe)
    if recipe_kind(tree) != "sft":
        raise ConfigError(
            f"recipe {str(path)!r} is kind {recipe_kind(tree)!r}, not an SFT recipe (kind: sft)"
        )
    tree.setdefault("name", path.stem)
    validators = {"sft": trainer_validator} if trainer_validator else None
    config = build_config(tree, overrides, rewards={}, trainer_validators=validators)
    if not isinstance(config, SFTRecipeConfig):  # recipe_kind said sft: the union cannot give another member
        raise ConfigError(f"recipe {str(path)!r} did not load as an SFT recipe: {type(config).__name__}")
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
