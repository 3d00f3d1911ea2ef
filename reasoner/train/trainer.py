"""The RL trainer: TRL's GRPOTrainer with our hooks (``reasoner.train.hooks.GRPOHooks``), and its set-up.

The ONLY module that imports ``trl`` / ``peft``, always inside functions: ``trainer_class()`` builds the
subclass on first use, so importing this module (or ``reasoner``) stays light. SFT recipes
(``reasoner.train.sft``) get TRL's ``SFTTrainer`` from ``build_sft_trainer``, their ``trainer:`` section checked
against ``SFTConfig`` by ``validate_sft_args``. ``validate_trainer_args``
checks a recipe's ``trainer:`` section against TRL's ``GRPOConfig`` fields; ``build_trainer`` loads the model
(LoRA through PEFT when ``lora.enabled``), the tokenizer, the rollout source and the dataset.

What the hooks add to a TRL step (details in ``reasoner/train/hooks.py``): generation through ``rollout_func``
from a rollout source with weight sync after each optimizer step, pruning substitution, DAPO dynamic sampling
with refill, our advantage normalisation (group | batch (DLER) | none) and D3S selection as a loss mask.
TRL's loss does the rest (``loss_type``, ``epsilon`` / ``epsilon_high`` clip-higher, ``beta``).
Papers: DLER arXiv 2510.15110, D3S arXiv 2509.22115, DAPO arXiv 2503.14476.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
import typing
import warnings
from collections.abc import Callable, Iterable, Sequence, Sized
from pathlib import Path
from typing import Any, Literal

import torch

from reasoner.config import ConfigError, RecipeConfig
from reasoner.sections import LoraConfig
from reasoner.speculation import speculative_or_none
from reasoner.train.hooks import GRPOHooks
from reasoner.train.pipeline import check_async, engine_logprobs_mode
from reasoner.train.rollout import PoolFollower, RolloutSource, make_rollout_source
from reasoner.types import Problem

log = logging.getLogger(__name__)
_OWNED = {
    "use_vllm": "generation goes through our rollout source: set rollout.engine=vllm|hf instead",
    "reward_weights": "set each reward's weight in the rewards: list instead",
    "remove_unused_columns": "the trainer needs the problem_id column; it always sets False",
}


def _quiet_trl() -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions")


def _init_field_types(cls: type) -> dict[str, Any]:
    """A TRL config dataclass's init fields -> type hint (``Any`` where a hint cannot be resolved)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    fields = {}
    for f in dataclasses.fields(cls):
        if f.init:
            hint = hints.get(f.name, f.type)
            fields[f.name] = Any if isinstance(hint, str) else hint
    return fields


@functools.cache
def grpo_field_types() -> dict[str, Any]:
    """TRL ``GRPOConfig`` init fields -> type hint (``Any`` where a hint cannot be resolved)."""
    _quiet_trl()
    from trl import GRPOConfig

    return _init_field_types(GRPOConfig)


@functools.cache
def sft_field_types() -> dict[str, Any]:
    """TRL ``SFTConfig`` init fields -> type hint (``Any`` where a hint cannot be resolved)."""
    _quiet_trl()
    from trl import SFTConfig

    return _init_field_types(SFTConfig)


@functools.cache
def grpo_defaults() -> dict[str, Any]:
    """TRL ``GRPOConfig`` init fields -> default value (fields with a default)."""
    _quiet_trl()
    from trl import GRPOConfig

    return {
        f.name: f.default
        for f in dataclasses.fields(GRPOConfig)
        if f.init and f.default is not dataclasses.MISSING
    }


def check_backend(trainer: dict[str, Any]) -> None:
    """Refuse ``trainer.ddp_backend=nccl`` where no CUDA GPU is visible (NCCL runs on GPUs only)."""
    if trainer.get("ddp_backend") == "nccl" and not torch.cuda.is_available():
        raise ConfigError(
            "trainer.ddp_backend='nccl' needs CUDA GPUs and none is visible; use 'gloo' on CPUs"
        )


def validate_trainer_args(args: dict[str, Any]) -> dict[str, Any]:
    """Check ``trainer:`` keys against GRPOConfig's fields and coerce values to their types."""
    for key, value in args.items():
        if key in _OWNED and not (key in ("use_vllm", "remove_unused_columns") and value is False):
            raise ConfigError(f"trainer.{key}: {_OWNED[key]}")
    return _coerce_args(args, grpo_field_types(), "GRPOConfig")


def validate_sft_args(args: dict[str, Any]) -> dict[str, Any]:
    """Check an SFT recipe's ``trainer:`` keys against TRL SFTConfig's fields and coerce values to their types."""
    return _coerce_args(args, sft_field_types(), "SFTConfig")


def _coerce_args(args: dict[str, Any], fields: dict[str, Any], config_name: str) -> dict[str, Any]:
    from pydantic import TypeAdapter, ValidationError

    out = {}
    for key, value in args.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key 'trainer.{key}': not a TRL {config_name} field{hint}")
        try:
            out[key] = TypeAdapter(fields[key]).validate_python(value)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise ConfigError(f"trainer.{key}: {msg} (got {value!r})") from None
        except Exception:  # a hint pydantic cannot build a validator for: pass the value through
            out[key] = value
    _check_counts(out)
    return out


def _check_counts(args: dict[str, Any]) -> None:
    """Values TRL would silently reinterpret: ``max_steps`` other than -1 (TRL's "train for num_train_epochs")
    below 1 trains for epochs; ``max_completion_length: null`` leaves rollouts without a token cap."""
    steps = args.get("max_steps", -1)
    if steps != -1 and steps < 1:
        raise ConfigError(
            f"trainer.max_steps: must be -1 (train for num_train_epochs) or >= 1 (got {steps!r})"
        )
    if "max_completion_length" in args and (args["max_completion_length"] or 0) < 1:
        raise ConfigError(
            f"trainer.max_completion_length: rollouts need a token cap >= 1 (got {args['max_completion_length']!r})"
        )


def _common_defaults(kwargs: dict[str, Any], name: str) -> dict[str, Any]:
    """Our defaults for TRL configs: output under runs/<name>, a log line every step, no report backends; without
    CUDA fp32 unless ``bf16`` is asked for (then bf16 autocast), and ``use_cpu``: accelerate joins several CPU
    processes (torchrun, ``--nproc``) into one gloo group only with it (without it each trains alone)."""
    kwargs.setdefault("output_dir", str(Path("runs") / name))
    kwargs.setdefault("logging_steps", 1)
    kwargs.setdefault("report_to", "none")
    if not torch.cuda.is_available():
        kwargs.setdefault("bf16", False)
        kwargs.setdefault("use_cpu", True)
    return kwargs


def grpo_config(recipe: RecipeConfig) -> Any:
    """The TRL ``GRPOConfig`` of a recipe: ``trainer:`` plus what the other sections imply."""
    from trl import GRPOConfig

    kwargs = _common_defaults(validate_trainer_args(dict(recipe.trainer)), recipe.name or "reasoner")
    check_backend(kwargs)
    kwargs["remove_unused_columns"] = False
    kwargs["reward_weights"] = [r.weight for r in recipe.rewards]
    args = GRPOConfig(**kwargs)
    check_async(recipe, args)
    k, n = recipe.advantages.d3s.sample_k, args.num_generations
    if recipe.advantages.d3s.enabled and k is not None and n is not None and k > n:
        raise ConfigError(
            f"advantages.d3s.sample_k={k} exceeds trainer.num_generations={args.num_generations}"
        )
    return args


def lora_config(cfg: LoraConfig) -> Any:
    """A PEFT ``LoraConfig`` for the recipe's ``lora`` section (None when disabled)."""
    if not cfg.enabled:
        return None
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )  # fmt: skip


@functools.cache
def trainer_class() -> type:
    """``ReasonerGRPOTrainer``: our mixin over TRL's GRPOTrainer (imports trl on first call)."""
    _quiet_trl()
    from trl import GRPOTrainer

    return type("ReasonerGRPOTrainer", (GRPOHooks, GRPOTrainer), {"__doc__": GRPOHooks.__doc__})


def unique_names(names: Sequence[str]) -> list[str]:
    """Reward names made unique (``accuracy``, ``accuracy_2``) so TRL's per-reward metrics do not collide."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def build_trainer(
    recipe: RecipeConfig,
    *,
    reward_funcs: Sequence[Callable[..., list[float | None]]],
    problems: Sequence[Problem],
    rollout: RolloutSource | None = None,
    rollout_pool: Callable[..., RolloutSource] | None = None,
    callbacks: Sequence[Any] = (),
    quiet: bool = False,
) -> Any:
    """A ready ``ReasonerGRPOTrainer`` for ``recipe``: model, tokenizer, LoRA, dataset, rollout source.

    ``rollout``: a ready source (default: built from ``recipe.rollout``); ``rollout_pool``: the pool class for
    ``rollout.workers > 0`` (``reasoner.dist.RolloutPool``, passed in by ``reasoner.train.cli.train_recipe``)."""
    _quiet_trl()
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasoner.models import resolve
    from reasoner.train.metrics import MetricsLogger

    if len(reward_funcs) != len(recipe.rewards):
        raise ValueError(
            f"{len(reward_funcs)} reward functions for {len(recipe.rewards)} rewards in the recipe"
        )
    args = grpo_config(recipe)
    path = resolve(recipe.model.name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, recipe.model.dtype))
    if rollout is None:
        r = recipe.rollout
        if r.workers > 0 and args.process_index > 0:  # rank 0 drives the Ray pool and shares the rollouts
            rollout = PoolFollower(tokenizer)
        else:
            pool = (
                recipe.ray.model_dump(exclude={"learner_num_cpus", "learner_num_gpus"})
                if r.workers > 0
                else {}
            )
            if pool:  # the pipeline's own lag (rollout.async_steps) counts against ray.max_lag
                pool["max_lag"] -= r.async_steps
            rollout = make_rollout_source(r.engine, path, dtype=recipe.model.dtype, seed=r.seed,
                                          workers=r.workers, max_model_len=r.max_model_len, pool=rollout_pool,
                                          speculative=speculative_or_none(r.speculative),
                                          logprobs_mode=engine_logprobs_mode(recipe), **pool)  # fmt: skip
    rows = [{"prompt": p.question, "problem_id": p.id, "answer": p.answer} for p in problems]
    metrics = MetricsLogger(Path(args.output_dir) / "metrics.jsonl", quiet=quiet)
    trainer = trainer_class()(
        model=model, reward_funcs=list(reward_funcs), args=args, train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer, peft_config=lora_config(recipe.lora), callbacks=[metrics, *callbacks],
        recipe=recipe, problems=problems, rollout=rollout,
        reward_names=unique_names([r.name for r in recipe.rewards]),
    )  # fmt: skip
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for noisy in (
        ProgressCallback,
        PrinterCallback,
    ):  # they print every log dict; MetricsLogger prints a line
        trainer.remove_callback(noisy)
    return trainer


# ---------------------------------------------------------------- SFT (reasoner.train.sft recipes)


def sft_config(recipe: Any) -> Any:
    """The TRL ``SFTConfig`` of an SFT recipe (``reasoner.train.sft.SFTRecipeConfig``): ``trainer:`` plus
    our defaults (output under runs/<name>, log every step, no report backends, fp32 on CPU)."""
    _quiet_trl()
    from trl import SFTConfig

    kwargs = _common_defaults(validate_sft_args(dict(recipe.trainer)), recipe.name or "sft")
    return SFTConfig(**kwargs)


def build_sft_trainer(
    recipe: Any, dataset: Any, *, callbacks: Sequence[Any] = (), quiet: bool | Literal["bar"] = False
) -> Any:
    """A ready TRL ``SFTTrainer`` for an SFT recipe: model, tokenizer (pad = eos when unset), LoRA, dataset.

    Metrics go to ``<output_dir>/metrics.jsonl`` (one JSON line per logging step) as for RL recipes. On the
    console: a progress bar and each logged dict (``quiet=False``), the bar only (``"bar"``), nothing (True).
    """
    _quiet_trl()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    from reasoner.models import resolve
    from reasoner.train.metrics import MetricsLogger

    args = sft_config(recipe)
    path = resolve(recipe.model.name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, recipe.model.dtype))
    metrics = MetricsLogger(Path(args.output_dir) / "metrics.jsonl", quiet=True)
    trainer_cls = SFTTrainer if recipe.loss_normalization == "batch" else _run_normalized_sft_trainer()
    trainer = trainer_cls(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=lora_config(recipe.lora), callbacks=[metrics, *callbacks],
    )  # fmt: skip
    if quiet:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        for noisy in (ProgressCallback, PrinterCallback):
            trainer.remove_callback(noisy)
        if quiet == "bar":
            trainer.add_callback(_bar_only_callback())
    return trainer


def _bar_only_callback() -> Any:
    """transformers' ``ProgressCallback`` without the dict it writes at every logging step."""
    from transformers.trainer_callback import ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            return None

    return BarOnly()


def loss_tokens(row: dict[str, Any]) -> int:
    """Tokens of a tokenized SFT row that carry loss (its completion, or all of it without a completion mask),
    less the first, which has no prediction."""
    mask = row.get("completion_mask") or row.get("assistant_masks")
    return max((sum(mask) if mask is not None else len(row["input_ids"])) - 1, 1)


@functools.cache
def _run_normalized_sft_trainer() -> type:
    """``SFTTrainer`` whose loss is the batch's summed token loss over a constant: the mean loss tokens per
    batch of the run (``loss_normalization: run`` of SFT recipes)."""
    from trl import SFTTrainer

    class RunNormalizedSFTTrainer(SFTTrainer):
        # compute_loss divides by the accumulation steps itself. (TRL's _BaseTrainer declares the flag as a bare
        # ``= None``, which mypy reads as type None; its own GRPOTrainer sets True the same way.)
        loss_is_scaled_for_ga = True  # type: ignore[assignment]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            rows = self.train_dataset  # tokenized by SFTTrainer: a datasets.Dataset of dicts
            if not isinstance(rows, Sized) or not isinstance(rows, Iterable):
                raise TypeError(
                    f"loss_normalization: run needs a map-style train dataset, got {type(rows).__name__}"
                )
            self._run_tokens = sum(map(loss_tokens, rows)) / len(rows) * self.args.per_device_train_batch_size

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not model.training:
                return result
            # TRL's loss is this micro-batch's summed token loss over num_items_in_batch (the step's loss tokens,
            # times the processes when averaged across devices) or, without it, over its own loss tokens.
            loss = result[0] if return_outputs else result
            if num_items_in_batch is None:
                summed = loss * (inputs["labels"][:, 1:] != -100).sum()
            else:
                processes = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
                summed = loss * num_items_in_batch / processes
            loss = summed / (self._run_tokens * self.args.gradient_accumulation_steps)
            return (loss, result[1]) if return_outputs else loss

    return RunNormalizedSFTTrainer


def prepare_output_dir(output_dir: str, config: Any, resume: bool | str | None) -> Path:
    """Create ``output_dir``, save the resolved recipe there (``recipe.yaml``); with ``--resume`` check that
    a checkpoint exists."""
    import yaml

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        if get_last_checkpoint(str(out)) is None:
            raise ConfigError(f"--resume: no checkpoint-* directory in {str(out)!r}")
    return out
