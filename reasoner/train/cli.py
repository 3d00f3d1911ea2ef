"""``reasoner train RECIPE [key=value ...]``: run an RL recipe (TRL GRPO + our rollouts and advantages), or
an SFT recipe (``kind: sft``, TRL SFTTrainer on a ``reasoner distill`` dataset, ``reasoner.train.sft``).

RECIPE is a recipe name (``recipes/NAME.yaml``: grpo, dler, dler_da, d3s, l1_exact, kimi, ...) or a path to
a YAML file; ``key=value`` arguments override it with dotted keys (``trainer.learning_rate=1e-6
rollout.engine=hf model.name=tiny-random-qwen2``); an unknown key is an error that names it. Checkpoints go
to ``trainer.output_dir`` every ``trainer.save_steps`` steps, with our difficulty state; ``--resume``
continues from the latest one at the same step, data order and difficulty state. Metrics: one JSON line per
logging step in ``<output_dir>/metrics.jsonl`` plus a compact console line; ``trainer.report_to`` is TRL's.

This module is a composition root (like ``reasoner/cli.py``): it wires recipe names to reward classes
(``rewards.REWARDS``, passed to ``reasoner.config.load_recipe``) and training problems (``evals.benchmarks``),
importing them inside functions.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasoner.argtypes import positive_int
from reasoner.clitools import CLIError, write_document
from reasoner.config import ConfigError, RecipeConfig, RewardSpec, SFTRecipeConfig, load_recipe
from reasoner.sections import DataConfig

log = logging.getLogger(__name__)

__all__ = ["add_parsers", "build_rewards", "cmd_train", "recipe_problems", "train_recipe"]


DESCRIPTION = """\
Run an RL recipe on TRL's GRPOTrainer with our rollouts (vLLM or transformers), advantages and curriculum.

RECIPE: a name in recipes/ ({recipes}) or a path to a YAML file.
KEY=VALUE: dotted overrides; an unknown key or a badly typed value is an error that names it. The keys of an
RL recipe (generated from its config; --print-config shows every value, defaults included):
{keys}

Checkpoints: trainer.output_dir/checkpoint-N every trainer.save_steps steps, with the difficulty state;
--resume continues from the latest one at the same step, data order and difficulty state.
Metrics: <output_dir>/metrics.jsonl (one JSON line per logging step) and a console line per step.

SFT recipes (kind: sft, e.g. sft_short) train TRL's SFTTrainer on a dataset from `reasoner distill`; their keys:
{sft_keys}

example: reasoner train dler model.name=tiny-random-qwen2 rollout.engine=hf trainer.max_steps=2
"""


def add_parsers(subparsers: Any, rank_main: Callable[[Sequence[str]], int]) -> None:
    """Add the ``train`` subcommand to ``reasoner``'s subparsers. ``rank_main(argv)`` runs one learner process
    of ``--nproc`` (``reasoner.cli.rank_main``: the ``reasoner`` command on ``argv``; module-level, it pickles)."""
    from reasoner.config import RECIPES_DIR
    from reasoner.overrides import keys_help
    from rewards import REWARDS

    recipes = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))) or "none found"
    names = ", ".join(REWARDS)
    keys = keys_help(RecipeConfig, {"rewards": f"params: the named reward's parameters; names: {names}."})
    p = subparsers.add_parser(
        "train",
        help="run an RL recipe (GRPO, DLER, DA-DLER, D3S, L1, Kimi, ...) on TRL's GRPOTrainer",
        description=DESCRIPTION.format(recipes=recipes, keys=keys, sft_keys=keys_help(SFTRecipeConfig)),
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
    p.add_argument(
        "--nproc",
        type=positive_int("--nproc"),
        default=1,
        metavar="N",
        help="data-parallel learner processes (default 1). Started here as torchrun would, or placed on the Ray "
        "cluster when ray.address / $RAY_ADDRESS is set. trainer.per_device_train_batch_size is per process: "
        "the global batch is N times it. Under torchrun / accelerate launch leave it out",
    )
    p.set_defaults(func=cmd_train, rank_main=rank_main)


def recipe_problems(data: DataConfig) -> list:
    """Training problems for a recipe's ``data`` section (``evals.benchmarks.load_problems``)."""
    from evals.benchmarks import load_problems

    try:
        return load_problems(data.benchmark, data.split, limit=data.limit, data_dir=data.data_dir, n=data.n,
                             seed=data.seed, levels=data.levels)  # fmt: skip
    except ValueError as err:
        raise ConfigError(f"data: {err}") from None


def build_rewards(specs: Sequence[RewardSpec]) -> list:
    """The reward callables of the recipe's ``rewards`` list: each entry's ``params``, already an instance of
    the reward class of its ``name`` (``rewards.REWARDS``; validated by ``load_recipe``)."""
    return [spec.params for spec in specs]


def resolved_recipe(recipe: str | Path, overrides: Sequence[str] = ()) -> RecipeConfig | SFTRecipeConfig:
    """Load a recipe with overrides: RL recipes (``kind: grpo``, the default: ``RecipeConfig``, rewards typed by
    ``rewards.REWARDS``, ``trainer:`` checked against TRL's GRPOConfig) or SFT recipes (``kind: sft``:
    ``SFTRecipeConfig``, ``trainer:`` checked against SFTConfig)."""
    from reasoner.train.trainer import validate_sft_args, validate_trainer_args
    from rewards import REWARDS

    validators = {"grpo": validate_trainer_args, "sft": validate_sft_args}
    return load_recipe(recipe, overrides, rewards=REWARDS, trainer_validators=validators)


def train_recipe(
    recipe: str | Path | RecipeConfig | SFTRecipeConfig,
    overrides: Sequence[str] = (),
    *,
    resume: bool | str | None = None,
    rollout: Any = None,
    quiet: bool = False,
) -> Any:
    """Run a recipe end to end; return the trainer (its state holds the step, metrics are on disk)."""

    from reasoner.train.sft import train_sft
    from reasoner.train.trainer import build_trainer, prepare_output_dir
    from reasoner.wiring import wire

    wire()  # a recipe may name an organism alias (dler_overthinker: model.name=overthinker)

    config: RecipeConfig | SFTRecipeConfig
    if isinstance(recipe, RecipeConfig | SFTRecipeConfig):
        config = recipe
    else:
        config = resolved_recipe(recipe, overrides)
    if isinstance(config, SFTRecipeConfig):  # kind: sft -> TRL SFTTrainer on a distilled dataset
        return train_sft(config, resume=resume, quiet=quiet)
    problems = recipe_problems(config.data)
    funcs = build_rewards(config.rewards)
    from reasoner.dist import RolloutPool

    trainer = build_trainer(config, reward_funcs=funcs, problems=problems, rollout=rollout,
                            rollout_pool=RolloutPool, quiet=quiet)  # fmt: skip
    out = prepare_output_dir(trainer.args.output_dir, config, resume)
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

    try:
        config = resolved_recipe(args.recipe, args.overrides)
        if args.print_config:
            write_document(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
            return 0
        if args.nproc > 1:
            return _launch(args, config)
        train_recipe(config, resume=args.resume)
    except ConfigError as err:
        raise CLIError(str(err)) from None
    return 0


def _launch(args: argparse.Namespace, config: Any) -> int:
    """``--nproc N``: rerun this command (without ``--nproc``) in N learner processes, locally or on Ray."""
    import os

    from reasoner.train.collective import RankFailedError
    from reasoner.train.launch import launch_local, launched_rank

    if launched_rank() is not None:
        raise CLIError(f"--nproc {args.nproc}: this process was already started by a launcher (RANK is set)")
    if isinstance(config, RecipeConfig):  # refuse here what every rank would refuse after starting up
        from reasoner.train.collective import check_data_parallel
        from reasoner.train.trainer import check_backend, grpo_defaults

        trainer = {**grpo_defaults(), **config.trainer}
        check_backend(trainer)
        trainer["steps_per_generation"] = (
            trainer["steps_per_generation"] or trainer["gradient_accumulation_steps"]
        )
        check_data_parallel(argparse.Namespace(**trainer), args.nproc)
    argv = ["train", str(args.recipe), *args.overrides]
    if args.resume is not None:
        argv += ["--resume"] if args.resume is True else ["--resume", str(args.resume)]
    if args.verbose:
        argv.insert(0, "--verbose")
    address = getattr(config, "ray", None) and (config.ray.address or os.environ.get("RAY_ADDRESS"))
    try:
        if address:
            from reasoner.dist import run_ranks

            r = config.ray
            run_ranks(args.rank_main, (argv,), nproc=args.nproc, address=address, num_cpus=r.learner_num_cpus,
                      num_gpus=r.learner_num_gpus, placement=r.placement)  # fmt: skip
        else:
            launch_local(args.rank_main, (argv,), nproc=args.nproc)
    except RankFailedError as err:
        raise CLIError(str(err)) from None
    return 0
