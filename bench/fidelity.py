"""The fidelity table (issue [13]): each seed method's paper claim measured against its baseline on the organism.

    .venv/bin/python bench/fidelity.py [--problems 100] [--only ROW ...] [--fresh] [--out runs/fidelity]
        [--organism-seed 0] [--p-flip 0.115] [--levels 1,2,3,4]

Prints ``row | measured | target | met?``. Every row runs on the same held-out ``multistep`` test problems (levels
of the organism), vLLM engine, temperature 1.0, the same seeds for both arms; tokens are the strategies'
``TokenCount``; answers graded by ``reasoner.verify``. A row's numbers are cached in ``--out`` as
``<row>-<hash of its settings>.json`` (settings: organism variant, problems, seeds, sampling, the row's version):
a rerun prints cached rows without recomputing (``--fresh`` recomputes). The organism is the ``overthinker``
alias for the default ``--organism-seed/--p-flip/--levels``, else that variant (``organism.build.build_variant``,
built once into the model cache, ~5 min). Targets: ``bench/fidelity_targets.py``. Rows of the training
methods (DLER, its ablations, DA-DLER, merge, D3S, pruning, SFT, DAP) are listed as not implemented yet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import cpu_env, thinking
from fidelity_targets import NOT_YET, PENDING, TARGETS

from reasoner.types import Problem, SampleSpec, StrategyResult

log = logging.getLogger("fidelity")
BUDGETS = (32, 64, 128, 256)
"""Thinking budgets of the budget-forcing row (tokens), against unlimited thinking."""
SAMPLES = 4
"""Seeds per problem for single-answer rows (budget forcing, DEER): accuracy is avg@SAMPLES."""
MAJ8 = ("majority", {"k": "8"})


@dataclass
class Ctx:
    """What rows share: the problems, the sampling spec, a lazily loaded engine and a memo of strategy runs."""

    problems: list[Problem]
    spec: SampleSpec
    chunk: int
    load: Callable[[], Any]
    engine: Any = None
    memo: dict[str, tuple[list[StrategyResult], float]] = field(default_factory=dict)

    def run(self, name: str, params: dict[str, str], offset: int = 0) -> tuple[list[StrategyResult], float]:
        """``build_strategy(name, params)`` on every problem (seed ``spec.seed + offset``), chunk by chunk:
        the results and the summed wall time of the chunks (memoized)."""
        from reasoner.strategies import build_strategy
        from reasoner.strategies.base import derive

        key = json.dumps([name, params, offset])
        if key not in self.memo:
            if self.engine is None:
                self.engine = self.load()
            spec = derive(self.spec, seed=(self.spec.seed or 0) + offset)
            results, wall = [], 0.0
            for lo in range(0, len(self.problems), self.chunk):
                t = time.perf_counter()
                results += build_strategy(name, params).run_batch(
                    self.engine, self.problems[lo : lo + self.chunk], spec
                )
                wall += time.perf_counter() - t
            log.info("%s %s seed+%d: %.1fs", name, params, offset, wall)
            self.memo[key] = results, wall
        return self.memo[key]


def graded(golds: Sequence[str], answers: Sequence[str | None]) -> list[bool]:
    """Verdicts of extracted answers (None: no answer, wrong) by ``reasoner.verify.grade_many``."""
    from reasoner.verify import grade_many

    verdicts = grade_many(list(golds), ["" if a is None else f"\\boxed{{{a}}}" for a in answers])
    return [v.correct for v in verdicts]


def pct(flags: Sequence[bool]) -> float:
    return 100 * statistics.mean(flags) if flags else 0.0


def final_acc(ctx: Ctx, results: Sequence[StrategyResult]) -> float:
    return pct(graded([p.answer for p in ctx.problems], [r.answer for r in results]))


def tokens(results: Sequence[StrategyResult], what: str = "generated") -> int:
    return sum(getattr(r.tokens, what) for r in results)


def chain_verdicts(ctx: Ctx, results: Sequence[StrategyResult]) -> list[list[bool]]:
    """Per problem, each completion's verdict (its text graded against the gold)."""
    from reasoner.verify import grade_many

    golds = [p.answer for p, r in zip(ctx.problems, results, strict=True) for _ in r.completions]
    flat = [v.correct for v in grade_many(golds, [c.text for r in results for c in r.completions])]
    out, i = [], 0
    for r in results:
        out.append(flat[i : i + len(r.completions)])
        i += len(r.completions)
    return out


def row_short_m(ctx: Ctx) -> dict[str, Any]:
    """majority@8 vs short-1@8 and short-3@8 (live aborts); shortest- vs longest-thinking chain of majority's 8."""
    maj, maj_wall = ctx.run(*MAJ8)
    s1, s1_wall = ctx.run("short-m@k", {"k": "8", "m": "1"})
    s3, s3_wall = ctx.run("short-m@k", {"k": "8", "m": "3"})
    shortest, longest = [], []
    for r, verdicts in zip(maj, chain_verdicts(ctx, maj), strict=True):
        lengths = [thinking(c) for c in r.completions]
        shortest.append(verdicts[lengths.index(min(lengths))])
        longest.append(verdicts[lengths.index(max(lengths))])
    return {
        "maj_acc": final_acc(ctx, maj), "s1_acc": final_acc(ctx, s1), "s3_acc": final_acc(ctx, s3),
        "maj_thinking": tokens(maj, "thinking"), "s1_thinking": tokens(s1, "thinking"),
        "maj_wall": maj_wall, "s1_wall": s1_wall, "s3_wall": s3_wall,
        "shortest_acc": pct(shortest), "longest_acc": pct(longest),
    }  # fmt: skip


def _avg_runs(ctx: Ctx, name: str, params: dict[str, str]) -> dict[str, float]:
    """Accuracy (avg over SAMPLES seeds), generated and thinking tokens (totals over the seeds), mean thinking
    tokens per response."""
    runs = [ctx.run(name, params, j)[0] for j in range(SAMPLES)]
    return {
        "acc": statistics.mean(final_acc(ctx, rs) for rs in runs),
        "tokens": sum(tokens(rs) for rs in runs),
        "thinking": sum(tokens(rs, "thinking") for rs in runs),
        "mean_thinking": sum(tokens(rs, "thinking") for rs in runs) / (SAMPLES * len(ctx.problems)),
    }


def row_budget_forcing(ctx: Ctx) -> dict[str, Any]:
    """Budget forcing at each of BUDGETS vs unlimited thinking (plain samples), avg@SAMPLES."""
    out = {str(b): _avg_runs(ctx, "budget-forcing", {"budget": str(b)}) for b in BUDGETS}
    return out | {"none": _avg_runs(ctx, "sample", {})}


def row_deer(ctx: Ctx) -> dict[str, Any]:
    """DEER early exit (default threshold 0.9, markers Wait|Alternatively|\\n\\n) vs full chains, avg@SAMPLES."""
    deer, full = _avg_runs(ctx, "early-exit", {}), _avg_runs(ctx, "sample", {})
    return {
        "deer_acc": deer["acc"],
        "deer_tokens": deer["tokens"],
        "full_acc": full["acc"],
        "full_tokens": full["tokens"],
    }


def row_deepconf(ctx: Ctx) -> dict[str, Any]:
    """DeepConf online (k 8, warm-up 4) vs majority@8, in the paper's two settings: DeepConf-low (keep the top
    10%: the bar is the warm-up's 90th confidence percentile; the paper's token-saving setting, judged) and
    DeepConf-high (keep 90%: the 10th percentile; the conservative one, shown)."""
    low, _ = ctx.run("deepconf", {"k": "8", "mode": "online", "keep": "0.1"})
    high, _ = ctx.run("deepconf", {"k": "8", "mode": "online", "keep": "0.9"})
    maj, _ = ctx.run(*MAJ8)
    return {
        "dc_acc": final_acc(ctx, low),
        "dc_tokens": tokens(low),
        "high_acc": final_acc(ctx, high),
        "high_tokens": tokens(high),
        "maj_acc": final_acc(ctx, maj),
        "maj_tokens": tokens(maj),
    }


def _curve(groups: list[list[bool]], total_tokens: int, n: int) -> list[list[float]]:
    """(k * tokens per trajectory, 100 * mean pass@k) for k = 1..n, pass@k by ``evals.metrics``."""
    from evals.metrics import mean_pass_at_k

    return [[k * total_tokens / n, 100 * mean_pass_at_k(groups, k)] for k in range(1, n + 1)]


def row_fractured(ctx: Ctx) -> dict[str, Any]:
    """Fractured sampling (n 8, H 4, m 1) vs 8 parallel full chains (majority@8's): pass@k against total generated
    tokens; answers forced at depth 2 of 4 (50% of the thinking) vs the trajectories' own answers."""
    n, depths = 8, 4
    frac, _ = ctx.run("fractured", {"n": str(n), "H": str(depths), "m": "1"})
    maj, _ = ctx.run(*MAJ8)
    golds = [p.answer for p in ctx.problems]
    by_depth = [
        [graded([g] * n, r.extra["depth_answers"][d]) for g, r in zip(golds, frac, strict=True)]
        for d in range(depths)
    ]
    trajectory = [[any(by_depth[d][i][j] for d in range(depths)) for j in range(n)] for i in range(len(frac))]
    chains = [graded([g] * n, r.extra["trajectory_answers"]) for g, r in zip(golds, frac, strict=True)]
    return {
        "frac_curve": _curve(trajectory, tokens(frac), n), "full_curve": _curve(chain_verdicts(ctx, maj), tokens(maj), n),
        "half_acc": pct([v for row in by_depth[1] for v in row]), "chain_acc": pct([v for row in chains for v in row]),
    }  # fmt: skip


CALIBRATION_QUANTILE, CALIBRATION_PROBLEMS = 0.99, 50
"""Entropy-gated branching's threshold: this quantile of the model's own token entropy, measured on this many
``multistep`` *train* problems (never the row's test problems), one chain each at the row's sampling."""


def calibrated_threshold(ctx: Ctx) -> float:
    """The ``CALIBRATION_QUANTILE`` of the model's token entropy (the engine's estimate, as the strategy sees it:
    vLLM's top-20) over one chain per train problem. A fixed threshold does not carry between models: 1.5 nats
    (SmolLM2's in ``bench/strategies.py``) was above the organism's p99 (0.70) and 91 of 100 chains never
    reached it."""
    from evals.benchmarks import load_problems
    from reasoner.prompts import render
    from reasoner.strategies.base import derive

    if ctx.engine is None:
        ctx.engine = ctx.load()
    problems = load_problems("multistep", "train", limit=CALIBRATION_PROBLEMS)
    prompts = [render(ctx.engine.tokenizer, p.question) for p in problems]
    groups = ctx.engine.generate(prompts, derive(ctx.spec, n=1), entropies=True)
    values = sorted(e for g in groups for c in g for e in (c.entropies or ()))
    return values[int(CALIBRATION_QUANTILE * (len(values) - 1))]


def row_entropy_branch(ctx: Ctx) -> dict[str, Any]:
    """Entropy-gated branching (threshold: the model's calibrated p99 token entropy, ``calibrated_threshold``;
    up to 7 branches, min gap 8: M = 8 candidates) vs 8 parallel samples (majority@8's): pass@8 (any candidate
    correct), generated tokens, branch points per level."""
    threshold = round(calibrated_threshold(ctx), 3)
    eb, _ = ctx.run("entropy-branch", {"threshold": str(threshold), "max_branches": "7", "min_gap": "8"})
    maj, _ = ctx.run(*MAJ8)
    eb_pass = [
        any(graded([p.answer] * len(r.extra["answers"]), r.extra["answers"]))
        for p, r in zip(ctx.problems, eb, strict=True)
    ]
    levels: dict[str, list[int]] = defaultdict(list)
    for p, r in zip(ctx.problems, eb, strict=True):
        levels[str(p.meta["level"])].append(len(r.extra["branch_points"]))
    return {
        "eb_pass": pct(eb_pass), "par_pass": pct([any(v) for v in chain_verdicts(ctx, maj)]),
        "eb_tokens": tokens(eb), "par_tokens": tokens(maj),
        "branches_by_level": {k: statistics.mean(v) for k, v in sorted(levels.items())},
        "threshold": threshold,
    }  # fmt: skip


def _x(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def show_short_m(m: dict[str, Any]) -> str:
    return (f"maj {m['maj_acc']:.1f}%; s1 {m['s1_acc']:.1f}% at {_x(m['s1_thinking'], m['maj_thinking'])} think; "
            f"s3 {m['s3_acc']:.1f}% at {_x(m['s3_wall'], m['maj_wall'])} wall; shortest {m['shortest_acc']:.1f}% "
            f"vs longest {m['longest_acc']:.1f}%")  # fmt: skip


def show_budget(m: dict[str, Any]) -> str:
    """Accuracy and mean thinking tokens per response at each budget, then unlimited."""
    parts = [f"B={k}: {v['acc']:.1f}% ({v['mean_thinking']:.0f} think)" for k, v in m.items() if k != "none"]
    return "; ".join([*parts, f"unlimited: {m['none']['acc']:.1f}% ({m['none']['mean_thinking']:.0f} think)"])


def show_deer(m: dict[str, Any]) -> str:
    return f"{m['deer_acc']:.1f}% vs {m['full_acc']:.1f}% at {_x(m['deer_tokens'], m['full_tokens'])} tokens"


def show_deepconf(m: dict[str, Any]) -> str:
    return (f"low {m['dc_acc']:.1f}% vs {m['maj_acc']:.1f}% at {_x(m['dc_tokens'], m['maj_tokens'])} tokens; high "
            f"{m['high_acc']:.1f}% at {_x(m['high_tokens'], m['maj_tokens'])}")  # fmt: skip


def show_fractured(m: dict[str, Any]) -> str:
    from fidelity_targets import matched_budgets

    frac, full = m["frac_curve"], m["full_curve"]
    return (f"matched {matched_budgets(frac, full)}/{len(full)} budgets (pass@1 {full[0][1]:.0f}->@8 {full[-1][1]:.0f} "
            f"full, @8 {frac[-1][1]:.0f} frac at {_x(frac[-1][0], full[-1][0])}); 50% depth {m['half_acc']:.1f}% vs "
            f"chain {m['chain_acc']:.1f}%")  # fmt: skip


def show_entropy(m: dict[str, Any]) -> str:
    levels = " ".join(f"L{k}:{v:.1f}" for k, v in m["branches_by_level"].items())
    return (f"threshold {m['threshold']:.2f} nats (p99): pass@8 {m['eb_pass']:.1f}% vs {m['par_pass']:.1f}% at "
            f"{_x(m['eb_tokens'], m['par_tokens'])} tokens; branches {levels}")  # fmt: skip


ROWS: dict[str, tuple[Callable[[Ctx], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "short-m@k": (row_short_m, show_short_m),
    "budget forcing": (row_budget_forcing, show_budget),
    "DEER early exit": (row_deer, show_deer),
    "DeepConf online": (row_deepconf, show_deepconf),
    "fractured": (row_fractured, show_fractured),
    "entropy-branch": (row_entropy_branch, show_entropy),
}
"""Implemented rows: name -> (measure on a Ctx, one-line summary of the measured numbers)."""
ROW_VERSION = 3
"""Part of every row's cache key: bump when a row's workload changes."""


def cache_path(out: Path, row: str, settings: dict[str, Any]) -> Path:
    digest = hashlib.sha1(json.dumps([row, settings, ROW_VERSION], sort_keys=True).encode()).hexdigest()[:10]
    return out / f"{row.replace(' ', '_').replace('@', 'at')}-{digest}.json"


def ready_model(args: argparse.Namespace) -> str:
    """The organism's directory, built if needed (``build_variant``), in a child process with this shell's thread
    settings (``cpu_env``'s one thread would slow a build; bench/organism.py ``ready_model``)."""
    cmd = [sys.executable, __file__, "--ready-only", "--organism-seed", str(args.organism_seed),
           "--p-flip", str(args.p_flip), "--levels", ",".join(map(str, args.levels))]  # fmt: skip
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]


def table(lines: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in lines) for i in range(4)]
    return "\n".join(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--only", action="append", choices=list(ROWS), help="run this row (repeatable). Default: all"
    )
    ap.add_argument("--problems", type=int, default=100, help="held-out test problems. Default: %(default)s")
    ap.add_argument("--out", type=Path, default=Path("runs/fidelity"), help="row cache. Default: %(default)s")
    ap.add_argument("--fresh", action="store_true", help="recompute the chosen rows even when cached")
    ap.add_argument(
        "--organism-seed", type=int, default=0, help="the organism's data seed. Default: %(default)s"
    )
    ap.add_argument(
        "--p-flip", type=float, default=0.115, help="its re-check error rate. Default: %(default)s"
    )
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3, 4],
                    help="its levels (and the test problems'). Default: 1,2,3,4")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="sampling seed. Default: %(default)s")
    ap.add_argument(
        "--max-tokens", type=int, default=700, help="max tokens per request. Default: %(default)s"
    )
    ap.add_argument("--chunk", type=int, default=10, help="problems per strategy batch. Default: %(default)s")
    ap.add_argument("--ready-only", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from reasoner.organism.build import build_variant

    if args.ready_only:
        print(build_variant(args.organism_seed, args.p_flip, args.levels))
        return
    settings = {"organism": [args.organism_seed, args.p_flip, args.levels], "problems": args.problems,
                "seed": args.seed, "temperature": 1.0, "max_tokens": args.max_tokens}  # fmt: skip
    from evals.benchmarks import load_problems

    problems = load_problems("multistep", "test", n=args.problems, seed=0, levels=args.levels)
    spec = SampleSpec(max_tokens=args.max_tokens, temperature=1.0, seed=args.seed)

    def load() -> Any:
        model = ready_model(args)
        cpu_env()
        from reasoner.engines import load_engine

        engine = load_engine("vllm", model, dtype="float32", seed=args.seed)
        engine.generate([[1, 2, 3]], SampleSpec(n=2, max_tokens=8))  # warm-up
        return engine

    ctx, out = Ctx(problems, spec, args.chunk, load), [("row", "measured", "target", "met?")]
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for row in args.only or list(ROWS):
            path, (measure, show) = cache_path(args.out, row, settings), ROWS[row]
            if path.exists() and not args.fresh:
                measured = json.loads(path.read_text())["measured"]
            else:
                t = time.perf_counter()
                measured = measure(ctx)
                row_s = time.perf_counter() - t
                path.write_text(
                    json.dumps(
                        {"row": row, "settings": settings, "row_s": row_s, "measured": measured}, indent=1
                    )
                )
                log.info("%s: %.0fs -> %s", row, row_s, path)
            text, verdict = TARGETS[row]
            out.append((row, show(measured), text, verdict(measured)))
    finally:
        if ctx.engine is not None:
            ctx.engine.close()
    if not args.only:
        out += [(row, "-", text, NOT_YET) for row, text in PENDING.items()]
    print(
        f"fidelity: {len(problems)} multistep test problems, organism {settings['organism']}, T=1.0\n"
        + table(out)
    )


if __name__ == "__main__":
    from reasoner.wiring import wire

    wire()
    main()
