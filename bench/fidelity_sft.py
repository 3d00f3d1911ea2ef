"""The fidelity table's SFT rows (``bench/fidelity.py``): shortest-correct SFT and DAP distillation.

Both rows continue the organism's own SFT (``recipes/sft_overthink.yaml``, ``kind: sft``, run by ``Ctx.trained``
from the organism's weights) on a distilled dataset and evaluate the saved student on the row's held-out test
problems (``held_out``: avg@4 accuracy, mean response tokens, both per level). Every arm of a row has the same
init, recipe, steps, learning rate and seed (``SFT_OVERRIDES``); only the data differs. Distillation uses the
organism's ``train`` split (never the test problems).

shortest-correct SFT (Munkhbat et al. 2025, arXiv 2502.20122: self-training on the shortest of N correct samples
shortens reasoning while keeping accuracy): the organism samples ``SC_SAMPLES`` completions (T=1.0) for each of
``SC_PROBLEMS`` train problems; each problem with a correct, finished sample gives one row to each of three
datasets, keeping its shortest, a random (seeded) or its longest correct sample (``reasoner.distill``'s
``select_record``), so the three sets cover the same problems. Claim: accuracy shortest >= random >= longest,
response lengths in the same order (shortest shortest).

DAP distillation (Wu et al. 2025, arXiv 2505.19716): a teacher rates each problem's difficulty and rewrites its
long trace to that level's token budget; rewrites are verified against the gold. The paper's teacher
(DeepSeek-R1) cannot run here, and the organism cannot follow DAP's English rating and rewrite prompts, so the
teacher is scripted (``OrganismTeacher``). What is real: the original traces (the organism's own training data:
the first ``DAP_TRACES`` rows ``organism.build.sft_rows`` writes for its seed and re-check error rate, with their
redundant and sometimes falsely "correcting" re-checks), DAP's pipeline (``distill_dap``: the prompts, the
``Difficulty:`` cue and ``parse_difficulty`` of the reply, the per-level budgets and caps, verification against
the gold, the keep/reject accounting, ``dap_rows``), the SFT runs and the evaluation. What is scripted: the
teacher's two replies. It rates a problem by its number of operations (2: easy, 3: medium, 4-5: hard; the cue a
frontier teacher would use) and rewrites a trace by keeping its first chain and then its re-checks, whole and in
order, while the rewrite fits the budget (a teacher that spends what it is given: DAP's premise is that a
rewrite's length follows its level's budget), ending with the last value it kept. It never looks at the gold: a
kept re-check that falsely "corrects" a step gives a wrong rewrite, which verification rejects (the original
trace is kept). Budgets (``DAP_BUDGETS``) are ``reasoner.distill``'s DAP defaults, 1:2:4 (256/512/1024 tokens),
scaled so that the easy budget is a level-1 minimal solution (38-40 organism tokens): easy and medium rewrites
are the minimal solution, hard ones keep one re-check.

Baseline "the original traces": the same continued SFT on the original traces of the same problems. The organism
itself was trained from scratch on such traces (it is a student of the original traces); continuing it on them
for the same steps makes the comparison one of data only (a from-scratch pair of students would cost two organism
builds, ~2 x 5 min, for the same contrast).

Measured (2026-12-06, default organism, 100 test problems, both rows in one run: 354 s + 161 s on 2 shared
cores): shortest-correct SFT met (shortest 87.8% / 61 tokens, random 80.2% / 135, longest 72.0% / 221; the
organism 75.5% / 135). DAP missed on length only: 0.59x the original student's tokens (87 vs 147) at +15.8
points, length rising with level (40, 52, 117, 140). The student follows its data (87 tokens, the original
student 147 on 142), and the data itself is 0.61x: the organism's traces are only 2.5x their minimal solution
(1.5 re-checks on average), so the floor, every rewrite minimal, is 0.41x (measured: ``hard`` budget 80); DAP's
1:2:4 budgets let the hard half (levels 3-4, 61% of the original tokens) keep one re-check (174 -> 128 tokens),
and 95 of the 1000 hard rewrites kept a false correction, were rejected, and left the long original in the data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fidelity_common import Ctx, acc_len, times

from reasoner.engines.fake import FakeEngine
from reasoner.prompts import ANSWER_CUE, THINK_END, THINK_START

SFT_RECIPE = "sft_overthink"
"""The organism's own SFT recipe; every arm continues it from the organism's weights."""
SFT_LR = 3e-4
"""Constant learning rate of every arm (the organism was built at 7e-4, cosine to 0)."""
SFT_OVERRIDES = [f"trainer.learning_rate={SFT_LR}", "trainer.lr_scheduler_type=constant", "trainer.warmup_steps=0",
                 "trainer.train_sampling_strategy=random", "trainer.logging_steps=10", "trainer.seed=0"]  # fmt: skip
"""What every SFT arm of both rows shares (the steps are per row). Random batches, not the build recipe's
``group_by_length``: its sampler orders each mega-batch (50 batches) from the longest rows to the shortest, and at
a constant learning rate the last updates then pull the student toward the shortest traces (measured: 250 steps on
the original traces left the student at 102 response tokens against the organism's 135, its loss cycling every 50
steps from 0.04 down to 0.006); the organism's own build hides this by decaying the rate to 0."""
SC_PROBLEMS, SC_SAMPLES, SC_STEPS = 256, 8, 96
"""shortest-correct SFT: train problems, samples per problem, SFT steps (batch 8: ~3 epochs of ~250 rows)."""
DAP_TRACES, DAP_STEPS = 2000, 250
"""DAP: original traces (problems) distilled, SFT steps (batch 8: one epoch)."""
DAP_BUDGETS = {"easy": 40, "medium": 80, "hard": 160}
"""DAP's default budgets (256/512/1024 tokens) x 40/256: a level-1 minimal solution fits the easy budget."""
RATING = {2: "easy", 3: "medium", 4: "hard", 5: "hard"}
"""The scripted teacher's rating: operations in the question -> DAP level."""
RECHECK = "Wait, let me double-check."


def sft(ctx: Ctx, label: str, data: Path, steps: int) -> dict[str, Any]:
    """Continued SFT of the organism on ``data`` for ``steps`` steps (``SFT_OVERRIDES``), evaluated."""
    return ctx.trained(label, SFT_RECIPE, [f"data.path={data}", f"trainer.max_steps={steps}", *SFT_OVERRIDES])


def _organism(ctx: Ctx) -> tuple[int, float, list[int]]:
    seed, p_flip, levels = ctx.settings.get("organism", [0, 0.115, [1, 2, 3, 4]])
    return int(seed), float(p_flip), [int(x) for x in levels]


def selected_sets(ctx: Ctx) -> dict[str, Any]:
    """The three shortest/random/longest-correct datasets (cached under ``out/data``): {select: dir, "stats"}."""
    from reasoner.distill import SELECTS, select_record, shortest_rows, shortest_stats, write_dataset
    from reasoner.organism.problems import generate_multistep
    from reasoner.prompts import render
    from reasoner.strategies.base import derive
    from reasoner.verify import grade_many

    seed, _, levels = _organism(ctx)
    root = ctx.out / "data" / f"selected-{ctx.key('selected', SC_PROBLEMS, SC_SAMPLES)}"
    dirs = {s: root / s for s in SELECTS}
    if not all(ctx.cached(d / "stats.json") for d in dirs.values()):
        problems = generate_multistep(SC_PROBLEMS, seed=seed, levels=levels, split="train")
        if ctx.engine is None:
            ctx.engine = ctx.load()
        spec, groups = derive(ctx.spec, n=SC_SAMPLES), []
        for lo in range(0, len(problems), 32):
            prompts = [render(ctx.engine.tokenizer, p.question) for p in problems[lo : lo + 32]]
            groups += ctx.engine.generate(prompts, spec)
        golds = [p.answer for p, g in zip(problems, groups, strict=True) for _ in g]
        verdicts = grade_many(golds, [c.text for g in groups for c in g])
        for select, out in dirs.items():
            records, i = [], 0
            for problem, group in zip(problems, groups, strict=True):
                records.append(select_record(problem, group, verdicts[i : i + len(group)], select, seed))
                i += len(group)
            write_dataset(out, shortest_rows(records), shortest_stats(records) | {"select": select})
            ctx.made.add(out / "stats.json")
    return dict(dirs) | {"stats": {s: json.loads((d / "stats.json").read_text()) for s, d in dirs.items()}}


def row_shortest(ctx: Ctx) -> dict[str, Any]:
    """SFT on the shortest, a random and the longest correct sample of the same problems (module docstring):
    held-out accuracy and length of each student, the organism before, and the datasets' mean lengths."""
    sets = selected_sets(ctx)
    arms = {s: sft(ctx, f"sft-{s}", sets[s], SC_STEPS) for s in ("shortest", "random", "longest")}
    stats = sets["stats"]
    return {s: run["eval"] for s, run in arms.items()} | {
        "base": ctx.evaluated("base", ctx.model()),
        "data_tokens": {s: stats[s]["mean_tokens_kept"] for s in arms},
        "rows": stats["shortest"]["kept"],
        "steps": SC_STEPS,
        "train_s": sum(run["train_s"] for run in arms.values()),
    }


def _blocks(trace: str) -> tuple[list[str], list[list[str]]]:
    """A trace's first chain (its step lines) and its re-check blocks (each: the cue, step lines, verdict)."""
    body = trace.split(THINK_START, 1)[-1].split(THINK_END, 1)[0].strip("\n")
    lines = body.split("\n")
    starts = [i for i, line in enumerate(lines) if line == RECHECK]
    chain = lines[: starts[0]] if starts else lines
    ends = [*starts[1:], len(lines)] if starts else []
    blocks = [lines[a:b] for a, b in zip(starts, ends, strict=True)]
    return chain, blocks


def _last_value(lines: Sequence[str]) -> str:
    """The last value a step line states (``... = 36``)."""
    values = [m.group(1) for line in lines if (m := re.search(r"= (-?\d+)$", line))]
    if not values:
        raise ValueError(f"no step line in {lines!r}")
    return values[-1]


def compress(trace: str, budget: int, count: Callable[[str], int]) -> str:
    """The scripted rewrite: the trace's first chain, then its re-check blocks in order while ``count`` of the
    rewrite stays <= ``budget`` (the chain alone when nothing fits), boxed at the last value kept."""
    chain, blocks = _blocks(trace)

    def text(k: int) -> str:
        lines = chain + [line for block in blocks[:k] for line in block]
        return f"{THINK_START}\n" + "\n".join(lines) + f"\n{THINK_END}{ANSWER_CUE}{_last_value(lines)}}}."

    k = 0
    while k < len(blocks) and count(text(k + 1)) <= budget:
        k += 1
    return text(k)


class OrganismTeacher(FakeEngine):
    """A scripted stand-in for DAP's frontier teacher (module docstring): it answers ``distill_dap``'s rating
    prompt with ``RATING`` of the question's operation count and its rewrite prompt with ``compress`` of the
    trace at the prompt's budget; replies are tokenized with the organism's tokenizer (lengths in its tokens,
    EOS counted) and obey the request's ``max_tokens`` like any engine. It writes no traces (every row has one)."""

    def __init__(self, tokenizer: Any):
        super().__init__(self.reply, tokenizer)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False)) + 1  # + EOS

    def reply(self, prompt: str, j: int) -> str:
        from reasoner.distill.dap import RATE_CUE

        if prompt.rstrip().endswith(RATE_CUE):
            question = prompt.split("Problem:\n", 1)[1]
            return " " + RATING[len(re.findall(r"Step [A-E]:", question.split(RATE_CUE)[0]))]
        rewrite = re.search(
            r"use at most (\d+) tokens.*?Long solution:\n(.*)\n\nConcise solution:", prompt, re.S
        )
        if rewrite is None:
            raise ValueError(f"OrganismTeacher: not a DAP rating or rewrite prompt: {prompt[:200]!r}")
        return compress(rewrite.group(2), int(rewrite.group(1)), self.count)


def dap_sets(ctx: Ctx) -> dict[str, Any]:
    """The original traces and their DAP rewrites as SFT datasets (cached under ``out/data``), with DAP's stats."""
    import datasets
    from transformers import AutoTokenizer

    from reasoner.distill import (
        DAPConfig,
        RecordLog,
        TraceRow,
        dap_rows,
        dap_stats,
        distill_dap,
        write_dataset,
    )
    from reasoner.organism.build import sft_rows
    from reasoner.organism.problems import generate_multistep
    from reasoner.organism.traces import TraceConfig

    seed, p_flip, levels = _organism(ctx)
    root = ctx.out / "data" / f"dap-{ctx.key('dap', DAP_TRACES, DAP_BUDGETS, RATING)}"
    original, dap = root / "original", root / "dap"
    config = DAPConfig(budgets=DAP_BUDGETS)
    if not (ctx.cached(original / "state.json") and ctx.cached(dap / "stats.json")):
        rows = sft_rows(DAP_TRACES, seed, levels, TraceConfig(p_flip=p_flip))
        problems = generate_multistep(DAP_TRACES, seed=seed, levels=levels, split="train")
        assert [p.id for p in problems] == [r["id"] for r in rows]
        datasets.Dataset.from_list(rows).save_to_disk(str(original))
        ctx.made.add(original / "state.json")
        traces = [TraceRow(p, r["completion"][0]["content"]) for p, r in zip(problems, rows, strict=True)]
        teacher = OrganismTeacher(AutoTokenizer.from_pretrained(ctx.model()))
        records = distill_dap(teacher, traces, config, RecordLog(dap / "log", {"budgets": DAP_BUDGETS}, fresh=True),
                              batch_size=64)  # fmt: skip
        write_dataset(dap, dap_rows(records, config), dap_stats(records, config))
        ctx.made.add(dap / "stats.json")
    return {"original": original, "dap": dap, "stats": json.loads((dap / "stats.json").read_text())}


def row_dap(ctx: Ctx) -> dict[str, Any]:
    """SFT on DAP's rewrites vs on the original traces of the same problems (module docstring): held-out
    accuracy, length and length per level of both students, and DAP's data statistics per level."""
    sets = dap_sets(ctx)
    original, dap = (sft(ctx, f"dap-{k}", sets[k], DAP_STEPS) for k in ("original", "dap"))
    stats = sets["stats"]
    keep = ("problems", "rewritten", "kept_incorrect", "kept_truncated", "kept_longer", "tokens_before_mean",
            "tokens_after_mean")  # fmt: skip
    return {"original": original["eval"], "dap": dap["eval"], "base": ctx.evaluated("base", ctx.model()),
            "data": {k: {f: v[f] for f in keep} for k, v in [*stats["levels"].items(), ("all", stats["overall"])]},
            "steps": DAP_STEPS, "train_s": original["train_s"] + dap["train_s"]}  # fmt: skip


def show_shortest(m: dict[str, Any]) -> str:
    arms = "; ".join(
        f"{s} {acc_len(m[s])} (data {m['data_tokens'][s]:.0f})" for s in ("shortest", "random", "longest")
    )
    return f"organism {acc_len(m['base'])}; after {m['steps']} SFT steps on {m['rows']} rows: {arms}"


def show_dap(m: dict[str, Any]) -> str:
    o, d = m["original"], m["dap"]
    levels = " ".join(f"L{k}:{v['length']:.0f}/{v['acc']:.0f}%" for k, v in d["by_level"].items())
    data = m["data"]["all"]
    return (f"original {acc_len(o)}; DAP {acc_len(d)}: {times(d['length'], o['length'])} tokens, "
            f"{d['acc'] - o['acc']:+.1f} points; DAP by level {levels}; data {data['tokens_before_mean']:.0f} -> "
            f"{data['tokens_after_mean']:.0f} tok, {data['rewritten']}/{data['problems']} rewritten")  # fmt: skip


SFT_ROWS: dict[str, tuple[Callable[[Ctx], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "shortest-correct SFT": (row_shortest, show_shortest),
    "DAP distillation": (row_dap, show_dap),
}
"""SFT rows: name -> (measure on a Ctx, one-line summary of the measured numbers)."""
