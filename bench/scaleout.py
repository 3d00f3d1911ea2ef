"""Data-parallel learner scaling on this machine: the same short recipe at 1 and 2 learner processes, and the
cost of the weight-sync check.

Three runs of ``reasoner train RECIPE`` (each a subprocess of ``.venv/bin/reasoner``, so a fresh process tree
with its own engine), on the same global batch of ``--rows`` rows (``--rows / --num-generations`` prompts):

    1proc          --nproc 1, per_device_train_batch_size = rows,     rollout.sync_check_rows = --sync-check-rows
    1proc-nocheck  --nproc 1, per_device_train_batch_size = rows,     rollout.sync_check_rows = 0
    2proc          --nproc 2, per_device_train_batch_size = rows / 2, rollout.sync_check_rows = --sync-check-rows

Each writes to its own folder under ``--out`` (``trainer.save_strategy=no``; its console output goes to
``train.log`` there). Before anything long, the three command lines are resolved with ``--print-config`` and
checked. From each run's ``metrics.jsonl`` the first step (warm-up: engine and optimizer set-up) is dropped
and the median over the remaining steps is taken of ``time/step``, ``time/generate``, ``time/update``,
``time/comm`` and ``time/sync_check`` (each column separately, so they need not add up). At 2 processes each
figure is the slowest rank's. Printed: step time 2 procs / 1 proc, the share of the 2-proc step spent in our
collectives (``time/comm / time/step``), and the sync-check overhead measured two ways: directly
(``time/sync_check / time/step`` of 1proc) and as the difference it makes (step of 1proc / step of
1proc-nocheck - 1; noisier, since it compares two runs).

    .venv/bin/python bench/scaleout.py [--recipe dler] [--model smollm2-135m] [--engine vllm] [--steps 6]
        [--rows 16] [--num-generations 4] [--max-completion-length 64] [--out runs/bench-scaleout]
        [--json PATH] [--check-only] [key=value overrides ...]

On a 2-core machine 2 processes cannot speed anything up: they share the same two cores that one process
already uses (accelerate gives each of N CPU processes cores / N OpenMP threads, so 1 thread each at 2
processes, where one process uses both), and each process runs its own rollout engine. There the figures
measure the communication and bookkeeping cost of data parallelism (the all-gathers of rollouts, timers and
sync-check results, plus running the replicated hooks on every rank), not a speed-up; expect a ratio at or
above 1. A ratio well below 1 most likely means the machine was busy (we saw 0.1-0.5 with other jobs at load
average ~5): one process runs 2 OpenMP threads, whose barriers stall when other jobs take a core, where 2
processes run 1 thread each. Run it on a quiet machine.
``time/comm`` counts our collectives only; DDP's gradient all-reduce happens inside the backward pass
and is part of ``time/update``. At 2 processes the sync check's own all-gather is in both ``time/sync_check``
and ``time/comm``. Dynamic sampling (DLER's refills) makes step times vary with the samples drawn; the refill
rounds and mean completion length are printed alongside so runs can be compared.

Target: sync-check overhead <= 3% of the step (time/sync_check / time/step at 1 process).

The default recipe is ``dler`` on ``smollm2-135m`` with vLLM; ``--recipe dler_overthinker --model overthinker``
is the organism setting, but building the ``overthinker`` model the first time takes ~35 min on 2 cores.
Each run also saves its final weights in its folder (the trainer's end-of-run ``save_model``).
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

import yaml

KEYS = ("step", "generate", "update", "comm", "sync_check")
"""``time/<key>`` columns reported per run."""
CONTEXT = {"reasoner/refill_rounds": "refills", "completions/mean_length": "mean_len"}
"""Other per-step metrics whose median is shown alongside, to tell whether two runs did comparable work."""
RESERVED = ("trainer.per_device_train_batch_size", "rollout.sync_check_rows", "trainer.output_dir",
            "trainer.max_steps", "trainer.save_strategy")  # fmt: skip
"""Keys each run sets itself; an override of them on the command line is an error."""


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def default_reasoner() -> str:
    """The ``reasoner`` entry point next to this interpreter (``.venv/bin/reasoner``), else ``.venv`` here."""
    sibling = Path(sys.executable).with_name("reasoner")
    if sibling.exists():
        return str(sibling)
    return str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "reasoner")


def plan(args: argparse.Namespace) -> dict[str, dict]:
    """Name -> {nproc, rows (per process), sync_check_rows, out, cmd} of the three runs."""
    common = [
        f"model.name={args.model}",
        f"rollout.engine={args.engine}",
        f"trainer.num_generations={args.num_generations}",
        f"trainer.max_completion_length={args.max_completion_length}",
        "trainer.logging_steps=1",
        *args.overrides,
        f"trainer.max_steps={args.steps}",
        "trainer.save_strategy=no",
    ]
    runs = {}
    for name, nproc, check in [("1proc", 1, args.sync_check_rows), ("1proc-nocheck", 1, 0),
                               ("2proc", 2, args.sync_check_rows)]:  # fmt: skip
        out = args.out / name
        rows = args.rows // nproc
        cmd = [args.reasoner, "train", args.recipe, *common, f"trainer.per_device_train_batch_size={rows}",
               f"rollout.sync_check_rows={check}", f"trainer.output_dir={out}", "--nproc", str(nproc)]  # fmt: skip
        runs[name] = {"nproc": nproc, "rows": rows, "sync_check_rows": check, "out": out, "cmd": cmd}
    return runs


def check_configs(runs: dict[str, dict], args: argparse.Namespace, env: dict[str, str]) -> None:
    """Resolve the three command lines with ``--print-config`` (in parallel) and check what each run sets."""
    procs = {
        name: subprocess.Popen(
            [*r["cmd"], "--print-config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )  # fmt: skip
        for name, r in runs.items()
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode:
            sys.exit(f"{name}: --print-config failed (exit {proc.returncode}):\n{stderr.strip()}")
        config, r = yaml.safe_load(stdout), runs[name]
        got = {
            "model.name": config["model"]["name"],
            "rollout.engine": config["rollout"]["engine"],
            "rollout.sync_check_rows": config["rollout"]["sync_check_rows"],
            "trainer.per_device_train_batch_size": config["trainer"]["per_device_train_batch_size"],
            "trainer.num_generations": config["trainer"]["num_generations"],
            "trainer.max_steps": config["trainer"]["max_steps"],
            "trainer.output_dir": config["trainer"]["output_dir"],
        }
        want = {
            "model.name": args.model,
            "rollout.engine": args.engine,
            "rollout.sync_check_rows": r["sync_check_rows"],
            "trainer.per_device_train_batch_size": r["rows"],
            "trainer.num_generations": args.num_generations,
            "trainer.max_steps": args.steps,
            "trainer.output_dir": str(r["out"]),
        }
        wrong = [f"{k}={got[k]!r} (want {v!r})" for k, v in want.items() if got[k] != v]
        if wrong:
            sys.exit(f"{name}: the resolved recipe differs from the plan: {', '.join(wrong)}")
        print(f"config ok  {name:<14} --nproc {r['nproc']}  per-device rows {r['rows']}  "
              f"sync_check_rows {r['sync_check_rows']}")  # fmt: skip


def train(name: str, run: dict, env: dict[str, str]) -> float:
    """Run one training command (output to ``<out>/train.log``); its wall seconds."""
    out: Path = run["out"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)  # the trainer appends: start this run's record afresh
    log_path = out / "train.log"
    print(f"run {name}: {' '.join(run['cmd'])}", flush=True)
    t0 = time.perf_counter()
    with log_path.open("w") as log:
        code = subprocess.run(run["cmd"], stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - t0
    if code:
        tail = log_path.read_text(errors="replace").splitlines()[-30:]
        sys.exit(
            f"run {name} failed (exit {code}) after {wall:.0f} s; last lines of {log_path}:\n"
            + "\n".join(tail)
        )
    print(f"run {name}: done in {wall:.0f} s", flush=True)
    return wall


def summarize(path: Path) -> dict:
    """Medians over the steps after the first of the ``time/*`` columns and the context metrics, and the
    per-step values they come from."""
    with path.open() as f:
        records = [json.loads(line) for line in f if line.strip()]
    steps = sorted((r for r in records if "time/step" in r), key=lambda r: r["step"])
    if len(steps) < 2:
        sys.exit(f"{path}: {len(steps)} step record(s) with time/step; need 2 or more (the first is warm-up)")
    timed = steps[1:]
    per_step = {k: [float(r.get(f"time/{k}", 0.0)) for r in timed] for k in KEYS}
    per_step |= {label: [float(r[m]) for r in timed if r.get(m) is not None] for m, label in CONTEXT.items()}
    medians = {k: statistics.median(v) if v else None for k, v in per_step.items()}
    return {"steps_timed": len(timed), "warmup_step_s": float(steps[0]["time/step"]), **medians,
            "per_step": per_step}  # fmt: skip


def ratios(results: dict[str, dict]) -> dict[str, float]:
    one, off, two = results["1proc"], results["1proc-nocheck"], results["2proc"]
    return {
        "step_2proc_over_1proc": two["step"] / one["step"],
        "comm_share_2proc": two["comm"] / two["step"],
        "sync_check_share_1proc": one["sync_check"] / one["step"],
        "sync_check_share_2proc": two["sync_check"] / two["step"],
        "sync_check_step_delta_1proc": one["step"] / off["step"] - 1.0,
    }


def report(args: argparse.Namespace, runs: dict[str, dict], results: dict[str, dict], r: dict) -> None:
    print()
    print(f"recipe {args.recipe}, model {args.model}, engine {args.engine}, global batch {args.rows} rows "
          f"({args.rows // args.num_generations} prompts x {args.num_generations}), max "
          f"{args.max_completion_length} tokens, {args.steps - 1} timed steps (median), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[1]:.1f} (5 min)")  # fmt: skip
    head = f"{'run':<14} {'procs':>5} {'rows/proc':>9} {'check':>5}"
    head += "".join(f" {k:>10}" for k in KEYS) + f" {'refills':>7} {'mean_len':>8} {'wall_s':>7}"
    print(head)
    for name, res in results.items():
        run = runs[name]
        line = f"{name:<14} {run['nproc']:>5} {run['rows']:>9} {run['sync_check_rows']:>5}"
        line += "".join(f" {res[k]:>10.3f}" for k in KEYS)
        refills, length = res["refills"], res["mean_len"]
        line += f" {'-' if refills is None else f'{refills:.1f}':>7} {'-' if length is None else f'{length:.1f}':>8}"
        line += f" {res['wall_s']:>7.0f}"
        print(line)
    print("(seconds; time/update = step - rollout: forward, backward with DDP's all-reduce, optimizer)")
    print(f"step time 2 procs / 1 proc:            {r['step_2proc_over_1proc']:.3f}")
    print(f"comm share of the 2-proc step:         {100 * r['comm_share_2proc']:.2f}%")
    print(f"sync-check overhead, 1 proc (direct):  {100 * r['sync_check_share_1proc']:.2f}% of the step "
          "(target <= 3%)")  # fmt: skip
    print(f"sync-check overhead, 1 proc (on/off):  {100 * r['sync_check_step_delta_1proc']:+.2f}% "
          "(step with / without - 1; run-to-run noise included)")  # fmt: skip
    print(f"sync-check share of the 2-proc step:   {100 * r['sync_check_share_2proc']:.2f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="extra recipe overrides applied to all three runs (not the keys each run sets: "
                    + ", ".join(RESERVED) + ")")  # fmt: skip
    ap.add_argument("--recipe", default="dler", help="recipe name or YAML path (default dler)")
    ap.add_argument("--model", default="smollm2-135m", help="model.name (default smollm2-135m)")
    ap.add_argument("--engine", default="vllm", choices=["vllm", "hf"], help="rollout.engine (default vllm)")
    ap.add_argument("--steps", type=positive, default=6,
                    help="optimizer steps per run; the first is warm-up and not counted (default 6)")  # fmt: skip
    ap.add_argument("--rows", type=positive, default=16,
                    help="global batch rows (completions) per step, the same in all runs (default 16)")  # fmt: skip
    ap.add_argument("--num-generations", type=positive, default=4,
                    help="trainer.num_generations, completions per prompt (default 4)")  # fmt: skip
    ap.add_argument("--max-completion-length", type=positive, default=64,
                    help="trainer.max_completion_length in tokens (default 64)")  # fmt: skip
    ap.add_argument("--sync-check-rows", type=positive, default=2,
                    help="rollout.sync_check_rows per process in the runs with the check on (default 2)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("runs/bench-scaleout"),
                    help="folder for the three runs' output dirs (default runs/bench-scaleout)")  # fmt: skip
    ap.add_argument("--reasoner", default=default_reasoner(),
                    help="the reasoner CLI to run (default: .venv/bin/reasoner next to this Python)")  # fmt: skip
    ap.add_argument(
        "--json", type=Path, metavar="PATH", help="also write all numbers (and the commands) here"
    )
    ap.add_argument("--check-only", action="store_true",
                    help="only resolve and check the three command lines (--print-config), then exit")  # fmt: skip
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be >= 2 (the first step is warm-up)")
    if args.rows % (2 * args.num_generations):
        ap.error(f"--rows {args.rows} must be a multiple of 2 x --num-generations ({2 * args.num_generations}): "
                 "each of 2 processes generates whole groups")  # fmt: skip
    bad = [o for o in args.overrides if "=" not in o or o.split("=", 1)[0] in RESERVED]
    if bad:
        ap.error(f"overrides must be KEY=VALUE and not set {', '.join(RESERVED)}; got {' '.join(bad)}")
    args.out = args.out.resolve()
    env = dict(os.environ)
    env.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    runs = plan(args)
    check_configs(runs, args, env)
    if args.check_only:
        return
    results = {}
    for name, run in runs.items():
        wall = train(name, run, env)
        results[name] = summarize(run["out"] / "metrics.jsonl") | {"wall_s": wall}
    r = ratios(results)
    report(args, runs, results, r)
    if args.json:
        config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json"}
        doc = {
            "config": config,
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "runs": {
                name: {
                    "nproc": run["nproc"],
                    "rows_per_proc": run["rows"],
                    "sync_check_rows": run["sync_check_rows"],
                    "out": str(run["out"]),
                    "cmd": run["cmd"],
                    **results[name],
                }
                for name, run in runs.items()
            },  # fmt: skip
            "ratios": r,
            "targets": {"sync_check_share_1proc": 0.03},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
