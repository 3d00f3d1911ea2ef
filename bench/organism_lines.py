"""Where an organism's errors are: greedy decoding of held-out problems, each solution line checked (~1 min).

For each held-out ``multistep`` test problem, the first lines of the greedy completion after ``<think>`` are read
as ``a op b = c`` and compared with the minimal solution's lines, one check per part:

- left value: ``a`` is the start value (line 1) or the previous line's result, as the trace wrote it;
- operation and operand: ``op b`` is the question's operation for that line (copied from the question);
- arithmetic: ``c == a op b`` for whatever ``a op b`` the line wrote;
- chain: every minimal line right; answer: the boxed answer right.

With ``--build`` it first builds an organism from nothing (``train_organism``: the alias's recipe, with
``--traces``, ``--size key=value`` model config overrides, ``--fourier-scale`` and ``key=value`` recipe
overrides) and reports the build time, so a configuration is one command:

    .venv/bin/python bench/organism_lines.py --model overthinker
    .venv/bin/python bench/organism_lines.py --build --traces 16000 --size num_hidden_layers=3 \\
        trainer.learning_rate=3e-3 --save runs/organism-l3
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

LINE = re.compile(r"^(?:Step [A-E]: [a-z ]+ \d+\. )?(\d+) ([-+*]) (\d+) = (\d+)$")


def check(problem, text: str) -> dict[str, int]:
    """Counts of right parts for one completion (see the module docstring)."""
    from reasoner.organism.problems import apply, steps_of
    from reasoner.verify import grade_many

    steps = steps_of(problem)
    body = text.split("<think>", 1)[-1].strip().splitlines()
    out = dict(lines=len(steps), left=0, operation=0, arithmetic=0, parsed=0)
    previous = steps[0].left
    chain = True
    for step, line in zip(steps, body + [""] * len(steps), strict=False):
        m = LINE.match(line.strip())
        if not m:
            chain = False
            continue
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        out["parsed"] += 1
        out["left"] += a == previous
        out["operation"] += (op, b) == (step.op, step.operand)
        out["arithmetic"] += c == apply(a, op, b)
        chain &= (a, op, b, c) == (step.left, step.op, step.operand, step.result)
        previous = c
    out["chain"] = int(chain)
    out["answer"] = int(grade_many([problem.answer], [text])[0].correct)
    return out


def build(args, out: Path) -> float:
    from reasoner.organism.build import train_organism

    sizes = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.size)}
    if args.fourier_scale is not None:
        sizes["fourier_scale"] = args.fourier_scale
    t0 = time.perf_counter()
    train_organism(out, traces=args.traces, overrides=args.overrides, sizes=sizes, quiet=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "overrides", nargs="*", help="with --build: key=value overrides of recipes/sft_overthink.yaml"
    )
    ap.add_argument(
        "--model", default="overthinker", help="organism alias or directory. Default: %(default)s"
    )
    ap.add_argument("--problems", type=int, default=40, help="held-out test problems. Default: %(default)s")
    ap.add_argument("--engine", default="hf", help="engine for greedy decoding. Default: %(default)s")
    ap.add_argument(
        "--build", action="store_true", help="build an organism from nothing first (--model ignored)"
    )
    ap.add_argument(
        "--traces", type=int, default=16_000, help="with --build: SFT traces. Default: %(default)s"
    )
    ap.add_argument("--size", action="append", default=[], metavar="KEY=VALUE",
                    help="with --build: a model config override (JSON value), e.g. num_hidden_layers=3")  # fmt: skip
    ap.add_argument("--fourier-scale", type=float, help="with --build: number embedding Fourier amplitude")
    ap.add_argument("--save", help="with --build: keep the built model here")
    args = ap.parse_args()
    from reasoner.wiring import wire

    wire()  # the organism aliases (overthinker, overthinker-init) resolve here too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from evals.benchmarks import load_benchmark
    from reasoner.engines import load_engine
    from reasoner.models import resolve
    from reasoner.prompts import render
    from reasoner.types import SampleSpec

    tmp = tempfile.TemporaryDirectory(prefix="organism-lines-")
    model, build_s = args.model, None
    if args.build:
        model = str(Path(tmp.name) / "model")
        build_s = build(args, Path(model))
        if args.save:
            shutil.copytree(model, args.save, dirs_exist_ok=True)
    problems = list(load_benchmark("multistep", split="test", n=args.problems, seed=0).problems)
    engine = load_engine(args.engine, resolve(model), dtype="float32")
    try:
        prompts = [render(engine.tokenizer, p.question) for p in problems]
        groups = engine.generate(prompts, SampleSpec(n=1, max_tokens=700, temperature=0.0))
    finally:
        engine.close()
    totals: dict[str, int] = {}
    for p, (c,) in zip(problems, groups, strict=True):
        for k, v in check(p, c.text).items():
            totals[k] = totals.get(k, 0) + v
    n, lines = len(problems), totals["lines"]
    head = f"build {build_s:.0f} s, " if build_s is not None else ""
    print(f"{head}{n} problems, {lines} minimal lines (greedy, {args.engine})")
    for k in ("parsed", "left", "operation", "arithmetic"):
        print(f"  {k:<11}{100 * totals[k] / lines:6.1f}% of lines")
    print(f"  chain      {totals['chain']}/{n}   answer {totals['answer']}/{n}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
