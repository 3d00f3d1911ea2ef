"""TokenSkip on the organism (issue [14] part 2): the gamma table.

    PYTHONPATH=. .venv/bin/python bench/tokenskip.py [--problems 100] [--train-problems 600] [--steps 2000]
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
under self-information, a seeded random scorer and a reference LM's self-information (``--reference-scorer``,
Selective Context's setting; on the first ``--reference-problems`` problems' traces: ~3 s per trace on 2 CPUs).

``--scorer trained``: importance is the keep probability of the trained scorer (``reasoner.distill.
trained_scorer``, LLMLingua-2's mould, arXiv 2403.12968): the organism samples ``--label-samples`` traces
(T=1.0, seed 1) on the first ``--label-problems`` train problems, each correct trace's reasoning tokens are
labelled by their alignment onto the problem's shortest correct trace, and the scorer is fitted on 80% of those
problems (held-out token AUROC printed). The SFT rows compress the same records as the self-information run
(whose cache keys are unchanged); only the scores differ.

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
VOCAB = 556
"""The organism's tokenizer size (``len(tokenizer)``): the trained scorer's id range."""
SFT_OVERRIDES = ["trainer.logging_steps=10", "trainer.seed=0"]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=100, help="held-out test problems. Default: %(default)s")
    ap.add_argument("--train-problems", type=int, default=600, help="train problems sampled for the data. "
                    "Default: %(default)s")  # fmt: skip
    ap.add_argument("--steps", type=int, default=2000, help="SFT steps (batch 8). Default: %(default)s")
    ap.add_argument("--gammas", default="1.0,0.8,0.6,0.5", help="evaluated ratios. Default: %(default)s")
    ap.add_argument("--max-tokens", type=int, default=700, help="max tokens per sample. Default: %(default)s")
    ap.add_argument("--out", type=Path, default=Path("runs/tokenskip"), help="cache. Default: %(default)s")
    ap.add_argument("--force-tokens", default="", help="comma-separated token texts always kept (TokenSkip's "
                    "LLaMA-3 setting: Step,:). Default: none")  # fmt: skip
    ap.add_argument(
        "--force-digits", action="store_true", help="always keep digit tokens (force_reserve_digit)"
    )
    ap.add_argument("--reference-scorer", default="smollm2-135m", help="reference LM of the scorer check. "
                    "Default: %(default)s")  # fmt: skip
    ap.add_argument("--reference-problems", type=int, default=60, help="train problems in the scorer check. "
                    "Default: %(default)s")  # fmt: skip
    ap.add_argument("--scorer", choices=["self-information", "trained"], default="self-information",
                    help="importance: the organism's self-information, or the trained keep scorer (LLMLingua-2's "
                    "mould, fitted on --label-problems x --label-samples of its own traces). Default: %(default)s")  # fmt: skip
    ap.add_argument("--label-problems", type=int, default=300, help="train problems of the trained scorer's "
                    "labels. Default: %(default)s")  # fmt: skip
    ap.add_argument(
        "--label-samples", type=int, default=4, help="samples per label problem. Default: %(default)s"
    )
    ap.add_argument("--fresh", action="store_true", help="recompute cached data, training and evaluations")
    return ap.parse_args()


def build_data(ctx: Ctx, n: int, max_tokens: int, config: Any) -> Path:
    """``reasoner distill tokenskip`` on the organism's train problems (cached): the dataset directory. The
    records (samples and scores) live in the default config's directory; a config with forced tokens writes its
    rows from them into its own."""
    from transformers import AutoTokenizer

    from reasoner.distill import RecordLog, distill_tokenskip, tokenskip_rows, tokenskip_stats
    from reasoner.distill.data import write_dataset
    from reasoner.organism.problems import generate_multistep

    base = ctx.out / "data" / f"tokenskip-{ctx.key('data', n, max_tokens)}"
    forced = bool(config.force_tokens or config.force_digits)
    out = (
        base.with_name(f"{base.name}-forced-{ctx.key(config.force_tokens, config.force_digits)}")
        if forced
        else base
    )
    if config.scorer_file is not None:  # the same records, rows compressed by the trained scorer
        out = out.with_name(f"{out.name}-trained-{ctx.key(config.scorer_file)}")
    if ctx.cached(out / "stats.json"):
        return out
    records = RecordLog(base, {"n": n, "max_tokens": max_tokens}, fresh=ctx.fresh and base not in ctx.made)
    ctx.made.add(base)
    problems = generate_multistep(n, seed=0, levels=LEVELS, split="train")
    if records.done_ids() >= {p.id for p in problems}:
        done, tok = (
            distill_tokenskip(None, problems, SampleSpec(), records, config),
            AutoTokenizer.from_pretrained(ctx.model()),
        )
    else:
        if ctx.engine is None:
            ctx.engine = ctx.load()
        spec = SampleSpec(max_tokens=max_tokens, temperature=1.0, seed=0)
        done = distill_tokenskip(ctx.engine, problems, spec, records, config, batch_size=64)
        tok = ctx.engine.tokenizer
    out.mkdir(parents=True, exist_ok=True)
    write_dataset(out, tokenskip_rows(done, tok, config), tokenskip_stats(done, tok, config))
    ctx.made.add(out / "stats.json")
    return out


def build_labels(ctx: Ctx, n: int, samples: int, max_tokens: int) -> Path:
    """The trained scorer's label data (cached): ``reasoner distill tokenskip -n SAMPLES`` on the first ``n``
    train problems (T=1.0, seed 1), every correct finished trace per problem in ``records.jsonl``."""
    from reasoner.distill import RecordLog, distill_tokenskip
    from reasoner.distill.tokenskip import TokenSkipConfig
    from reasoner.organism.problems import generate_multistep

    out = ctx.out / "data" / f"labels-{ctx.key('labels', n, samples, max_tokens)}"
    settings = {"n": n, "samples": samples, "max_tokens": max_tokens, "seed": 1}
    records = RecordLog(out, settings, fresh=ctx.fresh and out not in ctx.made)
    ctx.made.add(out)
    problems = generate_multistep(n, seed=0, levels=LEVELS, split="train")
    if not records.done_ids() >= {p.id for p in problems}:
        if ctx.engine is None:
            ctx.engine = ctx.load()
        spec = SampleSpec(n=samples, max_tokens=max_tokens, temperature=1.0, seed=1)
        distill_tokenskip(ctx.engine, problems, spec, records, TokenSkipConfig(), batch_size=32)
    return out


def fit_trained(ctx: Ctx, labels: Path) -> tuple[Path, dict[str, Any]]:
    """``reasoner distill tokenskip-scorer`` with the default ``ScorerConfig`` on ``labels`` (cached): the
    scorer file and its report (held-out AUROC)."""
    from reasoner.distill.trained_scorer import ScorerConfig, fit_scorer

    config = ScorerConfig()
    path = ctx.out / "data" / f"scorer-{ctx.key('scorer', str(labels), dataclasses.asdict(config))}.pt"
    report_path = path.with_name(path.name + ".json")
    if not ctx.cached(report_path):
        records = [json.loads(line) for line in (labels / "records.jsonl").read_text().splitlines()]
        t0 = time.perf_counter()
        scorer, report = fit_scorer(records, config, VOCAB)
        scorer.save(str(path))
        report_path.write_text(json.dumps(report | {"wall_s": round(time.perf_counter() - t0, 1)}, indent=1))
        ctx.made.add(report_path)
    return path, json.loads(report_path.read_text())


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


def _survival(pieces: list[list[str]], scores: list[list[float]], gamma: float) -> str:
    """Shares of computed values (the token after `` =``), first-chain and re-check tokens kept at ``gamma``."""
    from reasoner.distill import keep_indices

    counts = {"values": [0, 0], "chain": [0, 0], "re-checks": [0, 0]}
    for p, s in zip(pieces, scores, strict=True):
        kept = set(keep_indices(s, gamma))
        first = next((i for i, x in enumerate(p) if "Wait" in x), len(p))
        for i in range(len(p)):
            for g in ["chain" if i < first else "re-checks"] + (
                ["values"] if i and p[i - 1].strip() == "=" else []
            ):
                counts[g][0] += i in kept
                counts[g][1] += 1
    return f"g{gamma:g} " + " ".join(f"{k} {v[0] / v[1]:.0%}" for k, v in counts.items() if v[1])


def scorer_check(
    ctx: Ctx,
    data: Path,
    tokenizer: Any,
    gammas: list[float],
    reference: str,
    limit: int,
    trained: Path | None = None,
) -> list[str]:
    """Survival per gamma (``_survival``) on the first ``limit`` problems' traces under self-information, a seeded
    random scorer, ``reference``'s self-information (``ReferenceScorer``; cached) and the ``trained`` scorer."""
    from reasoner.distill.scorers import ReferenceScorer
    from reasoner.prompts import ANSWER_INSTRUCTION, user_message

    records_dir = data.name.split("-forced")[0].split("-trained")[
        0
    ]  # forced / trained rows share the records
    data = data.with_name(records_dir)
    records = [json.loads(line) for line in (data / "records.jsonl").read_text().splitlines()][:limit]
    pairs = [(r, t) for r in records for t in r["traces"]]
    traces = [t for _, t in pairs]
    full = [[tokenizer.decode([i]) for i in t["token_ids"]] for t in traces]
    pieces = [p[t["span"][0] : t["span"][1]] for p, t in zip(full, traces, strict=True)]
    rng = random.Random(0)
    scorers = {"self-information": [t["scores"][t["span"][0] : t["span"][1]] for t in traces],
               "random": [[rng.random() for _ in p] for p in pieces]}  # fmt: skip
    path = ctx.out / "data" / f"scores-{ctx.key('reference', str(data), reference, limit)}.json"
    if not ctx.cached(path):
        scorer = ReferenceScorer(reference)
        ref = [
            scorer.score(user_message(r["question"], ANSWER_INSTRUCTION) + "\n", p)
            for (r, _), p in zip(pairs, full, strict=True)
        ]
        path.write_text(json.dumps(ref))
        ctx.made.add(path)
    scorers[f"reference {reference}"] = [
        s[t["span"][0] : t["span"][1]] for s, t in zip(json.loads(path.read_text()), traces, strict=True)
    ]
    if trained is not None:
        from reasoner.distill.tokenskip import load_trained

        scorer_ = load_trained(str(trained))
        scorers["trained"] = [scorer_.score(t["token_ids"][t["span"][0] : t["span"][1]], s)
                              for t, s in zip(traces, scorers["self-information"], strict=True)]  # fmt: skip
    lines = [f"scorer check ({len(traces)} traces of {len(records)} train problems; share of tokens kept):"]
    for name, scores in scorers.items():
        lines.append(f"  {name}: " + "; ".join(_survival(pieces, scores, g) for g in gammas))
    return lines


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from evals.benchmarks import load_problems
    from reasoner.distill.tokenskip import GAMMAS, TokenSkipConfig
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
        force = tuple(x for x in args.force_tokens.split(",") if x)
        scorer_file, report = None, None
        if args.scorer == "trained":
            labels = build_labels(ctx, args.label_problems, args.label_samples, args.max_tokens)
            scorer_file, report = fit_trained(ctx, labels)
        config = TokenSkipConfig(force_tokens=force, force_digits=args.force_digits,
                                 scorer_file=None if scorer_file is None else str(scorer_file))  # fmt: skip
        data = build_data(ctx, args.train_problems, args.max_tokens, config)
        base = ctx.evaluated("base", model)
        ctx.release()
        label = (
            "tokenskip" + ("-forced" if "-forced" in data.name else "") + ("-trained" if scorer_file else "")
        )
        run = ctx.trained(label, "sft_tokenskip", [f"data.path={data}", f"trainer.max_steps={args.steps}",
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
    tokenizer = AutoTokenizer.from_pretrained(model)
    lines.append(f"forced tokens: {stats.get('forced', 'none')}; scorer: {stats['scorer']}")
    if report is not None:
        lines.append(f"trained scorer: {report['fit_problems']} fit / {report['heldout_problems']} held-out "
                     f"problems ({report['fit_tokens']} / {report['heldout_tokens']} tokens, keep rate "
                     f"{report['heldout_keep_rate']:.0%} held out); held-out token AUROC {report['heldout_auroc']:.3f} "
                     f"(self-information {report['heldout_auroc_self_information']:.3f}), fit {report['fit_auroc']:.3f}; "
                     f"{report['wall_s']:.0f} s")  # fmt: skip
    lines += scorer_check(
        ctx, data, tokenizer, [0.8, 0.6, 0.5], args.reference_scorer, args.reference_problems, scorer_file
    )
    lines.append(f"({time.perf_counter() - t0:.0f} s; cache {args.out})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
