"""Merging, distillation and SFT end to end on real tiny models (and, marked slow, on smollm2-135m).

- ``reasoner merge`` on two tiny-random-qwen2 models built in code: keep=0 / keep=1 reproduce the base / tuned
  weights and greedy outputs exactly, keep=0.3 writes exactly the top-|delta| entries, the directory loads in
  the transformers engine (and in vLLM, marked ``vllm``); bad input exits 2 with one line naming the field.
- ``reasoner distill shortest-correct|dap`` on the tiny model through the CLI (files, stats, resume).
- ``reasoner train sft_short``: 2 SFT steps on the tiny model, unknown keys rejected naming them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reasoner.types import SampleSpec

GREEDY = SampleSpec(n=1, max_tokens=12, temperature=0.0)
QUESTIONS = ["What is 2 + 3?", "What is 12 + 7? Think step by step."]


@pytest.fixture(scope="module")
def tuned_model(tmp_path_factory) -> str:
    """A second tiny-random-qwen2 (other seed): same names and shapes, every weight different."""
    from reasoner.models import build_tiny_model

    return str(build_tiny_model("qwen2", tmp_path_factory.mktemp("tuned"), seed=1))


def _params(path: str) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return {k: v.detach() for k, v in model.named_parameters()}


def _greedy_ids(path: str) -> list[tuple[int, ...]]:
    from reasoner.engines.hf import HFEngine
    from reasoner.prompts import render

    engine = HFEngine(path, dtype="float32")
    prompts = [render(engine.tokenizer, q) for q in QUESTIONS]
    return [g[0].token_ids for g in engine.generate(prompts, GREEDY)]


def _main(args: list[str]) -> int:
    from reasoner.cli import main

    try:
        return main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize("scope", ["tensor", "global"])
def test_merge_keep_zero_and_one_reproduce_base_and_tuned(tiny_model, tuned_model, tmp_path, scope):
    for keep, reference in [(0.0, tiny_model), (1.0, tuned_model)]:
        out = tmp_path / f"keep{keep}"
        assert _main(["merge", "--base", tiny_model, "--tuned", tuned_model, "--keep", str(keep),
                      "--scope", scope, "--out", str(out)]) == 0  # fmt: skip
        merged, ref = _params(str(out)), _params(reference)
        assert merged.keys() == ref.keys()
        assert all(torch.equal(merged[k], ref[k]) for k in ref), f"keep={keep} differs from {reference}"
        assert _greedy_ids(str(out)) == _greedy_ids(reference)


def test_merge_writes_exactly_the_top_delta_entries_and_decodes(tiny_model, tuned_model, tmp_path):
    from reasoner.train.merge import keep_count, merge_models

    out = tmp_path / "merged"
    report = merge_models(tiny_model, tuned_model, out, keep=0.3, scope="tensor")
    base, tuned, merged = _params(tiny_model), _params(tuned_model), _params(str(out))
    applied = 0
    for name, b in base.items():
        delta = (tuned[name] - b).reshape(-1)
        k = keep_count(delta.numel(), 0.3)
        order = sorted(range(delta.numel()), key=lambda i: (-abs(delta[i].item()), i))
        expected = b.reshape(-1).clone()
        expected[order[:k]] = tuned[name].reshape(-1)[order[:k]]
        assert torch.equal(merged[name].reshape(-1), expected), name
        applied += k
    assert report.kept == applied and report.total == sum(b.numel() for b in base.values())
    assert 0 < report.update_energy < 1
    ids = _greedy_ids(str(out))
    assert len(ids) == 2 and all(0 < len(x) <= GREEDY.max_tokens for x in ids)
    assert (out / "tokenizer.json").exists() and (out / "generation_config.json").exists()


@pytest.mark.vllm
def test_merged_dir_loads_in_vllm_with_the_same_greedy_output(tiny_model, tuned_model, tmp_path):
    from reasoner.engines import vllm_available

    ok, why = vllm_available()
    if not ok:
        pytest.skip(why)
    from reasoner.train.merge import merge_models

    out = tmp_path / "merged"
    merge_models(tiny_model, tuned_model, out, keep=0.5, scope="global")
    # In a fresh process: closing a second in-process vLLM engine tears down vLLM's global parallel state,
    # which would break the session-wide vLLM engine other test modules share.
    script = f"""
import json
from reasoner.engines.vllm import VLLMEngine
from reasoner.prompts import render
from reasoner.types import SampleSpec
engine = VLLMEngine({str(out)!r}, dtype="float32", max_model_len=512)
prompts = [render(engine.tokenizer, q) for q in {QUESTIONS!r}]
spec = SampleSpec(n=1, max_tokens={GREEDY.max_tokens}, temperature=0.0)
print("IDS=" + json.dumps([list(g[0].token_ids) for g in engine.generate(prompts, spec)]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("IDS="))
    vllm_ids = [tuple(x) for x in json.loads(line[4:])]
    assert vllm_ids == [tuple(x) for x in _greedy_ids(str(out))]


def test_merge_alpha_interpolates(tiny_model, tuned_model, tmp_path):
    out = tmp_path / "lerp"
    assert (
        _main(["merge", "--base", tiny_model, "--tuned", tuned_model, "--alpha", "0.25", "--out", str(out)])
        == 0
    )
    base, tuned, merged = _params(tiny_model), _params(tuned_model), _params(str(out))
    for name in base:
        assert torch.allclose(merged[name], base[name] + 0.25 * (tuned[name] - base[name]), atol=1e-6), name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "1.5"], "--keep must be in [0, 1], got 1.5"),
        (["--keep", "abc"], "--keep must be a number in [0, 1], got 'abc'"),
        (["--alpha", "-0.1"], "--alpha must be in [0, 1], got -0.1"),
        (["--keep", "0.1", "--tuned", "{tmp}/no-such-dir"], "--tuned: unknown model"),
        (
            ["--keep", "0.1", "--tuned", "tiny-random-llama"],
            "'model.layers.0.self_attn.k_proj.bias' is in the base",
        ),
        (["--alpha", "0.5", "--scope", "global"], "--scope applies to --keep only"),
        (["--keep", "0.1", "--out", "{tmp}"], "exists and is not an empty directory"),
    ],
)
def test_merge_bad_input_is_one_clear_line(tuned_model, tmp_path, capsys, args, message):
    (tmp_path / "occupied").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = ["merge", "--base", "tiny-random-qwen2", "--tuned", tuned_model, "--out", str(tmp_path / "out")]
    assert _main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---------------------------------------------------------------- distill CLI on the tiny model


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_distill_shortest_correct_cli_end_to_end_and_resume(tmp_path, capsys):
    import datasets

    data = _jsonl(tmp_path / "p.jsonl", [{"id": f"p{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)}
                                         for i in range(3)])  # fmt: skip
    out = tmp_path / "short"
    args = ["distill", "shortest-correct", "--model", "tiny-random-qwen2", "--engine", "hf", "--data", str(data),
            "-n", "2", "--max-tokens", "8", "--batch-size", "2", "--out", str(out)]  # fmt: skip
    assert _main(args) == 0
    printed = capsys.readouterr().out
    assert "problems" in printed and "mean tokens all" in printed
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["problems"], stats["samples"]) == (3, 6)
    assert stats["kept"] + stats["skipped_no_correct"] == 3 and stats["mean_tokens_all"] <= 8
    records = (out / "records.jsonl").read_text().splitlines()
    assert len(records) == 3 and all(len(json.loads(r)["sample_tokens"]) == 2 for r in records)
    if stats["kept"]:  # a random model is rarely right; when it is, the dataset holds those rows
        assert len(datasets.load_from_disk(str(out))) == stats["kept"]
    assert _main(args) == 0  # resume: nothing left to do, same records
    assert (out / "records.jsonl").read_text().splitlines() == records
    assert _main([*args[:-2], "-n", "3", "--out", str(out)]) == 2
    assert "n=2, this one has n=3" in capsys.readouterr().err


def test_distill_dap_cli_end_to_end(tmp_path, capsys):
    import datasets

    rows = [{"id": "a", "question": "What is 2 + 3?", "answer": "5", "trace": "two plus three is five " * 6},
            {"id": "b", "question": "What is 4 + 4?", "answer": "8", "trace": "four and four make eight " * 6},
            {"id": "c", "question": "What is 1 + 6?", "answer": "7"}]  # fmt: skip
    data = _jsonl(tmp_path / "long.jsonl", rows)
    out = tmp_path / "dap"
    assert _main(["distill", "dap", "--teacher", "tiny-random-qwen2", "--engine", "hf", "--data", str(data),
                  "--budgets", "easy=4,medium=8,hard=12", "--trace-max-tokens", "10", "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "tok before" in printed and "easy" in printed and "unrated" in printed
    stats = json.loads((out / "stats.json").read_text())
    assert list(stats["levels"]) == ["easy", "medium", "hard"] and stats["budgets"]["hard"] == 12
    assert stats["overall"]["problems"] == 3 and stats["traces_generated"] == 1
    assert sum(lv["problems"] for lv in stats["levels"].values()) == 3
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    tokenizer_len = {r["id"]: r["tokens_before"] for r in records}
    assert tokenizer_len["c"] <= 10 and tokenizer_len["a"] > 12
    for r in records:
        assert r["outcome"] in ("rewritten", "kept_incorrect", "kept_truncated", "kept_longer")
        assert r["tokens_rewrite"] <= -(-3 * r["budget"] // 2)  # the cap: ceil(1.5 * budget)
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == 3 and {"prompt", "completion", "level", "tokens_before", "tokens_after"} <= set(
        ds.column_names
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dap", "--teacher", "tiny-random-qwen2", "--data", "{tmp}/none.jsonl"], "none.jsonl' does not exist"),
        (["dap", "--teacher", "tiny-random-qwen2", "--data", "{tmp}/p.jsonl", "--budgets", "easy"], "--budgets"),
        (["dap", "--teacher", "tiny-random-qwen2", "--data", "{tmp}/p.jsonl", "--fallback-level", "x"],
         "--fallback-level: 'x' is not a level"),
        (["shortest-correct", "--model", "tiny-random-qwen2", "--data", "{tmp}/p.jsonl", "-n", "0"], "-n must be >= 1"),
        (["shortest-correct", "--model", "tiny-random-qwen2", "--benchmark", "arith", "--data", "{tmp}/p.jsonl"],
         "not allowed with argument"),
        (["shortest-correct", "--model", "tiny-random-qwen2", "--benchmark", "nope"], "unknown benchmark 'nope'"),
    ],
)  # fmt: skip
def test_distill_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    _jsonl(tmp_path / "p.jsonl", [{"question": "q", "answer": "1"}])
    args = ["distill", *[a.replace("{tmp}", str(tmp_path)) for a in args], "--out", str(tmp_path / "o")]
    assert _main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---------------------------------------------------------------- SFT recipe


def test_sft_recipe_trains_two_steps_on_tiny_model(tmp_path):
    from reasoner.distill import sft_row, write_dataset
    from reasoner.train.cli import train_recipe

    rows = [sft_row(f"What is {i} + {i}?", f"so \\boxed{{{2 * i}}}") | {"id": str(i)} for i in range(6)]
    write_dataset(tmp_path / "ds", rows, {"method": "test"})
    out = tmp_path / "sft"
    overrides = ["model.name=tiny-random-qwen2", f"data.path={tmp_path / 'ds'}", "trainer.max_steps=2",
                 f"trainer.output_dir={out}", "trainer.per_device_train_batch_size=2", "trainer.max_length=64"]  # fmt: skip
    trainer = train_recipe("sft_short", overrides, quiet=True)
    assert trainer.state.global_step == 2
    row = trainer.train_dataset[0]  # loss on the completion only: the prompt's labels are masked (-100)
    first = next(i for i, label in enumerate(row["labels"]) if label != -100)
    assert first > 0 and row["labels"][first:] == row["input_ids"][first:]
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "loss" in r] == [1, 2]
    assert (out / "model.safetensors").exists() and (out / "recipe.yaml").exists()


@pytest.mark.parametrize(
    ("override", "named"),
    [("trainer.learning_rte=1e-6", "trainer.learning_rte"), ("data.pth=x", "data.pth"),
     ("rollout.engine=hf", "unknown key 'rollout'"), ("trainer.num_generations=4", "trainer.num_generations"),
     ("data.path=/no/such/dir", "data.path: '/no/such/dir' is not a directory")],
)  # fmt: skip
def test_sft_recipe_rejects_unknown_keys_naming_them(capsys, override, named):
    assert _main(["train", "sft_short", override]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


# ---------------------------------------------------------------- smollm2-135m (slow): the acceptance runs


def _cli(args: list[str], timeout: int = 1800) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "reasoner.cli", *args], capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "COLUMNS": "160"})  # fmt: skip
    sys.stdout.write(out.stdout)  # the stats tables (pytest -s shows them)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_smollm2_shortest_correct_dap_and_sft_end_to_end(tmp_path):
    short, dap, sft = tmp_path / "short", tmp_path / "dap", tmp_path / "sft"
    _cli(["distill", "shortest-correct", "--model", "smollm2-135m", "--engine", "hf", "--benchmark", "arith",
          "--levels", "1", "--limit", "12", "-n", "4", "--max-tokens", "128", "--out", str(short)])  # fmt: skip
    stats = json.loads((short / "stats.json").read_text())
    assert (stats["problems"], stats["samples"]) == (12, 48) and stats["kept"] >= 1
    for r in map(json.loads, (short / "records.jsonl").read_text().splitlines()):
        ok = [
            n
            for n, c, f in zip(r["sample_tokens"], r["sample_correct"], r["sample_finished"], strict=True)
            if c and f
        ]
        assert r["num_tokens"] == (min(ok) if ok else None)
    _cli(["distill", "dap", "--teacher", "smollm2-135m", "--engine", "hf", "--benchmark", "arith", "--levels", "1,2",
          "--limit", "4", "--budgets", "easy=32,medium=64,hard=96", "--trace-max-tokens", "160", "--out", str(dap)])  # fmt: skip
    stats = json.loads((dap / "stats.json").read_text())
    assert stats["overall"]["problems"] == 4 and stats["traces_generated"] == 4
    assert stats["overall"]["tokens_after_total"] <= stats["overall"]["tokens_before_total"]
    _cli(["train", "sft_short", f"data.path={short}", "trainer.max_steps=2", f"trainer.output_dir={sft}"])
    assert [json.loads(x)["step"] for x in (sft / "metrics.jsonl").read_text().splitlines()][:2] == [1, 2]
