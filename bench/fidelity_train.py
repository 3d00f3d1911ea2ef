"""The fidelity table's RL rows (``bench/fidelity.py``): DLER, its ablations, Difficulty-Aware DLER and the
update-selective merge, each trained from the organism and evaluated on the row's held-out problems.

Every run is ``recipes/dler_overthinker.yaml`` (DLER on the organism: truncation cap 84, batch-wise normalisation,
clip-higher 0.28, dynamic sampling, 4 prompts x 8 samples, lr 1e-4, seed 0) for ``DLER_STEPS`` steps with one
change per arm, so each arm differs from DLER only in what it tests. Runs are cached in ``--out``/train
(``Ctx.trained``): the DLER run is trained once and shared by the rows that compare against it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from fidelity_common import Ctx, acc_len, times

DLER_RECIPE, DLER_STEPS = "dler_overthinker", 100
"""The DLER recipe on the organism and its steps (``bench/organism.py`` measured 0.46x length at +2.7 points)."""
ABLATIONS = {
    "group norm": ["advantages.normalize=group"],
    "no clip-higher": ["trainer.epsilon_high=0.2"],
    "no dynamic sampling": ["advantages.dynamic_sampling.enabled=false"],
}
"""DLER's ablations (arXiv 2510.15110, section 4): each removes one of DLER's ingredients, alone."""
DA_DLER = [
    "difficulty.track=true",
    "rewards=[{name: difficulty_truncation, params: {max_length: 84, min_length: 42}}]",
]
"""Difficulty-Aware DLER: a prompt with pass rate p is truncated at round(84 - 42 p) tokens (``length_caps.da_cap``):
DLER's 84 when never solved, half of it when always solved. p is the prompt's running pass rate where the
trainer has seen it before, else the pass rate of its current group of 8 (``rewards.DifficultyTruncation``):
in 100 steps of 4 prompts out of 2,000 few prompts come back, and with the running rate alone (unseen: 84) the
first run's mean cap stayed at 84 for 80 of its 100 steps, which made it DLER again."""
MERGE_KEEP = 0.3
"""Update-selective merge: the fraction of DLER's update (largest |delta| per tensor) merged into the organism."""


def dler(ctx: Ctx, extra: Sequence[str] = (), label: str = "dler") -> dict[str, Any]:
    """A DLER run (``DLER_RECIPE``, ``DLER_STEPS``) with ``extra`` overrides (cached by ``Ctx.trained``)."""
    return ctx.trained(label, DLER_RECIPE, [f"trainer.max_steps={DLER_STEPS}", *extra])


def row_dler(ctx: Ctx) -> dict[str, Any]:
    """DLER vs the organism before training: accuracy and mean response length on the held-out problems."""
    run = dler(ctx)
    return {"before": ctx.evaluated("base", ctx.model()), "after": run["eval"], "steps": run["steps"],
            "train_s": run["train_s"]}  # fmt: skip


def over_steps(history: Sequence[dict[str, Any]], key: str, parts: int = 4) -> list[float]:
    """``key``'s mean over each of ``parts`` equal windows of the training steps (a coarse curve)."""
    values = [float(r[key]) for r in history if r.get(key) is not None]
    if not values:
        return []
    size = max(len(values) // parts, 1)
    return [
        statistics.mean(values[i : i + size]) for i in range(0, size * parts, size) if values[i : i + size]
    ]


def _arm(run: dict[str, Any]) -> dict[str, Any]:
    h = run["history"]
    clipped = [float(r["clip_ratio/region_mean"]) for r in h if r.get("clip_ratio/region_mean") is not None]
    return {"acc": run["eval"]["acc"], "length": run["eval"]["length"], "steps": run["steps"],
            "max_clip_ratio": max(clipped, default=0.0),
            "entropy": over_steps(h, "entropy"), "train_length": over_steps(h, "completions/mean_length"),
            "train_reward": over_steps(h, "reward")}  # fmt: skip


def row_ablations(ctx: Ctx) -> dict[str, Any]:
    """DLER and each ablation (``ABLATIONS``), same cap, steps and seed: held-out accuracy and length, and the
    policy entropy, training length and reward over four windows of the steps."""
    arms = {"DLER": _arm(dler(ctx))}
    for name, extra in ABLATIONS.items():
        arms[name] = _arm(dler(ctx, extra, label=name.replace(" ", "-")))
    return arms


def row_da_dler(ctx: Ctx) -> dict[str, Any]:
    """Difficulty-Aware DLER (``DA_DLER``) vs DLER: held-out accuracy and mean length per level, and the floor
    below which no correct response goes: the minimal solution's length per level (``minimal_lengths``)."""
    return {"dler": dler(ctx)["eval"], "da": dler(ctx, DA_DLER, label="da-dler")["eval"],
            "minimal": minimal_lengths(ctx)}  # fmt: skip


def minimal_lengths(ctx: Ctx) -> dict[str, float]:
    """Mean tokens of the row's problems' minimal responses (zero re-checks: the organism's shortest correct
    solution, ``organism.traces.minimal_trace``, EOS not counted), per level."""
    from transformers import AutoTokenizer

    from reasoner.organism.problems import steps_of
    from reasoner.organism.traces import minimal_trace

    tok = AutoTokenizer.from_pretrained(ctx.model())
    by_level: dict[str, list[int]] = {}
    for p in ctx.problems:
        n = len(tok.encode(minimal_trace(steps_of(p)), add_special_tokens=False))
        by_level.setdefault(str(p.meta["level"]), []).append(n)
    return {k: statistics.mean(v) for k, v in sorted(by_level.items())}


def row_merge(ctx: Ctx) -> dict[str, Any]:
    """The organism, DLER, and their update-selective merge at ``MERGE_KEEP`` (``reasoner.train.merge``)."""
    from pathlib import Path

    from reasoner.train.merge import merge_models

    run = dler(ctx)
    out = Path(run["dir"]).with_name(Path(run["dir"]).name + f"-merge-{MERGE_KEEP:g}")
    if not ctx.cached(out / "config.json"):
        merge_models(ctx.model(), run["dir"], out, keep=MERGE_KEEP)
        ctx.made.add(out / "config.json")
    return {"base": ctx.evaluated("base", ctx.model()), "dler": run["eval"],
            "merged": ctx.evaluated(f"merge-{MERGE_KEEP:g}", str(out)), "keep": MERGE_KEEP}  # fmt: skip


def show_dler(m: dict[str, Any]) -> str:
    b, a = m["before"], m["after"]
    return (f"before {acc_len(b)}; after {m['steps']} steps {acc_len(a)}: length "
            f"{times(a['length'], b['length'])}, {a['acc'] - b['acc']:+.1f} points")  # fmt: skip


def show_ablations(m: dict[str, Any]) -> str:
    def one(name: str, a: dict[str, Any]) -> str:
        ent = "->".join(f"{e:.2f}" for e in a["entropy"]) or "n/a"
        return f"{name} {acc_len(a)}, entropy {ent}, max clipped {100 * a.get('max_clip_ratio', 0):.1f}%"

    return "; ".join(one(k, v) for k, v in m.items())


def show_da_dler(m: dict[str, Any]) -> str:
    def levels(e: dict[str, Any]) -> str:
        return " ".join(f"L{k}:{v['length']:.0f}/{v['acc']:.0f}%" for k, v in e["by_level"].items())

    floor = " ".join(f"L{k}:{v:.0f}" for k, v in m.get("minimal", {}).items())
    return f"len/acc by level: DLER {levels(m['dler'])}; DA {levels(m['da'])}" + (
        f"; minimal solution {floor}" if floor else ""
    )


def show_merge(m: dict[str, Any]) -> str:
    b, d, g = m["base"], m["dler"], m["merged"]
    kept = (b["length"] - g["length"]) / (b["length"] - d["length"]) if b["length"] != d["length"] else 0.0
    return (f"base {acc_len(b)}; DLER {acc_len(d)}; keep={m['keep']:g} {acc_len(g)}: {100 * kept:.0f}% of "
            "DLER's cut")  # fmt: skip


TRAIN_ROWS: dict[str, tuple[Callable[[Ctx], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "DLER": (row_dler, show_dler),
    "DLER ablations": (row_ablations, show_ablations),
    "Difficulty-Aware DLER": (row_da_dler, show_da_dler),
    "update-selective merge": (row_merge, show_merge),
}
"""RL rows: name -> (measure on a Ctx, one-line summary of the measured numbers)."""
