"""The overthinking organism on held-out problems: do the seed papers' effects show? (opt-in, ~20 min).

One table, on held-out ``multistep`` test problems (disjoint from the organism's training questions by
construction), vLLM engine, temperature 1.0 (the organism's trained distribution):

1. the organism: accuracy (avg@8) and mean thinking length (tokens to ``</think>``) against the minimal
   solution's thinking length (the same problems' zero-re-check traces, tokenized);
2. shortest-of-8 vs longest-of-8: accuracy of each problem's chain with the least / most thinking among the
   8 samples of the majority@8 run (short-m@k's premise, arXiv 2505.17813);
3. majority@8 vs short-1@8 vs short-3@8 (live: real aborts): accuracy, generated tokens, wall time. Problems
   go to the engine in chunks; every strategy runs on a chunk before the next chunk starts;
4. before/after a short DLER run (``recipes/dler_overthinker.yaml``: DLER, arXiv 2510.15110, on the
   organism): accuracy and mean response length (avg@4 on the same problems).

    .venv/bin/python bench/organism.py [--problems 100] [--dler-steps 100] [--json out.json] [key=value ...]
    .venv/bin/python bench/organism.py --build --organism-only --problems 50   # build time + parts 1-2

``--build`` builds the organism from nothing into a temporary directory (``build_overthinker``: tokenizer,
init, data, SFT, save) and reports the build time; ``--organism-only`` runs parts 1-2 alone (one majority@8
run: no short-m@k, no DLER).

``key=value`` arguments override the DLER recipe (``recipes/dler_overthinker.yaml``; the run logs them).
The model is ``--model`` (default: the ``overthinker`` alias, built on first use, ~5 min on 2 cores).

Measured on v5 (2-core CPU, idle machine; README "The overthinking organism" has the table): accuracy 78.0%,
thinking 2.65x minimal; shortest-of-8 81.0% vs longest-of-8 66.0%; majority@8 98.0% / 29.1 s, short-3@8
91.0% / 13.9 s (0.48x); DLER (cap 84, 100 steps) length 0.46x at +2.7 points; 629 s with the build.

Build time (issue "A 5-minute organism": build <= 300 s with avg@8 >= 70%, thinking >= 2.5x minimal,
shortest-of-8 >= longest-of-8 + 15 points): met, the v5 recipe built in 236 s (80.8% avg@8, 2.78x, +20.7
points on 300 problems); README "Build time" has every configuration tried and what it measured.

Targets (issue [8]): organism accuracy >= 60% with thinking >= 3x minimal; shortest-of-8 more accurate than
longest-of-8; DLER length <= 0.5x with accuracy >= -2 points; short-3@8 accuracy >= majority@8 at <= 0.75x
its wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import cpu_env, evaluate, thinking, train_and_eval

from reasoner.types import Problem, SampleSpec, StrategyResult

RUNS = {
    "majority@8": ("majority", {"k": "8"}),
    "short-1@8": ("short-m@k", {"k": "8", "m": "1"}),
    "short-3@8": ("short-m@k", {"k": "8", "m": "3"}),
}
DLER_RECIPE = "dler_overthinker"
"""``recipes/dler_overthinker.yaml``: DLER with settings for the ~4M-parameter organism (cap 84, lr 1e-4)."""


def minimal_thinking(tokenizer, problems: list[Problem]) -> float:
    """Mean thinking tokens of the problems' minimal (zero re-check) traces, ``</think>`` included."""
    from reasoner.organism.problems import steps_of
    from reasoner.organism.traces import minimal_trace
    from reasoner.prompts import THINK_END

    lengths = []
    for p in problems:
        head = minimal_trace(steps_of(p)).split(THINK_END)[0] + THINK_END
        lengths.append(len(tokenizer.encode(head, add_special_tokens=False)))
    return statistics.mean(lengths)


def strategies(
    engine, problems: list[Problem], spec: SampleSpec, chunk: int, organism_only: bool = False
) -> dict[str, dict[str, float]]:
    """Run the strategies chunk by chunk; sums per strategy plus the per-sample and shortest/longest stats
    (``organism_only``: majority@8 alone, which is what the per-sample and shortest/longest stats need)."""
    from reasoner.strategies import build_strategy
    from reasoner.verify import grade_many

    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for lo in range(0, len(problems), chunk):
        part = problems[lo : lo + chunk]
        for label, (name, params) in RUNS.items():
            if organism_only and label != "majority@8":
                continue
            t = time.perf_counter()
            results = build_strategy(name, params).run_batch(engine, part, spec)
            wall = time.perf_counter() - t
            s = stats[label]
            verdicts = grade_many([p.answer for p in part], [_boxed(r) for r in results])
            s["problems"] += len(part)
            s["correct"] += sum(v.correct for v in verdicts)
            s["generated"] += sum(r.tokens.generated for r in results)
            s["wall_s"] += wall
            logging.info("chunk %d %s: %.1fs", lo // chunk, label, wall)
            if label == "majority@8":
                samples(stats["samples"], part, results)
    return {k: dict(v) for k, v in stats.items()}


def _boxed(r: StrategyResult) -> str:
    return "" if r.answer is None else f"\\boxed{{{r.answer}}}"


def samples(s: dict[str, float], part: list[Problem], results: list[StrategyResult]) -> None:
    """Per-sample accuracy and thinking, and the shortest-of-k / longest-of-k chains' accuracy."""
    from reasoner.verify import grade_many

    for p, r in zip(part, results, strict=True):
        comps = r.completions
        verdicts = grade_many([p.answer] * len(comps), [c.text for c in comps])
        lengths = [thinking(c) for c in comps]
        s["samples"] += len(comps)
        s["sample_correct"] += sum(v.correct for v in verdicts)
        s["thinking"] += sum(lengths)
        s["unclosed"] += sum(c.think_end is None for c in comps)
        s["shortest_correct"] += verdicts[lengths.index(min(lengths))].correct
        s["longest_correct"] += verdicts[lengths.index(max(lengths))].correct
        s["problems"] += 1


def dler(args, model: str, problems: list[Problem], before: dict[str, float]) -> dict[str, dict[str, float]]:
    """Accuracy and mean length after ``--dler-steps`` DLER steps on the organism, with ``before``."""
    overrides = [f"model.name={model}", f"trainer.max_steps={args.dler_steps}", "trainer.save_strategy=no",
                 *args.overrides]  # fmt: skip
    logging.info("DLER: recipe %s, overrides %s", DLER_RECIPE, " ".join(overrides))
    with tempfile.TemporaryDirectory(prefix="organism-dler-") as tmp:
        after = train_and_eval(DLER_RECIPE, overrides, problems, tmp, samples=4, max_tokens=args.max_tokens,
                               temperature=args.temperature)  # fmt: skip
    return {"before": before, "after": after}


def report(org: dict[str, float], runs: dict | None, dl: dict | None, n: int) -> list[str]:
    lines = _organism_lines(org, runs, n) if runs else [f"held-out: {n} multistep test problems (levels 1-4)"]
    if dl:
        b, a = dl["before"], dl["after"]
        lines += [
            "",
            f"{'DLER':<12}{'acc%':>7}{'mean len':>10}{'thinking':>10}{'truncated':>10}{'train s':>9}",
        ]
        for name, r in (("before", b), (f"after {int(a['steps'])} st", a)):
            lines.append(f"{name:<12}{100 * r['accuracy']:>7.1f}{r['mean_length']:>10.1f}{r['mean_thinking']:>10.1f}"
                         f"{r['truncated']:>10.3f}{r.get('train_s', 0):>9.0f}")  # fmt: skip
        cut, dacc = a["mean_length"] / b["mean_length"], 100 * (a["accuracy"] - b["accuracy"])
        lines.append(f"DLER length {cut:.2f}x (target <= 0.5x), accuracy {dacc:+.1f} points (target >= -2): "
                     f"{_met(cut <= 0.5 and dacc >= -2)}")  # fmt: skip
    return lines


def _organism_lines(org: dict[str, float], runs: dict[str, dict[str, float]], n: int) -> list[str]:
    s = runs["samples"]
    acc = 100 * s["sample_correct"] / s["samples"]
    think = s["thinking"] / s["samples"]
    ratio = think / org["minimal_thinking"]
    short, long_ = 100 * s["shortest_correct"] / s["problems"], 100 * s["longest_correct"] / s["problems"]
    lines = [
        f"held-out: {n} multistep test problems (levels 1-4), 8 samples each, T={org['temperature']}",
    ]
    if "build_s" in org:
        lines.append(f"organism build (from nothing)  {org['build_s']:6.0f} s  target <= 300 s: "
                     f"{_met(org['build_s'] <= 300)}")  # fmt: skip
    lines += [
        f"organism accuracy (avg@8)      {acc:6.1f}%   target >= 70%: {_met(acc >= 70)}",
        f"mean thinking tokens           {think:6.1f}    minimal solution {org['minimal_thinking']:.1f} -> "
        f"{ratio:.2f}x (target >= 2.5x): {_met(ratio >= 2.5)}   unclosed <think>: {int(s['unclosed'])}",
        f"shortest-of-8 accuracy         {short:6.1f}%   longest-of-8 {long_:.1f}% ({short - long_:+.1f} points, "
        f"target >= +15): {_met(short - long_ >= 15)}",
    ]
    if "short-3@8" not in runs:  # --organism-only
        return lines
    lines += ["", f"{'strategy':<12}{'acc%':>7}{'generated':>11}{'x maj':>7}{'wall s':>9}{'x maj':>7}"]
    base = runs["majority@8"]
    for label in RUNS:
        r = runs[label]
        lines.append(
            f"{label:<12}{100 * r['correct'] / r['problems']:>7.1f}{int(r['generated']):>11}"
            f"{r['generated'] / base['generated']:>7.2f}{r['wall_s']:>9.1f}{r['wall_s'] / base['wall_s']:>7.2f}"
        )
    s3 = runs["short-3@8"]
    ok = s3["correct"] >= base["correct"] and s3["wall_s"] <= 0.75 * base["wall_s"]
    lines.append(f"short-3@8 >= majority@8 accuracy at <= 0.75x wall: {_met(ok)}")
    return lines


def _met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def ready_model(build_into: Path | None, name: str) -> str:
    """The model's directory: the alias recipe built into ``build_into`` (``build_overthinker``), else ``name``
    resolved (an alias builds on first use). Done by this script in a child process (``--ready-only``) with
    this shell's thread settings, as ``reasoner eval`` builds it: ``cpu_env``'s one thread, set here for the
    measurements, made the build ~1.5x slower (373 s against 236 s for the same recipe)."""
    cmd = [sys.executable, __file__, "--ready-only", str(build_into or ""), "--model", name]
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]


def _ready(build_into: str, name: str) -> str:
    from reasoner.models import resolve
    from reasoner.organism.build import build_overthinker

    return str(build_overthinker(Path(build_into))) if build_into else resolve(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="key=value overrides of recipes/dler_overthinker.yaml")
    ap.add_argument(
        "--model", default="overthinker", help="the organism (alias or directory). Default: %(default)s"
    )
    ap.add_argument("--problems", type=int, default=100, help="held-out test problems. Default: %(default)s")
    ap.add_argument("--chunk", type=int, default=10, help="problems per strategy batch. Default: %(default)s")
    ap.add_argument("--max-tokens", type=int, default=700, help="max tokens per sample. Default: %(default)s")
    ap.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature. Default: %(default)s"
    )
    ap.add_argument("--seed", type=int, default=0, help="sampling seed. Default: %(default)s")
    ap.add_argument(
        "--dler-steps", type=int, default=100, help="DLER steps; 0 skips DLER. Default: %(default)s"
    )
    ap.add_argument("--only-dler", action="store_true", help="skip parts 1-3 (the strategies)")
    ap.add_argument("--organism-only", action="store_true",
                    help="parts 1-2 only: one majority@8 run (no short-m@k, no DLER)")  # fmt: skip
    ap.add_argument("--build", action="store_true",
                    help="build the organism from nothing into a temp dir first (train_organism, the alias's "
                         "recipe) and report its build time; --model is then ignored")  # fmt: skip
    ap.add_argument("--json", help="also write the raw numbers here")
    ap.add_argument("--ready-only", metavar="DIR", help=argparse.SUPPRESS)  # child of ready_model
    args = ap.parse_args()
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.ready_only is not None:
        print(_ready(args.ready_only, args.model))
        return
    organism_only = args.organism_only
    build_dir = tempfile.TemporaryDirectory(prefix="organism-build-") if args.build else None
    t0 = time.perf_counter()
    model = ready_model(Path(build_dir.name) / "overthinker" if build_dir else None, args.model)
    build_s = time.perf_counter() - t0
    cpu_env()
    from evals.benchmarks import load_benchmark
    from reasoner.engines import load_engine

    logging.info("model %s ready in %.0fs: %s", args.model, build_s, model)
    problems = list(load_benchmark("multistep", split="test", n=args.problems, seed=0).problems)
    engine = load_engine("vllm", model, dtype="float32", seed=args.seed)
    try:
        engine.generate([[1, 2, 3]], SampleSpec(n=2, max_tokens=8))  # warm-up
        spec = SampleSpec(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
        org = {
            "minimal_thinking": minimal_thinking(engine.tokenizer, problems),
            "temperature": args.temperature,
        }
        runs = None if args.only_dler else strategies(engine, problems, spec, args.chunk, organism_only)
        if args.dler_steps > 0 and not organism_only:
            before = evaluate(engine, engine.tokenizer, problems, 4, args.max_tokens, args.temperature)
    finally:
        engine.close()
    dl = dler(args, model, problems, before) if args.dler_steps > 0 and not organism_only else None
    if build_dir:
        org["build_s"] = build_s
        build_dir.cleanup()
    print("\n".join(report(org, runs, dl, len(problems))))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "organism": org, "runs": runs, "dler": dl}, f, indent=2)


if __name__ == "__main__":
    main()
