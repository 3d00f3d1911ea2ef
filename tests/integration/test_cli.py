"""`reasoner` CLI end to end: decode on the real offline model with both engines, and clear errors."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REASONER = [sys.executable, "-m", "reasoner.cli"]


DECODE_KEYS = {
    "question",
    "model",
    "engine",
    "strategy",
    "answer",
    "votes",
    "completions",
    "tokens",
    "wall_s",
}


def run(args, env=None, timeout=600):
    return subprocess.run(
        REASONER + args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_import_reasoner_is_light():
    code = (
        "import sys, reasoner, reasoner.types, reasoner.models, reasoner.prompts, reasoner.engines, "
        "reasoner.engines.hf, reasoner.cli\n"
        "heavy = [m for m in ('vllm', 'ray', 'trl', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_decode_smollm2_json(engine):
    out = run(
        [
            "decode",
            "What is 2 + 3?",
            "--model",
            "smollm2-135m",
            "--engine",
            engine,
            "-n",
            "2",
            "--max-tokens",
            "48",
            "--seed",
            "0",
            "--json",
        ]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result) == DECODE_KEYS
    assert result["engine"] == engine and len(result["completions"]) == 2
    for c in result["completions"]:
        assert c["num_tokens"] == len(c["token_ids"]) <= 48
        assert c["finish_reason"] in ("stop", "length")
        assert set(c) == {"text", "token_ids", "num_tokens", "finish_reason", "answer"}
    assert result["tokens"]["generated"] == sum(c["num_tokens"] for c in result["completions"])
    assert result["tokens"]["prefilled"] > 0 and result["wall_s"] > 0
    assert set(result["tokens"]) == {"generated", "prefilled", "thinking", "answer", "sequential"}
    assert result["tokens"]["sequential"] == max(c["num_tokens"] for c in result["completions"])


NO_VLLM = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")


@pytest.mark.parametrize("engine", ["hf", pytest.param("vllm", marks=[pytest.mark.vllm, NO_VLLM])])
def test_decode_json_pipes_into_json_tool(engine):
    # stdout is one JSON document, even with vLLM's logger pointed at stdout (its own default): a real pipe.
    decode = [*REASONER, "decode", "What is 2 + 3?", "--model", "tiny-random-qwen2", "--engine", engine]
    pipe = f"set -o pipefail; {shlex.join([*decode, '--max-tokens', '8', '--json'])} | {sys.executable} -m json.tool"
    env = {**os.environ, "VLLM_LOGGING_STREAM": "ext://sys.stdout"}
    out = subprocess.run(["bash", "-c", pipe], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result) == DECODE_KEYS and result["engine"] == engine
    assert result["completions"][0]["num_tokens"] <= 8


def test_decode_short_m_at_k_live_aborts_the_rest():
    out = run(
        [
            "decode",
            "What is 2 + 3?",
            "--model",
            "smollm2-135m",
            "--engine",
            "vllm",
            "--strategy",
            "short-m@k",
            "--param",
            "k=4",
            "--param",
            "m=1",
            "--max-tokens",
            "160",
            "--seed",
            "1",
            "--json",
        ]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    reasons = [c["finish_reason"] for c in result["completions"]]
    assert result["strategy"] == "short-m@k" and len(reasons) == 4
    assert reasons.count("stop") >= 1
    if "abort" in reasons:  # the first finisher ended the others early
        first = min(c["num_tokens"] for c in result["completions"] if c["finish_reason"] == "stop")
        assert all(
            c["num_tokens"] <= first + 1 for c in result["completions"] if c["finish_reason"] == "abort"
        )
    assert result["tokens"]["generated"] == sum(c["num_tokens"] for c in result["completions"])


def test_decode_human_view_tiny():
    out = run(
        ["decode", "What is 2 + 3?", "--model", "tiny-random-llama", "--engine", "hf", "--max-tokens", "8"]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "trace 0: 8 tokens, finish=length" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--model", "no-such-alias"],
            "known aliases: overthinker, overthinker-init, smollm2-135m, tiny-random-llama, tiny-random-qwen2",
        ),
        (["-n", "0"], "-n must be >= 1, got 0"),
        (["--max-tokens", "-5"], "--max-tokens must be >= 1, got -5"),
        (["--temperature", "-1"], "temperature must be >= 0, got -1.0"),
        (["--top-p", "1.5"], "top_p must be in (0, 1], got 1.5"),
        (["--strategy", "nope"], "unknown strategy 'nope'; known strategies: greedy"),
        (["--strategy", "majority", "--param", "kk=3"], "kk"),
        (["--strategy", "majority", "--param", "k"], "--param must look like key=value, got 'k'"),
    ],
)
def test_decode_bad_input_is_one_clear_line(args, message):
    out = run(["decode", "q", "--model", "tiny-random-qwen2", "--engine", "hf", *args])
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_engine_not_installed_is_clear(tmp_path: Path):
    # A real broken install: a `vllm` package that fails to import shadows the real one on PYTHONPATH.
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("raise ImportError('simulated broken vllm install')\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = run(["decode", "q", "--model", "tiny-random-qwen2", "--engine", "vllm"], env=env)
    assert out.returncode == 2
    assert "engine 'vllm' is not available" in out.stderr and "simulated broken vllm install" in out.stderr
    assert "Traceback" not in out.stderr
    auto = run(["decode", "q", "--model", "tiny-random-qwen2", "--max-tokens", "4", "--json"], env=env)
    assert auto.returncode == 0, auto.stderr[-2000:]
    assert json.loads(auto.stdout)["engine"] == "hf"


MISSING = "some-org/not-cached-model"


@pytest.mark.parametrize(
    "command",
    [
        ["decode", "q", "--model", MISSING],
        ["eval", "--model", MISSING, "--benchmark", "arith", "--limit", "2", "--out", "{tmp}/run"],
        ["train", "dler", f"model.name={MISSING}", "trainer.output_dir={tmp}/train"],
    ],
    ids=["decode", "eval", "train"],
)
def test_uncached_hub_model_offline_is_one_line(tmp_path: Path, command):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = run([arg.replace("{tmp}", str(tmp_path)) for arg in command], env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert (
        f"reasoner {command[0]}: error: model {MISSING!r} is not in the local Hugging Face cache"
        in out.stderr
    )
    assert "HF_HUB_OFFLINE=1 forbids downloading it" in out.stderr


@pytest.mark.parametrize("command", ["eval", "train"])
def test_bad_benchmark_file_is_one_line(tmp_path: Path, command):
    (tmp_path / "gsm8k").mkdir()
    path = tmp_path / "gsm8k" / "test.jsonl"
    path.write_text('{"question": "Q1", "answer": "#### 1"}\n{"question": "Q2" "answer": "#### 2"}\n')
    args = {
        "eval": ["eval", "--benchmark", "gsm8k", "--data-dir", str(tmp_path), "--model", "tiny-random-qwen2",
                 "--out", str(tmp_path / "run")],
        "train": ["train", "dler", "data.benchmark=gsm8k", "data.split=test", f"data.data_dir={tmp_path}"],
    }[command]  # fmt: skip
    out = run(args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{path} line 2: invalid JSON (Expecting ',' delimiter: column 19)" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(f"reasoner {command}: error: ")
