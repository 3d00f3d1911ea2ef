"""Sweep cost: 4 token budgets answered by one sweep (truncation reuse) vs 4 separate runs, one per budget.

Both arms share one warm engine and the same work units (same problems, seeds, batch size), so they request
the same samples; the sweep generates each at the largest budget once and replays it cut at the smaller
budgets, the separate runs generate every budget from scratch (``SweepEngine(reuse=False)``). Printed:
generated tokens and wall time of each arm, their ratio (target <= 0.35 for tokens), and whether the two
arms' rows agree (answers, correctness and token counts; they should, as sampling is seeded per request).

    .venv/bin/python bench/sweep_cost.py [--model smollm2-135m] [--engine auto] [--limit 16]
        [--budgets 64 128 256 512] [--strategies greedy majority:k=4]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from evals.rows import Row
from evals.runner import RunDir, run_sweep, sweep_problems
from evals.sweep import EvalConfig
from reasoner.engines import load_engine
from reasoner.verify import grade_many


def arm(config: EvalConfig, out: Path, engine, reuse: bool) -> tuple[int, float, list[Row]]:
    run = RunDir(out)
    run.prepare(config, "fresh")
    t0 = time.perf_counter()
    stats = run_sweep(config, run, engine=engine, reuse=reuse, progress=False)
    return stats.spent_tokens, time.perf_counter() - t0, run.read_rows()


def comparable(rows: list[Row]) -> dict:
    return {r.key: [r.answer, r.correct, r.tokens] for r in rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--engine", default="auto")
    p.add_argument("--limit", type=int, default=16)
    p.add_argument("--budgets", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--strategies", nargs="+", default=["greedy", "majority:k=4"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = p.parse_args()
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    logging.basicConfig(level=logging.WARNING)
    config = EvalConfig(
        model=args.model,
        engine=args.engine,
        limit=args.limit,
        budgets=args.budgets,
        strategies=args.strategies,
        batch_size=args.batch_size,
    )
    t0 = time.perf_counter()
    engine = load_engine(config.engine, config.model, dtype=config.dtype)
    print(f"engine {engine.name} ({config.model}) loaded in {time.perf_counter() - t0:.1f} s")
    sweep_problems(config)  # warm-ups outside the timed arms: benchmark generator, verifier pool
    grade_many(["1/2"], ["\\boxed{0.5}"])
    with tempfile.TemporaryDirectory() as tmp:
        sweep_tokens, sweep_s, sweep_rows = arm(config, Path(tmp) / "sweep", engine, reuse=True)
        sep_tokens, sep_s, sep_rows = 0, 0.0, []
        for budget in config.budgets:
            one = EvalConfig.from_dict({"budgets": [budget]}, base=config)
            tokens, seconds, rows = arm(one, Path(tmp) / f"separate-{budget}", engine, reuse=False)
            sep_tokens, sep_s, sep_rows = sep_tokens + tokens, sep_s + seconds, sep_rows + rows
            print(f"  separate run, budget {budget}: {tokens} tokens, {seconds:.1f} s")
    a, b = comparable(sweep_rows), comparable(sep_rows)
    agree = sum(a[k] == b.get(k) for k in a) / len(a)
    result = {
        "model": config.model,
        "engine": engine.name,
        "problems": config.limit,
        "budgets": config.budgets,
        "strategies": config.strategies,
        "sweep": {"generated_tokens": sweep_tokens, "wall_s": round(sweep_s, 2)},
        "separate": {"generated_tokens": sep_tokens, "wall_s": round(sep_s, 2)},
        "token_ratio": round(sweep_tokens / sep_tokens, 4),
        "wall_ratio": round(sweep_s / sep_s, 4),
        "rows_agree": round(agree, 4),
    }
    print(f"one sweep over budgets {config.budgets}: {sweep_tokens} tokens, {sweep_s:.1f} s")
    print(f"{len(config.budgets)} separate runs:            {sep_tokens} tokens, {sep_s:.1f} s")
    print(
        f"ratio sweep/separate: tokens {result['token_ratio']:.3f} (target <= 0.35), "
        f"wall {result['wall_ratio']:.3f}; rows agreeing between arms: {agree:.1%}"
    )
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
