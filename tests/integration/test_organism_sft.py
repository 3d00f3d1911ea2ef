"""A tiny overthinking organism trained in seconds: the recipe, data and alias path work end to end.

The real organism (``overthinker``: ~1M parameters, 14,000 traces) is measured by ``bench/organism.py`` and
``bench/organism_lines.py``; here a 2-layer model learns the trace format from a few dozen traces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reasoner.organism.problems import generate_multistep
from reasoner.organism.traces import TraceConfig
from reasoner.prompts import THINK_END, THINK_START
from reasoner.types import SampleSpec

TINY = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, head_dim=32)  # fmt: skip
FORMAT = re.compile(rf"^{THINK_START}\n.+?\n{THINK_END}\n\nThe final answer is \\boxed\{{-?\d+\}}\.$", re.S)


@pytest.fixture(scope="module")
def tiny_organism(tmp_path_factory) -> Path:
    from reasoner.organism.build import build_init, write_sft_data
    from reasoner.train.sft import load_sft_recipe, train_sft

    tmp = tmp_path_factory.mktemp("organism")
    build_init(tmp / "init", **TINY)
    stats = write_sft_data(
        tmp / "data", 96, seed=5, config=TraceConfig(max_rechecks=2, p_flip=0.1)
    )  # fixed data
    assert stats["rows"] == 96 and json.loads((tmp / "data" / "stats.json").read_text()) == stats
    config = load_sft_recipe("sft_overthink", [
        f"model.name={tmp / 'init'}", f"data.path={tmp / 'data'}", f"trainer.output_dir={tmp / 'out'}",
        "trainer.max_steps=200", "trainer.learning_rate=3e-3", "trainer.per_device_train_batch_size=8",
        "trainer.bf16=false", "trainer.warmup_steps=0", "trainer.lr_scheduler_type=constant", "trainer.adam_beta2=0.999",
    ])  # fmt: skip  # a tiny model, 150 steps at a constant 3e-3: Adam's default beta2, not the recipe's 0.95
    trainer = train_sft(config, quiet=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]
    return tmp / "out"


def test_tiny_organism_writes_think_span_then_boxed_answer(tiny_organism):
    from reasoner.engines.hf import HFEngine
    from reasoner.prompts import render

    engine = HFEngine(str(tiny_organism), dtype="float32")
    problems = generate_multistep(6, seed=0, split="test")
    groups = engine.generate([render(engine.tokenizer, p.question) for p in problems],
                             SampleSpec(n=1, max_tokens=300, temperature=0.0))  # fmt: skip
    flat = [c for group in groups for c in group]
    well_formed = [
        c.finish_reason == "stop"
        and FORMAT.match(c.text) is not None
        and 0 < (c.think_end or 0) < c.num_tokens
        for c in flat
    ]
    # A 2-layer model after 200 steps: most greedy outputs are well formed. Which ones stray (a re-check loop, a
    # swapped delimiter) depends on the tokenizer's merges and the data: at data seeds 5-8, 6/6/3/5 of 6 were.
    assert sum(well_formed) >= 5, [c.text for c, ok in zip(flat, well_formed, strict=True) if not ok]


def test_organism_aliases_resolve_through_the_cache(tmp_path, monkeypatch):
    from transformers import AutoConfig, AutoTokenizer

    from reasoner import models

    monkeypatch.setenv("REASONER_CACHE", str(tmp_path))
    path = models.resolve("overthinker-init")
    assert Path(path) == tmp_path / "models" / f"overthinker-init-{models._BUILD_VERSION}"
    config = AutoConfig.from_pretrained(path)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.head_dim) == (
        "llama",
        2,
        192,
        32,
    )
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.convert_tokens_to_ids(THINK_END) != tok.unk_token_id
    assert "overthinker" in models.MODELS


@pytest.mark.parametrize("given_tokens", [False, True])
def test_run_loss_normalization_divides_the_summed_token_loss_by_a_constant(tmp_path, given_tokens):
    """``loss_normalization: run``: a batch's loss is its summed token NLL over the run's mean loss tokens per
    batch (the same constant for every batch), whether or not Trainer passes ``num_items_in_batch``."""
    import statistics

    import torch

    from reasoner.organism.build import build_init, write_sft_data
    from reasoner.train.sft import load_sft_dataset, load_sft_recipe
    from reasoner.train.trainer import build_sft_trainer, loss_tokens

    build_init(tmp_path / "init", **TINY)
    write_sft_data(tmp_path / "data", 24, seed=1)
    config = load_sft_recipe("sft_overthink", [
        f"model.name={tmp_path / 'init'}", f"data.path={tmp_path / 'data'}", f"trainer.output_dir={tmp_path / 'o'}",
        "trainer.per_device_train_batch_size=4", "loss_normalization=run",
    ])  # fmt: skip
    trainer = build_sft_trainer(config, load_sft_dataset(config.data), quiet=True)
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    labels = batch["labels"][:, 1:]
    with torch.no_grad():
        logits = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, :-1]
        summed = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=-100, reduction="sum"
        )
        tokens = (labels != -100).sum()
        loss = trainer.compute_loss(
            trainer.model, dict(batch), num_items_in_batch=tokens if given_tokens else None
        )
    run = statistics.fmean(loss_tokens(r) for r in trainer.train_dataset) * 4
    assert run != pytest.approx(tokens.item())  # batches differ from the mean: the test tells the two apart
    assert loss.item() == pytest.approx(summed.item() / run, rel=1e-4)
