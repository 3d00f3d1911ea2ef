"""TokenSkip on the organism (issue [14] part 2): the gamma table.

    PYTHONPATH=. .venv/bin/python bench/tokenskip.py [--problems 100] [--train-problems 600] [--steps 750]
        [--gammas 1.0,0.8,0.6,0.5] [--out runs/tokenskip] [--fresh]

TokenSkip (Xia et al. 2025, arXiv 2502.12067) as ``reasoner distill tokenskip`` builds it: the organism
(``overthinker``) samples one trace (T=1.0) for each of ``--train-problems`` multistep ``train`` problems with
logprobs; its correct, finished traces are compressed by self-information (``reasoner.distill.tokenskip``) to
gamma in {1.0, 0.9, ..., 0.5}, one row per (trace, gamma), the gamma cue in the prompt. The organism's SFT is
continued on those rows like the fidelity table's SFT rows (``bench/fidelity_sft.py``: same init, constant lr
3e-4, random batches of 8, seed 0, ``--steps`` steps; ``recipes/sft_tokenskip.yaml``), and the student is
evaluated on ``--problems`` held-out ``test`` problems (levels 1-4) at each gamma of ``--gammas`` with the cue
(``reasoner.prompts.compression_question``): avg@4 accuracy at T=1.0, mean response and thinking tokens
(``fidelity_common.held_out``). The organism itself (plain prompt) is the reference row. Targets: length falls
monotonically with gamma; accuracy at 0.6 within 3 points of 1.0.

Scorer check (printed under the table, from the data): the fraction of the chain's computed values (the token
after `` =``) and of all reasoning tokens in the first chain vs in the re-checks that survive at each gamma,
under self-information and under a seeded random scorer.

Everything is cached under ``--out`` (data, the trained student, each evaluation): a rerun prints in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from common import cpu_env
from fidelity_common import Ctx, held_out

from reasoner.prompts import compression_question
from reasoner.types import SampleSpec

log = logging.getLogger("tokenskip")
LEVELS = [1, 2, 3, 4]
SFT_OVERRIDES = ["trainer.logging_steps=10", "trainer.seed=0"]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=100, help="held-out test problems. Default: %(default)s")
    ap.add_argument("--train-problems", type=int, default=600, help="train problems sampled for the data. "
                    "Default: %(default)s")  # fmt: skip
    ap.add_argument("--steps", type=int, default=750, help="SFT steps (batch 8). Default: %(default)s")
    ap.add_argument("--gammas", default="1.0,0.8,0.6,0.5", help="evaluated ratios. Default: %(default)s")
    ap.add_argument("--max-tokens", type=int, default=700, help="max tokens per sample. Default: %(default)s")
    ap.add_argument("--out", type=Path, default=Path("runs/tokenskip"), help="cache. Default: %(default)s")
    ap.add_argument("--fresh", action="store_true", help="recompute cached data, training and evaluations")
    return ap.parse_args()


def build_data(ctx: Ctx, n: int, max_tokens: int) -> Path:
    """``reasoner distill tokenskip`` on the organism's train problems (cached): the dataset directory."""
    from reasoner.distill import (
        RecordLog,
        TokenSkipConfig,
        distill_tokenskip,
        tokenskip_rows,
        tokenskip_stats,
    )
    from reasoner.distill.data import write_dataset
    from reasoner.organism.problems import generate_multistep

    out = ctx.out / "data" / f"tokenskip-{ctx.key('data', n, max_tokens)}"
    if ctx.cached(out / "stats.json"):
        return out
    if ctx.engine is None:
        ctx.engine = ctx.load()
    problems = generate_multistep(n, seed=0, levels=LEVELS, split="train")
    spec = SampleSpec(max_tokens=max_tokens, temperature=1.0, seed=0)
    config = TokenSkipConfig()
    records = RecordLog(out, {"n": n, "max_tokens": max_tokens}, fresh=ctx.fresh)
    done = distill_tokenskip(ctx.engine, problems, spec, records, config, batch_size=64)
    tok = ctx.engine.tokenizer
    write_dataset(out, tokenskip_rows(done, tok, config), tokenskip_stats(done, tok, config))
    ctx.made.add(out / "stats.json")
    return out


def evaluate(ctx: Ctx, model_dir: str, gammas: list[float]) -> dict[str, Any]:
    """``held_out`` of ``model_dir`` at each gamma (cued problems), one engine for all, each cached."""
    from reasoner.engines import load_engine

    out, engine = {}, None
    try:
        for gamma in gammas:
            path = ctx.out / "eval" / f"student-g{gamma:g}-{ctx.key('eval', model_dir, gamma)}.json"
            if not ctx.cached(path):
                if engine is None:
                    ctx.release()
                    engine = load_engine("vllm", model_dir, dtype="float32", seed=0)
                problems = [dataclasses.replace(p, question=compression_question(p.question, gamma))
                            for p in ctx.problems]  # fmt: skip
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(held_out(engine, problems, ctx.spec), indent=1))
                ctx.made.add(path)
            out[gamma] = json.loads(path.read_text())
    finally:
        if engine is not None:
            engine.close()
    return out


def scorer_check(data: Path, tokenizer: Any, gammas: list[float]) -> list[str]:
    """Survival of computed values (token after `` =``) and of first-chain vs re-check tokens per gamma, under
    self-information and a seeded random scorer."""
    from reasoner.distill import keep_indices

    traces = [
        t for line in (data / "records.jsonl").read_text().splitlines() for t in json.loads(line)["traces"]
    ]
    rng, lines = random.Random(0), []
    for name in ("self-information", "random"):
        parts = []
        for gamma in gammas:
            counts = {"values": [0, 0], "chain": [0, 0], "rechecks": [0, 0]}
            for t in traces:
                a, b = t["span"]
                pieces = [tokenizer.decode([i]) for i in t["token_ids"][a:b]]
                scores = t["scores"][a:b] if name != "random" else [rng.random() for _ in pieces]
                kept = set(keep_indices(scores, gamma))
                first = next((i for i, p in enumerate(pieces) if "Wait" in p), len(pieces))
                for i in range(len(pieces)):
                    groups = ["chain" if i < first else "rechecks"]
                    groups += ["values"] if i and pieces[i - 1].strip() == "=" else []
                    for g in groups:
                        counts[g][0] += i in kept
                        counts[g][1] += 1
            share = {k: v[0] / v[1] if v[1] else 0 for k, v in counts.items()}
            parts.append(f"g{gamma:g} values {share['values']:.0%} chain {share['chain']:.0%} "
                         f"re-checks {share['rechecks']:.0%}")  # fmt: skip
        lines.append(f"{name}: " + "; ".join(parts))
    return lines


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from evals.benchmarks import load_problems
    from reasoner.distill.tokenskip import GAMMAS
    from reasoner.organism.build import build_variant

    model = str(build_variant())  # the overthinker alias (cached)
    cpu_env()
    gammas = [float(g) for g in args.gammas.split(",")]
    problems = load_problems("multistep", "test", n=args.problems, seed=0, levels=LEVELS)
    spec = SampleSpec(max_tokens=args.max_tokens, temperature=1.0, seed=0)
    settings = {"organism": [0, 0.115, LEVELS], "problems": args.problems, "seed": 0, "temperature": 1.0,
                "max_tokens": args.max_tokens, "version": 1}  # fmt: skip

    def load() -> Any:
        from reasoner.engines import load_engine

        return load_engine("vllm", model, dtype="float32", seed=0)

    ctx = Ctx(
        problems, spec, 10, load, model=lambda: model, out=args.out, settings=settings, fresh=args.fresh
    )
    t0 = time.perf_counter()
    try:
        data = build_data(ctx, args.train_problems, args.max_tokens)
        base = ctx.evaluated("base", model)
        ctx.release()
        run = ctx.trained("tokenskip", "sft_tokenskip", [f"data.path={data}", f"trainer.max_steps={args.steps}",
                                                         *SFT_OVERRIDES])  # fmt: skip
        rest = evaluate(
            ctx, run["dir"], [g for g in gammas if g != 1.0]
        )  # 1.0: the plain prompt, run["eval"]
        evals = {g: run["eval"] if g == 1.0 else rest[g] for g in gammas}
    finally:
        ctx.release()
    stats = json.loads((data / "stats.json").read_text())
    from transformers import AutoTokenizer

    lines = [
        f"TokenSkip on the organism: {stats['traces']} correct traces of {stats['problems']} train problems x "
        f"{len(GAMMAS)} gammas = {stats['rows']} rows; {run['steps']} SFT steps ({run['train_s']:.0f} s); "
        f"{args.problems} held-out problems x 4 samples, T=1.0",  # fmt: skip
        "| model | gamma | accuracy | response tokens | thinking tokens | data thinking tokens |",
        "|---|---|---|---|---|---|",
        f"| organism | - | {base['acc']:.1f}% | {base['length']:.1f} | {base['thinking']:.1f} | - |",
    ]
    for g, e in evals.items():
        lines.append(f"| student | {g:g} | {e['acc']:.1f}% | {e['length']:.1f} | {e['thinking']:.1f} | "
                     f"{stats[f'think_tokens@{g:g}']:.1f} |")  # fmt: skip
    lengths = [evals[g]["length"] for g in sorted(evals, reverse=True)]
    mono = all(b < a for a, b in zip(lengths, lengths[1:], strict=False))
    lines.append(f"length falls monotonically with gamma: {'met' if mono else 'missed'}")
    if 1.0 in evals and 0.6 in evals:
        drop = evals[1.0]["acc"] - evals[0.6]["acc"]
        lines.append(
            f"accuracy gamma 0.6 vs 1.0: {-drop:+.1f} points ({'met' if drop <= 3 else 'missed'}: <= 3)"
        )
    lines += scorer_check(data, AutoTokenizer.from_pretrained(model), [0.8, 0.6, 0.5])
    lines.append(f"({time.perf_counter() - t0:.0f} s; cache {args.out})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
