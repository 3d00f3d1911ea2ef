"""Verifier throughput: responses graded per second, pool vs math-verify called directly.

Compares, in one run and on the same synthetic responses:
- math-verify called directly in one thread (``verify(gold=parse(gold), target=parse(response))``: its own
  extraction and SIGALRM timeouts, the way TRL's ``accuracy_reward`` uses it);
- ``reasoner.verify.grade_many`` through a ``VerifierPool`` with 2 workers, with the parent-side fast path off
  (every response compared by math-verify's ``verify`` in a worker; plain-number answers are built as sympy
  numbers there instead of going through math-verify's LaTeX grammar) and on (the default: two plain
  integers are compared in the parent);
on GSM8K-style outputs (the target: pool / direct >= 1.5 with 2 workers) and on MATH-style LaTeX answers
(fractions, roots: math-verify's full LaTeX parse runs in the workers). It also prints the pool's per-call
latency (p50/p99 of single ``grade()`` calls, fast path off) and CPU time per response. Direct and pooled
grading alternate in rounds so both see the same background load; wall-clock rates on a busy shared host are
noisy, CPU times are not. Run: ``python bench/verify_throughput.py [--n 600] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

from reasoner.verify import VerifierPool, grade, grade_many

NAMES = ["Janet", "Tom", "Aya", "Luis", "Mei", "Omar", "Priya", "Sam"]
ITEMS = ["eggs", "apples", "books", "marbles", "stickers", "cookies"]
Item = tuple[str, str, str]
"""(gold as the benchmark stores it, gold for math-verify, model response)"""


def gsm8k_item(rng: random.Random) -> Item:
    """A GSM8K-style (gold solution, response) pair; about 70% of the responses are right."""
    a, b, c = rng.randint(2, 400), rng.randint(2, 60), rng.randint(1, 50)
    who, what = rng.choice(NAMES), rng.choice(ITEMS)
    answer = a * b - c
    gold = f"{who} has {a}*{b}=<<{a}*{b}={a * b}>>{a * b} {what}.\nSo {a * b}-{c}=<<{a * b}-{c}={answer}>>{answer}.\n"
    said = answer if rng.random() < 0.7 else answer + rng.choice([-10, -1, 1, 2, 100])
    shown = f"{said:,}" if said >= 1000 and rng.random() < 0.5 else str(said)
    steps = f"{who} buys {a} boxes of {b} {what}: {a} x {b} = {a * b}.\nAfter giving {c} away: {a * b} - {c} = {said}.\n"
    ending = rng.choice(
        [
            f"The answer is \\boxed{{{shown}}}.",
            f"So the final answer is {shown}.",
            f"#### {shown}",
            f"Therefore, {who} has $\\boxed{{{said}}}$ {what}.",
        ]
    )
    return gold + f"#### {answer}", str(answer), steps + ending


def math_item(rng: random.Random) -> Item:
    """A MATH-style pair with a LaTeX answer (a fraction, possibly with a root); about 70% right."""
    p, q, k = rng.randint(1, 40), rng.randint(41, 97), rng.randint(2, 5)
    root = rng.choice(["", "\\sqrt{2}", "\\sqrt{3}"])
    gold = f"\\frac{{{p}{root}}}{{{q}}}"
    if rng.random() < 0.7:
        said = rng.choice(
            [f"\\dfrac{{{k * p}{root}}}{{{k * q}}}", f"\\frac{{{p}{root}}}{{{q}}}", f"{p}{root}/{q}"]
        )
    else:
        said = f"\\frac{{{p + 1}{root}}}{{{q}}}"
    return (
        gold,
        gold,
        f"Simplifying the ratio gives the probability.\nThus the answer is $\\boxed{{{said}}}$.",
    )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (Linux ``/proc``; 0 elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def direct(items: list[Item]) -> list[bool]:
    from math_verify import parse, verify

    return [bool(verify(gold=parse(f"${g}$"), target=parse(r))) for _, g, r in items]


def pooled(pool: VerifierPool, items: list[Item], fast_path: bool) -> list[bool]:
    verdicts = grade_many(
        [raw for raw, _, _ in items], [r for _, _, r in items], pool=pool, fast_path=fast_path
    )
    return [v.correct for v in verdicts]


def compare(pool: VerifierPool, items: list[Item], rounds: int) -> dict[str, float]:
    """Alternate direct and pooled (fast path off) grading over ``rounds`` slices; return times and CPU."""
    out = dict.fromkeys(
        ["t_direct", "t_pool", "cpu_direct", "cpu_workers", "cpu_parent", "agree", "correct"], 0.0
    )
    step = max(1, len(items) // rounds)
    for lo in range(0, len(items), step):
        part = items[lo : lo + step]
        c0, t0 = time.process_time(), time.perf_counter()
        ref = direct(part)
        out["t_direct"] += time.perf_counter() - t0
        out["cpu_direct"] += time.process_time() - c0
        pids = pool.worker_pids()
        w0, c0, t0 = cpu_seconds(pids), time.process_time(), time.perf_counter()
        got = pooled(pool, part, fast_path=False)
        out["t_pool"] += time.perf_counter() - t0
        out["cpu_parent"] += time.process_time() - c0
        out["cpu_workers"] += cpu_seconds(pids) - w0
        out["agree"] += sum(a == b for a, b in zip(ref, got, strict=True))
        out["correct"] += sum(ref)
    out["agree"] /= len(items)
    out["correct"] /= len(items)
    return out


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--n", type=int, default=600, help="GSM8K-style responses per measurement (default 600)"
    )
    parser.add_argument("--n-math", type=int, default=200, help="MATH-style responses (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="pool workers (default 2)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved direct/pool rounds (default 6)")
    parser.add_argument("--chunk-size", type=int, default=8, help="tasks per pool message (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    gsm = [gsm8k_item(rng) for _ in range(args.n)]
    gsm_fast = [gsm8k_item(rng) for _ in range(args.n)]
    gsm_latency = [gsm8k_item(rng) for _ in range(200)]
    hard = [math_item(rng) for _ in range(args.n_math)]
    warm = [gsm8k_item(rng) for _ in range(20)] + [math_item(rng) for _ in range(20)]

    pool = VerifierPool(workers=args.workers, chunk_size=args.chunk_size)
    assert pool.wait_ready(), "verifier workers did not start"
    pooled(pool, warm, fast_path=False)
    direct(warm)

    res = compare(pool, gsm, args.rounds)
    t_fast = timed(lambda: pooled(pool, gsm_fast, fast_path=True))
    lat = []
    for raw, _, response in gsm_latency:
        lat.append(timed(lambda raw=raw, response=response: grade(raw, response, pool=pool, fast_path=False)))
    res_math = compare(pool, hard, args.rounds)
    pool.close()

    report(args, res, res_math, t_fast, lat)


def report(args: argparse.Namespace, res: dict, res_math: dict, t_fast: float, lat: list[float]) -> None:
    """Print the measured rates, ratios, latency and CPU figures."""
    n, w = args.n, args.workers
    lat.sort()
    r_direct, r_pool, r_fast = n / res["t_direct"], n / res["t_pool"], n / t_fast
    print(
        f"GSM8K-style: {n} responses, {res['correct']:.0%} correct, pool/direct agreement {res['agree']:.1%}"
    )
    print(f"  math-verify direct, 1 thread:               {r_direct:9.1f} responses/s")
    print(
        f"  pool, {w} workers, fast path off:             {r_pool:9.1f} responses/s   ratio {r_pool / r_direct:5.2f}x"
    )
    print(
        f"  pool, {w} workers, default (int fast path):   {r_fast:9.1f} responses/s   ratio {r_fast / r_direct:5.1f}x"
    )
    print(
        f"  pool latency per grade() call (fast path off): p50 {statistics.median(lat) * 1e3:.2f} ms, "
        f"p99 {lat[int(0.99 * (len(lat) - 1))] * 1e3:.2f} ms"
    )
    m = args.n_math
    rm_direct, rm_pool = m / res_math["t_direct"], m / res_math["t_pool"]
    print(f"MATH-style LaTeX answers: {m} responses, pool/direct agreement {res_math['agree']:.1%}")
    print(f"  math-verify direct, 1 thread:               {rm_direct:9.1f} responses/s")
    print(
        f"  pool, {w} workers (full math-verify parse):   {rm_pool:9.1f} responses/s   ratio {rm_pool / rm_direct:5.2f}x"
    )
    for name, r, count in (("GSM8K", res, n), ("MATH", res_math, m)):
        print(
            f"CPU per response, {name}: direct {r['cpu_direct'] / count * 1e3:.2f} ms; pool workers "
            f"{r['cpu_workers'] / count * 1e3:.2f} ms + parent {r['cpu_parent'] / count * 1e3:.2f} ms"
        )
    print(f"host: {os.cpu_count()} cores, load average (1 min) {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
