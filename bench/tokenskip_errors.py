"""Where a TokenSkip student's accuracy goes at low gamma (``bench/tokenskip.py``'s miss): its own arithmetic.

    PYTHONPATH=. .venv/bin/python bench/tokenskip_errors.py STUDENT_DIR [--problems 100] [--gammas 1.0,0.6]

Samples the student (T=1.0, one per problem) on the held-out multistep test problems at each gamma and counts,
in the reasoning it writes: equations ``a op b = c`` whose result is wrong (``eq wrong``), equations with the
operator dropped (``a b = c``), whether the first chain's last value (before the first re-check) is the gold
answer (``chain ok``), and final accuracy. Separates "the compressed format hides what the student needs to
compute" from "the student cannot stop": the organism computes each value from the tokens just before it.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

from common import cpu_env

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def counts(text: str, gold: str) -> dict[str, int]:
    """Equation and first-chain counts of one completion (module docstring)."""
    think = text.split("</think>")[0]
    eqs = re.findall(r"(-?\d+) ([+*-]) (-?\d+) = (-?\d+)", think)
    bare = re.findall(r"(?<![+*-] )\b(\d+) (\d+) = (-?\d+)", think)
    chain = think.split("Wait")[0]
    values = re.findall(r"= (-?\d+)", chain)
    return {"eqs": len(eqs), "eq_wrong": sum(OPS[o](int(a), int(b)) != int(c) for a, o, b, c in eqs),
            "bare": len(bare), "chain_ok": int(bool(values) and values[-1] == gold)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student")
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--gammas", default="1.0,0.6")
    args = ap.parse_args()
    cpu_env()
    from evals.benchmarks import load_problems
    from reasoner.engines import load_engine
    from reasoner.prompts import compression_question, render
    from reasoner.types import SampleSpec
    from reasoner.verify import grade_many

    problems = load_problems("multistep", "test", n=args.problems, seed=0, levels=[1, 2, 3, 4])
    engine = load_engine("vllm", args.student, dtype="float32", seed=0)
    try:
        for gamma in (float(g) for g in args.gammas.split(",")):
            cued = [
                dataclasses.replace(p, question=compression_question(p.question, gamma)) for p in problems
            ]
            out = engine.generate([render(engine.tokenizer, p.question) for p in cued],
                                  SampleSpec(max_tokens=700, temperature=1.0, seed=0))  # fmt: skip
            texts = [g[0].text for g in out]
            ok = [v.correct for v in grade_many([p.answer for p in problems], texts)]
            c = [counts(t, p.answer) for t, p in zip(texts, problems, strict=True)]
            eqs, wrong, bare = (sum(x[k] for x in c) for k in ("eqs", "eq_wrong", "bare"))
            print(f"gamma {gamma:g}: accuracy {100 * sum(ok) / len(ok):.0f}%, first chain ends at the gold "
                  f"{100 * sum(x['chain_ok'] for x in c) / len(c):.0f}%, equations {eqs} ({100 * wrong / max(eqs, 1):.1f}% "
                  f"wrong), operator dropped {bare}")  # fmt: skip
    finally:
        engine.close()


if __name__ == "__main__":
    main()
