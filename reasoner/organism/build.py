"""Build the overthinking organism: tokenizer, from-scratch Qwen2, SFT data, and TRL SFT on it.

Two model aliases come from here (``reasoner.models.MODELS``):
- ``overthinker-init``: a randomly initialised Qwen2 (4 layers, hidden 256, head_dim 64, ~4M parameters)
  with a byte-level BPE tokenizer trained on multistep problems and traces (digits are single tokens, ChatML
  chat template, ``<think>`` tags). Built in about a second.
- ``overthinker``: ``overthinker-init`` after ``recipes/sft_overthink.yaml`` (TRL ``SFTTrainer``, fp32) on
  ``DEFAULT_TRACES`` written traces (``reasoner.organism.traces``). Built once on first use, then loaded from
  the cache like any alias. ``reasoner organism build --out DIR`` builds a variant (seed, levels, re-check
  knobs, trace count, recipe overrides) the same way.

On a 2-core AVX2 CPU (no AVX512-BF16) the SFT step is fp32: bf16 autocast measured ~95 s per 32-row step
against 2.7 s in fp32 at this size (~2.8k tokens/s), so the 40,000-trace build is about an hour there; the
data (~1 s per 10k traces), the tokenizer (~2 s), TRL's tokenization (~1k rows/s) and the save (<1 s) are
not where the time goes. ``bench/organism.py`` (docstring) has the smaller, faster configurations tried.
A from-scratch model has no prior habits: what it does is what the traces teach, which is the point of a
model organism.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasoner.organism.problems import LEVELS, generate_multistep, steps_of
from reasoner.organism.traces import TraceConfig, minimal_trace, write_trace
from reasoner.prompts import user_message

log = logging.getLogger(__name__)

RECIPE = "sft_overthink"
"""The SFT recipe that trains the organism (``recipes/sft_overthink.yaml``)."""
DEFAULT_TRACES = 40_000
"""Training traces for the ``overthinker`` alias."""
DATA_SEED = 0
"""Seed of the training problems and traces for the alias (problems from the ``train`` split)."""
ORGANISM_SIZES: dict[str, Any] = dict(
    hidden_size=256,
    intermediate_size=1024,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=64,  # vLLM's CPU attention needs head_dim in {32, 64, 80, ...}
    max_position_embeddings=4096,  # what the engines ask for by default (RoPE: no parameters)
    initializer_range=0.02,
)
"""Qwen2 config fields of ``overthinker-init``."""
VOCAB_SIZE = 384


def _tokenizer_corpus() -> list[str]:
    problems = generate_multistep(800, seed=12345, split="tokenizer")
    rng = random.Random(0)
    return [user_message(p.question) for p in problems] + [
        write_trace(steps_of(p), rng).text for p in problems
    ]


def build_tokenizer() -> Any:
    """The organism's tokenizer (deterministic): BPE over multistep prompts and traces, digits split."""
    from reasoner.models import build_tiny_tokenizer

    return build_tiny_tokenizer(VOCAB_SIZE, _tokenizer_corpus(), split_digits=True)


def build_init(out_dir: Path, seed: int = 0, **sizes: Any) -> Path:
    """``overthinker-init``: a random-weight Qwen2 of ``ORGANISM_SIZES`` (overridable) into ``out_dir``."""
    from reasoner.models import build_tiny_model

    return build_tiny_model("qwen2", out_dir, seed, tokenizer=build_tokenizer(), **(ORGANISM_SIZES | sizes))


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
    config: TraceConfig | None = None, overrides: Sequence[str] = (), quiet: bool = True,
) -> Path:  # fmt: skip
    """Build the organism from nothing into ``out_dir``: ``overthinker-init`` (tokenizer and random weights, in a
    temporary directory: the alias cache is not used), ``traces`` SFT rows (``seed``, ``levels``, ``config``),
    ``recipes/sft_overthink.yaml`` (plus ``overrides``) on them; the model is saved to ``out_dir``."""
    from reasoner.train.sft import load_sft_recipe, train_sft
    from reasoner.train.trainer import validate_sft_args

    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="overthink-build-") as tmp:
        init, data_dir = build_init(Path(tmp) / "init"), Path(tmp) / "data"
        stats = write_sft_data(data_dir, traces, seed, levels, config)
        recipe = load_sft_recipe(
            RECIPE,
            [f"model.name={init}", f"data.path={data_dir}", f"trainer.output_dir={out}", *overrides],
            trainer_validator=validate_sft_args,
        )
        log.info("training the overthinking organism on %d traces (%s)", traces, stats)
        train_sft(recipe, quiet=quiet)
    (out / "organism.json").write_text(json.dumps({"traces": stats, "recipe": RECIPE, "sizes": ORGANISM_SIZES,
                                                   "overrides": list(overrides)}, indent=2))  # fmt: skip
    return out


def build_overthinker(out_dir: Path) -> Path:
    """The ``overthinker`` alias builder (``reasoner.models.MODELS``)."""
    return train_organism(out_dir, quiet=False)
