"""The fidelity table (issue [13]): each seed method's paper claim measured against its baseline on the organism.

    .venv/bin/python bench/fidelity.py [--problems 100] [--only ROW ...] [--fresh] [--out runs/fidelity]
        [--organism-seed 0] [--p-flip 0.115] [--levels 1,2,3,4]

Prints ``row | measured | target | met?``. Every row runs on the same held-out ``multistep`` test problems (levels
of the organism), vLLM engine, temperature 1.0, the same seeds for both arms; tokens are the strategies'
``TokenCount``; answers graded by ``reasoner.verify``. A row's numbers are cached in ``--out`` as
``<row>-<hash of its settings>.json`` (settings: organism variant, problems, seeds, sampling, the row's version):
a rerun prints cached rows without recomputing (``--fresh`` recomputes). The organism is the ``overthinker``
alias for the default ``--organism-seed/--p-flip/--levels``, else that variant (``organism.build.build_variant``,
built once into the model cache, ~5 min). Targets: ``bench/fidelity_targets.py``. Rows live by family:
``fidelity_decode.py`` (inference-time strategies), ``fidelity_train.py`` (RL recipes: each trains from the
organism into ``--out``/train, cached per run, and evaluates the saved model on the same problems),
``fidelity_grpo.py`` (D3S and difficulty pruning against plain GRPO), ``fidelity_sft.py`` (shortest-correct SFT
and DAP). The whole table took 32 min on a 2-core CPU (README "Fidelity table" has it, with why each miss misses).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import cpu_env
from fidelity_common import Ctx, log
from fidelity_decode import DECODE_ROWS
from fidelity_grpo import GRPO_ROWS
from fidelity_sft import SFT_ROWS
from fidelity_targets import TARGETS
from fidelity_train import TRAIN_ROWS

from reasoner.types import SampleSpec

ROWS: dict[str, tuple[Callable[[Ctx], dict[str, Any]], Callable[[dict[str, Any]], str]]] = (
    DECODE_ROWS | TRAIN_ROWS | GRPO_ROWS | SFT_ROWS
)
"""Implemented rows: name -> (measure on a Ctx, one-line summary of the measured numbers)."""
ROW_VERSION = 4
"""Part of every row's cache key: bump when a row's workload or measurements change (4: short-m@k, fractured and
entropy-branch measure why they miss)."""


def cache_path(out: Path, row: str, settings: dict[str, Any]) -> Path:
    digest = hashlib.sha1(json.dumps([row, settings, ROW_VERSION], sort_keys=True).encode()).hexdigest()[:10]
    return out / f"{row.replace(' ', '_').replace('@', 'at')}-{digest}.json"


def ready_model(args: argparse.Namespace, env: dict[str, str]) -> str:
    """The organism's directory, built if needed (``build_variant``), in a child process with the environment
    ``env`` (this shell's, taken before ``cpu_env``: its one thread would slow a build ~1.5x; bench/organism.py
    ``ready_model``)."""
    cmd = [sys.executable, __file__, "--ready-only", "--organism-seed", str(args.organism_seed),
           "--p-flip", str(args.p_flip), "--levels", ",".join(map(str, args.levels))]  # fmt: skip
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
    return done.stdout.strip().splitlines()[-1]


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

    shell = dict(os.environ)
    model = functools.cache(
        lambda: ready_model(args, shell)
    )  # built in a child process with this shell's threads
    cpu_env()  # vLLM here (rows' engines, training's rollout engines): one unbound thread

    def load() -> Any:
        from reasoner.engines import load_engine

        engine = load_engine("vllm", model(), dtype="float32", seed=args.seed)
        engine.generate([[1, 2, 3]], SampleSpec(n=2, max_tokens=8))  # warm-up
        return engine

    ctx = Ctx(
        problems, spec, args.chunk, load, model=model, out=args.out, settings=settings, fresh=args.fresh
    )
    out = [("row", "measured", "target", "met?")]
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
    print(
        f"fidelity: {len(problems)} multistep test problems, organism {settings['organism']}, T=1.0\n"
        + table(out)
    )


if __name__ == "__main__":
    from reasoner.wiring import wire

    wire()
    main()
