"""The fidelity table's inference-time rows (``bench/fidelity.py``): short-m@k, budget forcing, DEER, DeepConf,
fractured sampling and entropy-gated branching, each against its baseline on the same problems and seeds."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from common import thinking
from fidelity_common import Ctx, chain_verdicts, final_acc, graded, pct, times, tokens

BUDGETS = (32, 64, 128, 256)
"""Thinking budgets of the budget-forcing row (tokens), against unlimited thinking."""
SAMPLES = 4
"""Seeds per problem for single-answer rows (budget forcing, DEER): accuracy is avg@SAMPLES."""
MAJ8 = ("majority", {"k": "8"})


def row_short_m(ctx: Ctx) -> dict[str, Any]:
    """majority@8 vs short-1@8 and short-3@8 (live aborts); shortest- vs longest-thinking chain of majority's 8."""
    maj, maj_wall = ctx.run(*MAJ8)
    s1, s1_wall = ctx.run("short-m@k", {"k": "8", "m": "1"})
    s3, s3_wall = ctx.run("short-m@k", {"k": "8", "m": "3"})
    from reasoner.strategies.voting import extract_all, vote

    shortest, longest, vote3_short, vote3_first = [], [], [], []
    for r, verdicts in zip(maj, chain_verdicts(ctx, maj), strict=True):
        lengths = [thinking(c) for c in r.completions]
        shortest.append(verdicts[lengths.index(min(lengths))])
        longest.append(verdicts[lengths.index(max(lengths))])
        answers = extract_all([c.text for c in r.completions])
        order = sorted(range(len(lengths)), key=lambda j: (lengths[j], j))
        vote3_short.append(vote([answers[j] for j in order[:3]]).answer)
        vote3_first.append(vote(answers[:3]).answer)
    golds = [p.answer for p in ctx.problems]
    return {
        "vote3_shortest_acc": pct(graded(golds, vote3_short)), "vote3_first_acc": pct(graded(golds, vote3_first)),
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
    last = [last_value(ctx.engine.tokenizer, c.token_ids[: r.extra["cuts"][j][1]])
            for r in frac for j, c in enumerate(r.completions[:n])]  # fmt: skip
    forced = [a for r in frac for a in r.extra["depth_answers"][1]]
    return {
        "frac_curve": _curve(trajectory, tokens(frac), n), "full_curve": _curve(chain_verdicts(ctx, maj), tokens(maj), n),
        "half_acc": pct([v for row in by_depth[1] for v in row]), "chain_acc": pct([v for row in chains for v in row]),
        "half_last_acc": pct(graded([g for g in golds for _ in range(n)], last)),
        "half_forced_is_last": pct([a is not None and a == b for a, b in zip(forced, last, strict=True)]),
    }  # fmt: skip


def last_value(tokenizer: Any, ids: Sequence[int]) -> str | None:
    """The last result the organism wrote in ``ids`` (the value after the last ``=``; its steps read
    "12 * 3 = 36"), None when it wrote none: what a model that answers with its latest value says at a cut."""
    found = re.findall(r"=\s*(-?\d+)", tokenizer.decode(list(ids), skip_special_tokens=True))
    return found[-1] if found else None


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
    at_points: Counter[str] = Counter()  # the token the main path wrote where it branched
    for p, r in zip(ctx.problems, eb, strict=True):
        levels[str(p.meta["level"])].append(len(r.extra["branch_points"]))
        ids = r.completions[0].token_ids
        at_points.update(ctx.engine.tokenizer.decode([ids[t]]).strip() for t in r.extra["branch_points"])
    return {
        "eb_pass": pct(eb_pass), "par_pass": pct([any(v) for v in chain_verdicts(ctx, maj)]),
        "eb_tokens": tokens(eb), "par_tokens": tokens(maj),
        "branches_by_level": {k: statistics.mean(v) for k, v in sorted(levels.items())},
        "threshold": threshold,
        "branch_tokens": {k: 100 * v / max(at_points.total(), 1) for k, v in at_points.most_common(4)},
    }  # fmt: skip


def show_short_m(m: dict[str, Any]) -> str:
    return (f"maj {m['maj_acc']:.1f}%; s1 {m['s1_acc']:.1f}% at {times(m['s1_thinking'], m['maj_thinking'])} think; "
            f"s3 {m['s3_acc']:.1f}% at {times(m['s3_wall'], m['maj_wall'])} wall; shortest {m['shortest_acc']:.1f}% "
            f"vs longest {m['longest_acc']:.1f}% (of majority's 8 chains: vote of the 3 shortest "
            f"{m['vote3_shortest_acc']:.1f}%, of the first 3 {m['vote3_first_acc']:.1f}%)")  # fmt: skip


def show_budget(m: dict[str, Any]) -> str:
    """Accuracy and mean thinking tokens per response at each budget, then unlimited."""
    parts = [f"B={k}: {v['acc']:.1f}% ({v['mean_thinking']:.0f} think)" for k, v in m.items() if k != "none"]
    return "; ".join([*parts, f"unlimited: {m['none']['acc']:.1f}% ({m['none']['mean_thinking']:.0f} think)"])


def show_deer(m: dict[str, Any]) -> str:
    return (
        f"{m['deer_acc']:.1f}% vs {m['full_acc']:.1f}% at {times(m['deer_tokens'], m['full_tokens'])} tokens"
    )


def show_deepconf(m: dict[str, Any]) -> str:
    return (f"low {m['dc_acc']:.1f}% vs {m['maj_acc']:.1f}% at {times(m['dc_tokens'], m['maj_tokens'])} tokens; high "
            f"{m['high_acc']:.1f}% at {times(m['high_tokens'], m['maj_tokens'])}")  # fmt: skip


def show_fractured(m: dict[str, Any]) -> str:
    from fidelity_targets import matched_budgets

    frac, full = m["frac_curve"], m["full_curve"]
    return (f"matched {matched_budgets(frac, full)}/{len(full)} budgets (pass@1 {full[0][1]:.0f}->@8 {full[-1][1]:.0f} "
            f"full, @8 {frac[-1][1]:.0f} frac at {times(frac[-1][0], full[-1][0])}); 50% depth {m['half_acc']:.1f}% vs "
            f"chain {m['chain_acc']:.1f}% (the last value written before the 50% cut is the answer in "
            f"{m['half_last_acc']:.1f}%; the forced answer is that value in {m['half_forced_is_last']:.1f}%)")  # fmt: skip


def show_entropy(m: dict[str, Any]) -> str:
    levels = " ".join(f"L{k}:{v:.1f}" for k, v in m["branches_by_level"].items())
    return (f"threshold {m['threshold']:.2f} nats (p99): pass@8 {m['eb_pass']:.1f}% vs {m['par_pass']:.1f}% at "
            f"{times(m['eb_tokens'], m['par_tokens'])} tokens; branches {levels}; branched at "
            + ", ".join(f"{k!r} {v:.0f}%" for k, v in m["branch_tokens"].items()))  # fmt: skip


DECODE_ROWS: dict[str, tuple[Callable[[Ctx], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "short-m@k": (row_short_m, show_short_m),
    "budget forcing": (row_budget_forcing, show_budget),
    "DEER early exit": (row_deer, show_deer),
    "DeepConf online": (row_deepconf, show_deepconf),
    "fractured": (row_fractured, show_fractured),
    "entropy-branch": (row_entropy_branch, show_entropy),
}
"""Inference-time rows: name -> (measure on a Ctx, one-line summary of the measured numbers)."""
