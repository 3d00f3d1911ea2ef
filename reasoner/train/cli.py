"""``reasoner train RECIPE [key=value ...]``: run an RL recipe (TRL GRPO + our rollouts and advantages).

RECIPE is a recipe name (``recipes/NAME.yaml``: grpo, dler, dler_da, d3s, l1_exact, kimi, ...) or a path to
a YAML file; ``key=value`` arguments override it with dotted keys (``trainer.learning_rate=1e-6
rollout.engine=hf model.name=tiny-random-qwen2``); an unknown key is an error that names it. Checkpoints go
to ``trainer.output_dir`` every ``trainer.save_steps`` steps, with our difficulty state; ``--resume``
continues from the latest one at the same step, data order and difficulty state. Metrics: one JSON line per
logging step in ``<output_dir>/metrics.jsonl`` plus a compact console line; ``trainer.report_to`` is TRL's.

This module is a composition root (like ``reasoner/cli.py``): it wires recipe names to reward functions
(``rewards.REWARDS``) and training problems (``evals.benchmarks``), importing them inside functions.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasoner.config import ConfigError, DataConfig, RecipeConfig, RewardSpec, load_recipe

log = logging.getLogger(__name__)

__all__ = ["add_parsers", "build_rewards", "cmd_train", "load_problems", "train_recipe"]


def add_parsers(subparsers: Any) -> None:
    """Add the ``train`` subcommand to ``reasoner``'s subparsers."""
    p = subparsers.add_parser(
        "train",
        help="run an RL recipe (GRPO, DLER, DA-DLER, D3S, L1, Kimi, ...) on TRL's GRPOTrainer",
        description=__doc__.split("\n\nThis module")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", help="recipe name in recipes/ (e.g. grpo, dler) or a path to a recipe YAML file")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides applied to the recipe, e.g. trainer.learning_rate=1e-6 rollout.engine=hf",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="continue from the latest checkpoint in trainer.output_dir (or from the CHECKPOINT directory)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved recipe as YAML and exit")
    p.set_defaults(func=cmd_train)


def load_problems(data: DataConfig) -> list:
    """Training problems for a recipe's ``data`` section (``evals.benchmarks``)."""
    from evals.benchmarks import load_benchmark

    options: dict[str, Any] = {}
    if data.benchmark == "arith":
        options = {"n": data.n, "seed": data.seed, "levels": tuple(data.levels)}
    try:
        result = load_benchmark(data.benchmark, split=data.split, limit=data.limit, data_dir=data.data_dir,
                                **options)  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(f"data: {err}") from None
    if not result.problems:
        raise ConfigError(f"data: benchmark {data.benchmark!r} split {data.split!r} has no problems")
    return list(result.problems)


def build_rewards(specs: Sequence[RewardSpec]) -> list:
    """Reward callables for the recipe's ``rewards`` list (``rewards.REWARDS``: name -> factory)."""
    from rewards import REWARDS

    funcs = []
    for i, spec in enumerate(specs):
        if spec.name not in REWARDS:
            raise ConfigError(
                f"rewards.{i}.name: unknown reward {spec.name!r}; known: {', '.join(sorted(REWARDS))}"
            )
        try:
            funcs.append(REWARDS[spec.name](**spec.params))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"rewards.{i}.params ({spec.name}): {err}") from None
    return funcs


def resolved_recipe(recipe: str | Path, overrides: Sequence[str] = ()) -> RecipeConfig:
    """Load a recipe with overrides, ``trainer:`` checked against TRL's GRPOConfig."""
    from reasoner.train.trainer import validate_trainer_args

    return load_recipe(recipe, overrides, trainer_validator=validate_trainer_args)


def train_recipe(
    recipe: str | Path | RecipeConfig,
    overrides: Sequence[str] = (),
    *,
    resume: bool | str | None = None,
    rollout: Any = None,
    quiet: bool = False,
) -> Any:
    """Run a recipe end to end; return the trainer (its state holds the step, metrics are on disk)."""
    import yaml

    from reasoner.train.trainer import build_trainer

    config = recipe if isinstance(recipe, RecipeConfig) else resolved_recipe(recipe, overrides)
    problems = load_problems(config.data)
    funcs = build_rewards(config.rewards)
    trainer = build_trainer(config, reward_funcs=funcs, problems=problems, rollout=rollout, quiet=quiet)
    out = Path(trainer.args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        if get_last_checkpoint(str(out)) is None:
            raise ConfigError(f"--resume: no checkpoint-* directory in {str(out)!r}")
    log.info("training %s: %d problems, output %s", config.name or "recipe", len(problems), out)
    try:
        trainer.train(resume_from_checkpoint=resume)
        trainer.save_model(str(out))
    finally:
        if rollout is None:  # we built the engine: release it
            trainer.rollout.close()
    return trainer


def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``reasoner train``."""
    import yaml

    from reasoner.cli import CLIError

    try:
        config = resolved_recipe(args.recipe, args.overrides)
        if args.print_config:
            sys.stdout.write(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
            return 0
        train_recipe(config, resume=args.resume)
    except ConfigError as err:
        raise CLIError(str(err)) from None
    return 0
