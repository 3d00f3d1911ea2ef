r"""Grader agreement: our ``grade_many`` (lenient and strict) against math-verify called directly, per row of
``tests/data/grader_table.jsonl`` (written by ``bench/make_grader_table.py``).

math-verify directly (https://github.com/huggingface/Math-Verify) is
``verify(gold=parse("\boxed{" + gold + "}"), target=parse(whole response))`` with its default extraction configs,
run through our pool's hard timeout (``reasoner.verify.mathverify_many``, the check ``reasoner report --audit``
uses). Our lenient mode differs from it on purpose in three ways: only the text after the last ``</think>`` is
read; an explicitly marked answer (``\boxed{}``, "final answer is / answer is / Answer:", ``#### N``) wins
over whatever math-verify's patterns would pick (but an unboxed marked letter or word, which math-verify never
reads, is left to math-verify's extraction, as lighteval's math tasks do); and digits glued to the front of a word that is not a unit
("4chan") are dropped before math-verify's extraction, which would read them as a number with a unit. Each disagreement is printed with the reason the comparison
can name. Also printed: agreement overall and per category for both modes, and false positives on the
``digits_in_words`` rows (the gold digit appears only inside words) for both modes and for math-verify.

Run: ``python bench/grader_agreement.py [--table PATH] [--workers 2] [--timeout 10]``. Targets: lenient agreement
>= 98%, no digit-in-word false positive.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from reasoner.types import Verdict
from reasoner.verify import VerifierPool, answer_region, grade_many, marked_answer, mathverify_many
from reasoner.verify.extract import unglue_digits

TABLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "grader_table.jsonl"
DIGITS = "digits_in_words"
MODES = ("lenient", "strict")


def load_rows(path: Path = TABLE) -> list[dict]:
    """The table's rows (``{"id", "category", "gold", "response"}``)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compare(rows: list[dict], *, pool: VerifierPool | None = None, timeout: float = 10.0) -> list[dict]:
    """Per row: its verdicts under both our modes and under math-verify directly (one pool batch each)."""
    golds = [r["gold"] for r in rows]
    responses = [r["response"] for r in rows]
    ours = {m: grade_many(golds, responses, mode=m, timeout=timeout, pool=pool) for m in MODES}
    direct = mathverify_many(golds, responses, timeout=timeout, pool=pool)
    return [
        {**row, "lenient": ours["lenient"][i], "strict": ours["strict"][i], "direct": direct[i]}
        for i, row in enumerate(rows)
    ]


def reason(record: dict, mode: str = "lenient") -> tuple[str, str]:
    """Why our verdict under ``mode`` differs from math-verify's: ``(kind, text)``, kind ``think``, ``marked`` or
    ``word`` for the deliberate policy differences (module docstring), ``strict`` for a strict-only miss, else
    ``other``."""
    ours: Verdict = record[mode]
    theirs: Verdict = record["direct"]
    region = answer_region(record["response"])
    if region is not None and region != record["response"]:
        if theirs.extracted is not None and theirs.extracted not in region:
            return (
                "think",
                f"we read only after </think>; math-verify took {theirs.extracted!r} from the thinking",
            )
    marked = marked_answer(region) if region else None
    if marked is not None and theirs.extracted is None:
        return "marked", (
            f"we read the marked answer {marked!r} (box / answer-is span / ####); math-verify's LaTeX and "
            "expression patterns find nothing there (a bare letter or word, no digit or math delimiters)"
        )
    if marked is not None:
        return "marked", (
            f"we prefer the marked answer {marked!r} (box / answer-is span / ####, cleaned); "
            f"math-verify's patterns took {theirs.extracted!r}"
        )
    if (
        mode == "lenient"
        and region
        and unglue_digits(region) != region
        and theirs.correct
        and not ours.correct
    ):
        return "word", (
            f"math-verify reads the digit glued to the front of a word as {theirs.extracted!r} (as it reads 12cm "
            "as 12); we drop digits glued to a word that is not a unit (unglue_digits)"
        )
    if mode == "strict" and ours.status == "no_answer":
        return "strict", "strict: no marked answer"
    return (
        "other",
        f"ours {ours.extracted!r} ({ours.status}) vs math-verify {theirs.extracted!r} ({theirs.status})",
    )


def _mode_summary(records: list[dict], mode: str) -> dict:
    agree = [r[mode].correct == r["direct"].correct for r in records]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r, ok in zip(records, agree, strict=True):
        per[r["category"]][0] += ok
        per[r["category"]][1] += 1
    disagreements = [r for r, ok in zip(records, agree, strict=True) if not ok]
    kinds = Counter(reason(r, mode)[0] for r in disagreements)
    deliberate = kinds["think"] + kinds["marked"] + kinds["word"]
    return {
        "agreement": sum(agree) / len(records),
        "deliberate": deliberate,
        "agreement_where_policies_coincide": sum(agree) / (len(records) - deliberate),
        "disagreement_kinds": dict(sorted(kinds.items())),
        "per_category": {c: a / n for c, (a, n) in sorted(per.items())},
        "disagreements": disagreements,
        "correct": sum(r[mode].correct for r in records),
    }


def summarize(records: list[dict]) -> dict:
    """Agreement (overall, per category, per mode; also without the deliberate policy differences),
    digit-in-word false positives, verdict and status counts."""
    out: dict = {"rows": len(records), "categories": sorted({r["category"] for r in records})}
    for mode in MODES:
        out[mode] = _mode_summary(records, mode)
    out["direct_correct"] = sum(r["direct"].correct for r in records)
    digits = [r for r in records if r["category"] == DIGITS]
    out["false_positives"] = {k: sum(r[k].correct for r in digits) for k in (*MODES, "direct")}
    out["digit_rows"] = len(digits)
    out["statuses"] = {k: Counter(r[k].status for r in records) for k in (*MODES, "direct")}
    return out


def report(summary: dict) -> None:
    n = summary["rows"]
    print(f"{n} rows, {len(summary['categories'])} categories; correct verdicts: "
          f"lenient {summary['lenient']['correct']}, strict {summary['strict']['correct']}, "
          f"math-verify {summary['direct_correct']}")  # fmt: skip
    for mode in MODES:
        s = summary[mode]
        print(f"\n{mode}: agreement with math-verify {s['agreement']:.1%} ({n - len(s['disagreements'])}/{n}); "
              f"disagreements by reason {s['disagreement_kinds']}; on the {n - s['deliberate']} rows without "
              f"a deliberate policy difference: {s['agreement_where_policies_coincide']:.1%}")  # fmt: skip
        for category, value in s["per_category"].items():
            print(f"  {category:<26} {value:7.1%}")
    fp = summary["false_positives"]
    print(f"\nfalse positives on {DIGITS} ({summary['digit_rows']} rows): lenient {fp['lenient']}, "
          f"strict {fp['strict']}, math-verify {fp['direct']}")  # fmt: skip
    for key, counts in summary["statuses"].items():
        print(f"statuses ({key}): {dict(sorted(counts.items()))}")
    for mode in MODES:
        rows = summary[mode]["disagreements"]
        print(f"\n{mode} disagreements ({len(rows)}):")
        for r in rows:
            print(f"  {r['id']}: gold {r['gold']!r}; ours {r[mode].correct} ({r[mode].extracted!r}), "
                  f"math-verify {r['direct'].correct} ({r['direct'].extracted!r}): {reason(r, mode)[1]}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=TABLE, help=f"the table (JSONL). Default: {TABLE}")
    parser.add_argument("--workers", type=int, default=2, help="verifier pool workers. Default: 2")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="hard limit per row, seconds. Default: 10"
    )
    args = parser.parse_args(argv)
    rows = load_rows(args.table)
    pool = VerifierPool(args.workers)
    try:
        start = time.perf_counter()
        records = compare(rows, pool=pool, timeout=args.timeout)
        elapsed = time.perf_counter() - start
    finally:
        pool.close()
    summary = summarize(records)
    report(summary)
    print(f"\n{len(rows)} rows x 3 graders in {elapsed:.1f} s with {args.workers} workers")
    lenient, fp = summary["lenient"], summary["false_positives"]["lenient"]
    print(f"target lenient agreement >= 98%: {'met' if lenient['agreement'] >= 0.98 else 'NOT met'} "
          f"({lenient['agreement']:.1%} raw, {lenient['agreement_where_policies_coincide']:.1%} without the "
          f"{lenient['deliberate']} deliberate differences); target 0 digit-in-word false positives: "
          f"{'met' if fp == 0 else f'NOT met ({fp} in lenient mode)'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
