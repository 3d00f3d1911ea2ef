"""Predicted-difficulty allocation (issue [14] part 3): probe AUROC and adaptive vs fixed k, on the organism
by default (``--model overthinker --benchmark multistep``, T=1.0, 384 tokens) or on any model and generated
benchmark (problem ids carry ``-L<level>``), e.g. ``--model smollm2-135m --benchmark arith --temperature 0.7``.

1. An eval run on TRAIN-split problems (``majority:k=8``, --temperature, --max-tokens) gives each
   problem's pass rate over its 8 samples; ``reasoner probe fit`` (``reasoner.probe.cli.fit_run``) fits the
   linear probe on the prompt's last-token hidden state (layer and ridge alpha chosen on a validation slice
   of the train problems) and writes it to ``<out>/difficulty_probe.json``.
2. An eval run on held-out TEST problems: greedy, majority@k and short-1@k (simulated: the same chains as
   majority, so short-m@k costs no extra generation) at k in --ks, and ``adaptive:majority`` /
   ``adaptive:short-m@k`` at mean k and 0.7 k samples per problem with that probe.

Prints (a) the probe's AUROC for "solved by greedy" on the test problems (predicted pass rate vs the greedy
verdict) next to the problem level's, and (b) accuracy, samples and generated tokens per problem of each
strategy, adaptive against fixed k. Runs live under --out and resume: a rerun prints in seconds.

    python bench/probe.py                      # ~15-25 min on 2 busy CPU cores, then seconds
    python bench/probe.py --model smollm2-135m --benchmark arith --temperature 0.7 --max-tokens 256 \
        --out runs/probe-smollm2 --simulate-only  # the train run, the probe and the train-side replay (c)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from common import cpu_env

REPO = Path(__file__).resolve().parents[1]


def eval_config(args: argparse.Namespace, **config):
    """The EvalConfig of one of the script's runs: ``--model``, ``--benchmark``, ``--max-tokens`` (the one
    budget) and ``--temperature`` from ``args``, the rest from ``config``."""
    from evals.sweep import EvalConfig

    base = {"model": args.model, "benchmark": args.benchmark, "budgets": [args.max_tokens]}
    return EvalConfig.from_dict({**base, "temperature": args.temperature, **config})


def problems_of(cfg, ids) -> list:
    """The problems of ``cfg``'s benchmark split whose ids are in ``ids``, in the split's order."""
    from evals.runner import sweep_problems

    return [p for p in sweep_problems(cfg.model_copy(update={"limit": len(ids)})) if p.id in ids]


def eval_run(path: Path, cfg) -> list:
    """Run (or resume) the eval ``cfg`` into ``path`` and return its rows."""
    from evals.runner import RunDir, run_sweep

    run = RunDir(path)
    run.prepare(cfg)
    stats = run_sweep(cfg, run, progress=False)
    if stats.units_run:
        logging.info("%s: %d units in %.0f s", path, stats.units_run, stats.wall_s)
    return run.read_rows()


def fit(train_dir: Path, probe_file: Path, args: argparse.Namespace):
    from reasoner.probe.cli import ProbeFitConfig, fit_run
    from reasoner.strategies.difficulty import LinearProbe

    if probe_file.is_file() and not args.refit:
        return LinearProbe.load(probe_file)
    probe, report = fit_run(str(train_dir), ProbeFitConfig(out=str(probe_file), alphas=args.alphas))
    for c in report["candidates"]:
        logging.info(
            "layer %d alpha %g: validation mse %.4f r %.3f", c["layer"], c["alpha"], c["mse"], c["pearson"]
        )
    probe.save(probe_file)
    return probe


def strategies(ks: list[int], probe_file: str, rule: str, min_k: int) -> list[str]:
    out = ["greedy"]
    for k in ks:
        out += [f"majority:k={k}", f"short-m@k:k={k},m=1,mode=simulated"]
    for k in ks:
        for mean in (k, round(0.7 * k, 2)):
            common = f"mean={mean},min_k={min_k},max_k={2 * max(ks)},rule={rule},probe={probe_file}"
            out += [f"adaptive:majority:{common}", f"adaptive:short-m@k:{common},m=1,mode=simulated"]
    return out


def probe_table(rows: list, probe, cfg, k: int) -> None:
    """AUROC of the probe's predicted pass rate (and of -level) for the greedy verdict on the test problems."""
    from transformers import AutoTokenizer

    from reasoner.engines.hidden import prompt_features
    from reasoner.models import resolve
    from reasoner.probe.fit import auroc, pearson
    from reasoner.prompts import render

    greedy = {
        r.problem_id: r.correct
        for r in rows
        if r.strategy == "greedy" and r.seed == min(r.seed for r in rows)
    }
    problems = problems_of(cfg, greedy)
    model = resolve(cfg.model)
    tok = AutoTokenizer.from_pretrained(model)
    pred = probe.predict(
        prompt_features(model, [render(tok, p.question) for p in problems], [probe.layer])[0]
    )
    solved = [greedy[p.id] for p in problems]
    maj = {r.problem_id: r for r in rows if r.strategy == f"majority:k={k}"}  # the largest fixed k
    rate = [statistics.mean(s.correct for s in maj[p.id].samples) for p in problems]
    flat = [(i, s.correct) for i, p in enumerate(problems) for s in maj[p.id].samples]
    level = [-float(p.meta["level"]) for p in problems]
    print(f"\n(a) probe on {len(problems)} held-out {cfg.benchmark} test problems (layer {probe.layer}, alpha "
          f"{probe.meta.get('alpha')}, fit on {probe.meta.get('problems')} train problems); greedy solved "
          f"{sum(solved)}/{len(solved)}, majority@{k} samples right {100 * statistics.mean(c for _, c in flat):.1f}%")  # fmt: skip
    print(f"{'score':<30}{'AUROC greedy solved':>21}{'AUROC sample right':>20}{'r with pass rate':>18}")
    for name, score in (("probe predicted pass rate", pred), ("-level (the generator knob)", level)):
        print(f"{name:<30}{auroc(score, solved):>21.3f}{auroc([score[i] for i, _ in flat], [c for _, c in flat]):>20.3f}"
              f"{pearson(score, rate):>18.3f}")  # fmt: skip
    print(
        f"(AUROC sample right: each of majority@{k}'s {k} samples per problem labelled by its verdict; pass rate: "
        f"its {k})"
    )


def adaptive_table(rows: list, ks: list[int], cfg) -> None:
    cells: dict[str, list] = defaultdict(list)
    for r in rows:
        cells[r.strategy].append(r)

    def stats(label: str) -> tuple[float, float, float]:
        rs = cells[label]
        return (100 * statistics.mean(r.correct for r in rs), statistics.mean(len(r.samples) for r in rs),
                statistics.mean(r.tokens.generated for r in rs))  # fmt: skip

    print(f"\n(b) adaptive vs fixed k, {len({r.problem_id for r in rows})} test problems x "
          f"{len({r.seed for r in rows})} seed(s), T={cfg.temperature}, {cfg.budgets[0]} tokens")  # fmt: skip
    print(
        f"{'strategy':<26}{'acc %':>7}{'samples/pb':>12}{'x fixed':>9}{'tokens/pb':>11}{'x fixed':>9}{'d acc':>7}"
    )
    for family, fixed_fmt in (
        ("majority", "majority:k={k}"),
        ("short-m@k", "short-m@k:k={k},m=1,mode=simulated"),
    ):
        for k in ks:
            base = stats(fixed_fmt.format(k=k))
            print(f"{fixed_fmt.format(k=k).split(',mode')[0]:<26}{base[0]:>7.1f}{base[1]:>12.2f}{1:>9.2f}"
                  f"{base[2]:>11.0f}{1:>9.2f}{'':>7}")  # fmt: skip
            for label in sorted(cells):
                if label.startswith(f"adaptive:{family}:") and _mean_of(label) in (k, round(0.7 * k, 2)):
                    a = stats(label)
                    name = f"  adaptive mean={_mean_of(label):g}"
                    print(f"{name:<26}{a[0]:>7.1f}{a[1]:>12.2f}{a[1] / base[1]:>9.2f}{a[2]:>11.0f}"
                          f"{a[2] / base[2]:>9.2f}{a[0] - base[0]:>+7.1f}")  # fmt: skip
    by_level: dict[tuple[str, int], list[int]] = defaultdict(list)
    for r in rows:
        if r.strategy.startswith("adaptive:majority:") or r.strategy.startswith("majority:"):
            by_level[(r.strategy, int(r.problem_id.split("-L")[1].split("-")[0]))].append(len(r.samples))
    print("\nsamples per problem by level (adaptive:majority; fixed majority for reference)")
    levels = sorted({lv for _, lv in by_level})
    for label in sorted({s for s, _ in by_level}):
        per = "  ".join(f"L{lv}: {statistics.mean(by_level[(label, lv)]):.2f}" for lv in levels)
        print(f"  {label.split(',probe')[0]:<60}{per}")


def _plurality(answers: list) -> int:
    """Index of the first answer of the largest exact-string group (None never wins unless all are None)."""
    counts: dict = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return 0
    best = max(counts.values())
    return next(i for i, a in enumerate(answers) if a is not None and counts[a] == best)


def train_simulation(rows: list, probe, cfg) -> None:
    """(c) On the TRAIN run only: majority over the first k_i of each problem's 8 recorded samples, k_i from a
    cross-fitted probe (two folds by problem-id hash: each half predicted by a probe fitted on the other), for
    each rule and min_k; what the defaults are chosen by (never the test problems)."""
    import numpy as np
    from transformers import AutoTokenizer

    from reasoner.engines.hidden import prompt_features
    from reasoner.models import resolve
    from reasoner.probe.fit import auroc, fit_one, pass_rate_spread, split_validation
    from reasoner.prompts import render

    samples = {
        r.problem_id: [(s.answer, s.correct) for s in r.samples] for r in rows if r.strategy == "majority:k=8"
    }
    problems = problems_of(cfg, samples)
    model = resolve(cfg.model)
    tok = AutoTokenizer.from_pretrained(model)
    x = prompt_features(model, [render(tok, p.question) for p in problems], [probe.layer])[0]
    y = np.array([statistics.mean(c for _, c in samples[p.id]) for p in problems])
    fold = np.array(split_validation([p.id for p in problems], 0.5))
    pred = np.zeros(len(problems))
    for side in (True, False):  # fit on the other fold (fit_one trains on rows outside the mask)
        f = fit_one(x, y, float(probe.meta.get("alpha", 1.0)), probe.layer, list(fold == side))
        pred[fold == side] = np.clip(f.bias + ((x[fold == side] - f.mean) / f.std) @ f.weights, 0, 1)
    first = [samples[p.id][0][1] for p in problems]
    print(
        f"\n(c) TRAIN-side simulation, {len(problems)} train problems, cross-fitted probe (AUROC for sample 0 "
        f"correct: {auroc(list(pred), first):.3f}): majority over the first k_i of 8 recorded samples, batches of 20"
    )
    spread = pass_rate_spread(list(y), 8)
    by_level: dict[int, list[float]] = defaultdict(list)
    for p, rate in zip(problems, y, strict=True):
        by_level[int(p.meta["level"])].append(float(rate))
    print(f"pass rates over 8: variance {spread.variance:.3f} = binomial noise {spread.noise:.3f} + between "
          f"problems {spread.between:.3f}; none right {100 * spread.zero:.0f}%, all right {100 * spread.one:.0f}%; "
          + "  ".join(f"L{lv} {100 * statistics.mean(v):.0f}%" for lv, v in sorted(by_level.items())))  # fmt: skip
    fixed = {k: 100 * statistics.mean(samples[p.id][_plurality([a for a, _ in samples[p.id][:k]])][1]
                                      for p in problems) for k in (2, 3, 4, 5, 6, 8)}  # fmt: skip
    print("fixed k:  " + "  ".join(f"k={k}: {v:.1f}%" for k, v in fixed.items()))
    print(f"{'rule':<12}{'min_k':>6}" + "".join(f"{f'mean={m:g}':>11}" for m in (2.8, 4, 5.6)))
    for rule in ("difficulty", "uncertainty", "marginal"):
        for lo in (1, 2, 3):
            accs = [
                _simulate(samples, problems, list(pred), rule, lo, mean, range(8)) for mean in (2.8, 4, 5.6)
            ]
            print(f"{rule:<12}{lo:>6}" + "".join(f"{a:>10.1f}%" for a in accs))
    half = [statistics.mean(c for _, c in samples[p.id][4:]) for p in problems]
    print(
        "ceiling: p_i measured on samples 5-8 (an oracle), allocating samples 1-4 (max_k 4), mean 2.8; fixed k=3 "
        f"{_simulate(samples, problems, half, 'difficulty', 3, 3, range(4)):.1f}%, "
        f"k=4 {_simulate(samples, problems, half, 'difficulty', 4, 4, range(4)):.1f}%"
    )
    for rule in ("difficulty", "uncertainty", "marginal"):
        print(f"  {rule:<12} min_k 1: {_simulate(samples, problems, half, rule, 1, 2.8, range(4)):.1f}%")


def _simulate(samples, problems, pred, rule, lo, mean, part) -> float:
    """Majority accuracy (exact-string plurality) over the first k_i samples of ``part`` per problem, k_i from
    ``pred`` with ``rule`` in batches of 20 (as ``reasoner eval`` runs them); NaN when mean < lo."""
    from reasoner.strategies.difficulty import allocate_by

    if mean < lo:
        return float("nan")
    part = list(part)
    right = []
    for c in range(0, len(problems), 20):
        chunk = list(range(c, min(c + 20, len(problems))))
        ks = allocate_by([pred[i] for i in chunk], rule, round(mean * len(chunk)), lo, len(part))
        for i, k in zip(chunk, ks, strict=True):
            votes = [samples[problems[i].id][j] for j in part][:k]
            right.append(votes[_plurality([a for a, _ in votes])][1])
    return 100 * statistics.mean(right)


def _mean_of(label: str) -> float:
    return float(label.split("mean=")[1].split(",")[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/probe", help="run directory root. Default: %(default)s")
    ap.add_argument(
        "--model", default="overthinker", help="model alias, directory or Hub id. Default: %(default)s"
    )
    ap.add_argument(
        "--benchmark", default="multistep", help="benchmark with train and test splits. Default: %(default)s"
    )
    ap.add_argument(
        "--max-tokens", type=int, default=384, help="max tokens per sample (the budget). Default: %(default)s"
    )
    ap.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature. Default: %(default)s"
    )
    ap.add_argument(
        "--train-problems", type=int, default=400, help="train-split problems. Default: %(default)s"
    )
    ap.add_argument(
        "--test-problems", type=int, default=200, help="test-split problems. Default: %(default)s"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="test seeds. Default: %(default)s")
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8], help="fixed k values. Default: %(default)s")
    ap.add_argument("--rule", default="difficulty", help="allocation rule. Default: %(default)s")
    ap.add_argument("--alphas", default="0.01,0.1,1,10", help="ridge penalties tried. Default: %(default)s")
    ap.add_argument("--refit", action="store_true", help="refit the probe even if its file exists")
    ap.add_argument("--min-k", type=int, default=1, help="adaptive min_k. Default: %(default)s")
    ap.add_argument(
        "--simulate-only",
        action="store_true",
        help="only the train run, the probe and the TRAIN-side allocation simulation (c)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import os

    os.chdir(REPO)
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # vLLM logs to stdout by default
    from reasoner.wiring import wire

    wire()
    cpu_env()
    out = Path(args.out)
    train_dir = out / "train"
    probe_file = out / "difficulty_probe.json"
    train_cfg = eval_config(
        args, split="train", limit=args.train_problems, strategies=["majority:k=8"], seeds=[0]
    )
    train_rows = eval_run(train_dir, train_cfg)
    probe = fit(train_dir, probe_file, args)
    train_simulation(train_rows, probe, train_cfg)
    if args.simulate_only:
        return
    test_cfg = eval_config(args, split="test", limit=args.test_problems, seeds=args.seeds,
                           strategies=strategies(args.ks, str(probe_file), args.rule, args.min_k))  # fmt: skip
    test_rows = eval_run(out / f"test-{args.rule}-min{args.min_k}", test_cfg)
    probe_table(test_rows, probe, test_cfg, max(args.ks))
    adaptive_table(test_rows, args.ks, test_cfg)


if __name__ == "__main__":
    main()
