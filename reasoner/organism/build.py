"""Build the overthinking organism: tokenizer, from-scratch Llama, SFT data, and TRL SFT on it.

Two model aliases come from here (``reasoner.models.MODELS``):
- ``overthinker-init``: a randomly initialised Llama (2 layers, hidden 192, 6 heads of 32, ~1M parameters)
  with a byte-level BPE tokenizer trained on multistep problems and traces (ChatML chat template, ``<think>``
  tags). Every integer below ``NUMBER_TOKENS`` is one token and its embedding starts from Fourier features of
  its value (``fourier_numbers``). Built in about a second.
- ``overthinker``: ``overthinker-init`` after ``recipes/sft_overthink.yaml`` (TRL ``SFTTrainer``, fp32) on
  ``DEFAULT_TRACES`` written traces (``reasoner.organism.traces``). Built once on first use, then loaded from
  the cache like any alias. ``reasoner organism build --out DIR`` builds a variant (seed, levels, re-check
  knobs, trace count, recipe overrides) the same way.

What made it learn fast on a 2-core CPU (``bench/organism_lines.py`` checks each solution line of greedy
decodes; README "Build time" has the runs): numbers as single tokens with Fourier-started embeddings (one
lookup per fact), 6 heads of 32 rather than 3 of 64, steps labelled A-E in the question and in the trace (a
line finds its operation by its label), a fact space of ~370 (operands 2-5, values up to 40), batches of 8
(more updates for the same tokens), re-checks that write the whole chain again line for line (copying what is
already written, which a 2-layer model does reliably, instead of redoing a chain from a middle step), and the
recipe's ``loss_normalization: run`` (TRL's per-batch token mean over length-grouped batches had taught it half
the re-checks of its data). fp32: bf16 autocast ran ~35x slower on a CPU without AVX512-BF16. A
from-scratch model has no prior habits: what it does is what the traces teach, which is the point of a model
organism.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from reasoner.organism.problems import LEVELS, generate_multistep, steps_of
from reasoner.organism.traces import TraceConfig, minimal_trace, write_trace
from reasoner.prompts import ANSWER_INSTRUCTION, user_message

log = logging.getLogger(__name__)

RECIPE = "sft_overthink"
"""The SFT recipe that trains the organism (``recipes/sft_overthink.yaml``)."""
DEFAULT_TRACES = 14_000
"""Training traces for the ``overthinker`` alias."""
DATA_SEED = 0
"""Seed of the training problems and traces for the alias (problems from the ``train`` split)."""
ORGANISM_ARCH = "llama"
"""Model family of ``overthinker-init``. Llama, not Qwen2: transformers 5 loads a saved ``qwen2`` tokenizer as
``Qwen2Tokenizer``, which rebuilds its own pre-tokenizer (digits one by one) and drops the organism's."""
ORGANISM_SIZES: dict[str, Any] = dict(
    hidden_size=192,
    intermediate_size=384,
    num_hidden_layers=2,
    num_attention_heads=6,
    num_key_value_heads=6,
    head_dim=32,  # vLLM's CPU attention needs head_dim in {32, 64, 80, ...}
    max_position_embeddings=4096,  # what the engines ask for by default (RoPE: no parameters)
    initializer_range=0.02,
)
"""Config fields of ``overthinker-init``."""
VOCAB_SIZE = 560
NUMBER_TOKENS = 100
"""Integers below this are single tokens (with and without a leading space). Values stay <= 40 (+3 for a false
correction); a wrong value carried through a multiplication can pass 100 and then takes two tokens."""
FOURIER_DIMS = 64
"""Embedding dims of a number token ``n`` that start as ``cos, sin(2 pi k n / NUMBER_TOKENS)``, k = 1..32."""
FOURIER_SCALE = 1.0
"""Amplitude of those features in units of ``initializer_range``."""


TOKENIZER_TRACES = TraceConfig(max_rechecks=3, p_flip=0.115)
"""How the tokenizer corpus's traces are written: fixed here, so that changing ``TraceConfig``'s defaults does not
change the tokenizer (it did once: the v5 default, p_flip 0.115, is what this pins)."""


def _tokenizer_corpus() -> list[str]:
    problems = generate_multistep(800, seed=12345, split="tokenizer")
    rng = random.Random(0)
    traces = [write_trace(steps_of(p), rng, TOKENIZER_TRACES).text for p in problems]
    return [p.question for p in problems] + traces + ["user\nassistant\n"] * 100


def build_tokenizer() -> Any:
    """The organism's tokenizer (deterministic): BPE over multistep prompts, traces and the chat roles; every
    integer below ``NUMBER_TOKENS`` is one token, and the answer instruction every prompt ends with is one
    (added) token, so the ~180-token rows spend no compute on a constant sentence."""
    from transformers import AddedToken

    from reasoner.models import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(VOCAB_SIZE, _tokenizer_corpus(), numbers=NUMBER_TOKENS)
    tokenizer.add_tokens([AddedToken(ANSWER_INSTRUCTION, special=False, normalized=False)])
    return tokenizer


def fourier_numbers(
    model: Any, tokenizer: Any, dims: int = FOURIER_DIMS, scale: float = FOURIER_SCALE
) -> None:
    """Start the embeddings of number tokens ``n`` and `` n`` (n < ``NUMBER_TOKENS``) with Fourier features of
    the value in their first ``dims`` dimensions: ``E[n, :dims] = std * scale * [cos(2 pi k n / N), sin(2 pi k n /
    N)]``, k = 1..dims/2 (the features a transformer learns for modular addition; Nanda et al. 2023,
    arXiv 2301.05217). Neighbouring values start related, so one fact helps learn the next."""
    import torch

    n = torch.arange(NUMBER_TOKENS, dtype=torch.float64)[:, None]
    angle = 2 * torch.pi * torch.arange(1, dims // 2 + 1, dtype=torch.float64)[None, :] * n / NUMBER_TOKENS
    features = model.config.initializer_range * scale * torch.cat([angle.cos(), angle.sin()], dim=1)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for value in range(NUMBER_TOKENS):
            for text in (str(value), f" {value}"):
                (token,) = tokenizer.encode(text, add_special_tokens=False)
                weight[token, :dims] = features[value].to(weight.dtype)


def build_init(out_dir: Path, seed: int = 0, *, fourier_scale: float = FOURIER_SCALE, **sizes: Any) -> Path:
    """``overthinker-init``: a random-weight ``ORGANISM_ARCH`` model of ``ORGANISM_SIZES`` (overridable) into
    ``out_dir``, number embeddings started by ``fourier_numbers`` (``fourier_scale`` 0: plain random)."""
    from transformers import AutoModelForCausalLM

    from reasoner.models import build_tiny_model

    tokenizer = build_tokenizer()
    build_tiny_model(ORGANISM_ARCH, out_dir, seed, tokenizer=tokenizer, **(ORGANISM_SIZES | sizes))
    if fourier_scale:
        model = AutoModelForCausalLM.from_pretrained(out_dir)
        fourier_numbers(model, tokenizer, scale=fourier_scale)
        model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def sft_rows(
    n: int, seed: int = DATA_SEED, levels: Sequence[int] = LEVELS, config: TraceConfig | None = None
) -> list[dict[str, Any]]:
    """``n`` SFT rows in TRL's conversational prompt-completion format, plus trace statistics columns."""
    config = config or TraceConfig()
    rng = random.Random(seed)
    rows = []
    for p in generate_multistep(n, seed=seed, levels=levels, split="train"):
        steps = steps_of(p)
        trace = write_trace(steps, rng, config)
        rows.append({
            "prompt": [{"role": "user", "content": user_message(p.question)}],
            "completion": [{"role": "assistant", "content": trace.text}],
            "id": p.id, "level": p.meta["level"], "gold": p.answer, "answer": str(trace.answer),
            "rechecks": trace.rechecks, "flipped": trace.flipped, "minimal": minimal_trace(steps),
        })  # fmt: skip
    return rows


def write_sft_data(
    out: str | Path, n: int, seed: int = DATA_SEED, levels: Sequence[int] = LEVELS,
    config: TraceConfig | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Save ``n`` rows as a ``datasets`` directory (what ``data.path`` of an SFT recipe reads) with a
    ``stats.json``; return the stats (rows, mean re-checks, flip rate = share of wrong traces)."""
    import datasets

    config = config or TraceConfig()
    rows = sft_rows(n, seed, levels, config)
    out = Path(out)
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    stats = {
        "rows": len(rows),
        "seed": seed,
        "levels": list(levels),
        "trace_config": vars(config),
        "mean_rechecks": statistics.fmean(r["rechecks"] for r in rows) if rows else 0.0,
        "flip_rate": statistics.fmean(r["flipped"] for r in rows) if rows else 0.0,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def train_organism(
    out_dir: str | Path, *, traces: int = DEFAULT_TRACES, seed: int = DATA_SEED, levels: Sequence[int] = LEVELS,
    config: TraceConfig | None = None, overrides: Sequence[str] = (), quiet: bool | Literal["bar"] = True,
    sizes: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Build the organism from nothing into ``out_dir``: ``overthinker-init`` (tokenizer and random weights, in a
    temporary directory: the alias cache is not used), ``traces`` SFT rows (``seed``, ``levels``, ``config``),
    ``recipes/sft_overthink.yaml`` (plus ``overrides``) on them; the model is saved to ``out_dir``."""
    from reasoner.train.sft import load_sft_recipe, train_sft
    from reasoner.train.trainer import validate_sft_args

    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="overthink-build-") as tmp:
        init, data_dir = build_init(Path(tmp) / "init", **(sizes or {})), Path(tmp) / "data"
        stats = write_sft_data(data_dir, traces, seed, levels, config)
        recipe = load_sft_recipe(
            RECIPE,
            [f"model.name={init}", f"data.path={data_dir}", f"trainer.output_dir={out}", *overrides],
            trainer_validator=validate_sft_args,
        )
        log.info("training the overthinking organism on %d traces (%s)", traces, stats)
        train_sft(recipe, quiet=quiet)
    (out / "organism.json").write_text(json.dumps({"traces": stats, "recipe": RECIPE, "sizes": ORGANISM_SIZES | (sizes or {}),
                                                   "overrides": list(overrides)}, indent=2))  # fmt: skip
    return out


def build_overthinker(out_dir: Path) -> Path:
    """The ``overthinker`` alias builder (``reasoner.models.MODELS``)."""
    return train_organism(out_dir, quiet="bar")


ALIAS = "overthinker"
"""The alias whose builder is ``build_overthinker`` (``reasoner.models.MODELS``, wired by ``reasoner.wiring``)."""


def variant_key(seed: int = DATA_SEED, p_flip: float | None = None, levels: Sequence[int] = LEVELS) -> str:
    """Cache directory name of an organism variant: the ``overthinker`` alias's own key
    (``models.cache_key``) for the default data seed, re-check error rate (``TraceConfig().p_flip``) and levels,
    else that key with ``-seed<S>-pflip<P>-levels<L>`` appended. ``p_flip`` None: the default."""
    from reasoner.models import cache_key

    config = TraceConfig() if p_flip is None else TraceConfig(p_flip=p_flip)
    levels = tuple(levels)
    base = cache_key(ALIAS)
    if (seed, config, levels) == (DATA_SEED, TraceConfig(), tuple(LEVELS)):
        return base
    return f"{base}-seed{seed}-pflip{config.p_flip:g}-levels{''.join(map(str, levels))}"


def build_variant(seed: int = DATA_SEED, p_flip: float | None = None, levels: Sequence[int] = LEVELS) -> Path:
    """The organism variant trained on data seed ``seed`` (problems and traces), re-check error rate ``p_flip``
    and ``levels``, everything else as ``build_overthinker``; built once (~5 min) into the model cache under
    ``variant_key`` and loaded from there afterwards. The defaults are the ``overthinker`` alias itself (same
    cache directory, same build)."""
    from reasoner.models import build_cached

    config = TraceConfig() if p_flip is None else TraceConfig(p_flip=p_flip)

    def builder(out: Path) -> Path:
        return train_organism(out, seed=seed, levels=tuple(levels), config=config, quiet="bar")

    return build_cached(variant_key(seed, p_flip, levels), builder)
