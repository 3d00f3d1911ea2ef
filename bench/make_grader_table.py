r"""Write ``tests/data/grader_table.jsonl``: gold / response pairs in the styles real models produce, for the
grader-agreement benchmark (``bench/grader_agreement.py``) and its unit test.

Rows are ``{"id", "category", "gold", "response"}``. Each category draws values from a seeded generator and
renders them with a handful of response templates (boxed and unboxed, LaTeX and plain text, Minerva's "final
answer is ... I hope it is correct", GSM8K's ``#### N``, answers after ``</think>``); about a quarter of the
rows state a wrong value so that both verdicts occur. The ``digits_in_words`` rows hold the gold digit only
inside words ("AZYUK2A", "H2O", "mp3"): any grader that scores them correct is reading stray digits.

Deterministic: the same seed writes the same file (``python bench/make_grader_table.py --check`` verifies the
committed file is up to date).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "grader_table.jsonl"
SEED = 20250611
WRONG_RATE = 0.25

THINKING = [
    "Let me set up the problem. We have {a} items and {b} groups, so first I compute {a} + {b} = {c}. "
    "Hmm, that is not what is asked. Let me re-read the question.",
    "Okay, so the question asks for a value. Let me try small cases: with n = {a} I get {b}, with n = {c} "
    "it grows. Wait, I should be careful with the boundary. Let me redo it.",
    "First, note that {a} * {b} = {ab}. Then dividing by {c} does not give an integer, so that approach "
    "fails. Let me try another way: substitute and simplify.",
    "I think the key observation is symmetry. If I pair terms, each pair sums to {c}. There are {a} pairs. "
    "Let me double-check this with a direct computation.",
]
FILLER = [
    "Let me work through this step by step.",
    "We start by writing down what we know.",
    "To solve this, I will simplify the expression first.",
    "First, let's understand the problem.",
    "",
]


def _think(rng: random.Random) -> str:
    a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 40)
    return "<think>\n" + rng.choice(THINKING).format(a=a, b=b, c=c, ab=a * b) + "\n</think>\n\n"


def _lead(rng: random.Random) -> str:
    lead = rng.choice(FILLER)
    return lead + " " if lead else ""


def _maybe_wrong(rng: random.Random, right: str, wrong: Callable[[], str]) -> str:
    return wrong() if rng.random() < WRONG_RATE else right


def _render(rng: random.Random, latex: str, plain: str, noun: str, boxed_share: float = 0.4) -> str:
    """One response stating ``latex`` (math form) or ``plain`` (text form) as the result, boxed or not."""
    lead = _lead(rng)
    if rng.random() < boxed_share:
        return rng.choice(
            [
                f"{lead}Therefore, the {noun} is $\\boxed{{{latex}}}$.",
                f"{lead}So we get\n\\[\n\\boxed{{{latex}}}\n\\]",
                f"{lead}Final Answer: The final answer is $\\boxed{{{latex}}}$. I hope it is correct.",
                f"{lead}The {noun} is $\\boxed{{{latex}}}$",
            ]
        )
    return rng.choice(
        [
            f"{lead}Therefore, the {noun} is ${latex}$.",
            f"{lead}So the {noun} is {plain}.",
            f"{lead}Putting it together, we find that the {noun} equals ${latex}$.",
            f"{lead}Final Answer: The final answer is ${latex}$. I hope it is correct.",
            f"{lead}Thus the {noun} is {plain}",
            f"{lead}This gives ${latex}$ as the {noun}.",
        ]
    )


def _fraction(rng: random.Random) -> tuple[int, int]:
    while True:
        n, d = rng.randint(1, 15), rng.randint(2, 16)
        if math.gcd(n, d) == 1 and n != d:
            return n, d


def gen_fraction(rng: random.Random) -> tuple[str, str]:
    n, d = _fraction(rng)
    gold = rng.choice([f"\\frac{{{n}}}{{{d}}}", f"{n}/{d}"])
    rn, rd = n, d
    if rng.random() < WRONG_RATE:
        rn, rd = _fraction(rng)
    k = rng.choice([1, 1, 2])
    latex = rng.choice([f"\\frac{{{rn}}}{{{rd}}}", f"\\frac{{{rn * k}}}{{{rd * k}}}"])
    return gold, _render(rng, latex, f"{rn}/{rd}", rng.choice(["probability", "ratio", "fraction"]))


def gen_dfrac(rng: random.Random) -> tuple[str, str]:
    n, d = _fraction(rng)
    rn, rd = (n, d) if rng.random() >= WRONG_RATE else _fraction(rng)
    return f"\\frac{{{n}}}{{{d}}}", _render(rng, f"\\dfrac{{{rn}}}{{{rd}}}", f"{rn}/{rd}", "value")


def gen_frac_short(rng: random.Random) -> tuple[str, str]:
    while True:
        n, d = rng.randint(1, 9), rng.randint(2, 9)
        if math.gcd(n, d) == 1:
            break
    gold = rng.choice([f"{n}/{d}", f"\\frac{{{n}}}{{{d}}}"])
    rn = n if rng.random() >= WRONG_RATE else (n % 9) + 1
    latex = rng.choice([f"\\frac{rn}{d}", f"\\tfrac{rn}{d}", f"\\dfrac{rn}{d}"])
    return gold, _render(rng, latex, f"${latex}$", "probability")


def gen_thousands(rng: random.Random) -> tuple[str, str]:
    value = rng.choice([1000, 2500, 12345, 40000, 1234567, 7200, 100000, 3050])
    shown = _maybe_wrong(rng, str(value), lambda: str(value + rng.choice([10, 100, 1000])))
    grouped = f"{int(shown):,}"
    style = rng.random()
    if style < 0.35:
        text = grouped
    elif style < 0.7:
        text = grouped.replace(",", " ")
    else:
        text = grouped.replace(",", "{,}")
    noun = rng.choice(["people", "marbles", "dollars", "steps", "sheets"])
    plain = text if "{" not in text else grouped
    response = rng.choice(
        [
            f"{_lead(rng)}Adding everything up, there are {plain} {noun} in total.",
            f"{_lead(rng)}The total is ${text}$.",
            f"{_lead(rng)}So the answer is $\\boxed{{{text}}}$.",
            f"{_lead(rng)}Multiplying, we get {plain} {noun}.\n#### {plain}",
        ]
    )
    return str(value), response


def gen_decimal(rng: random.Random) -> tuple[str, str]:
    value = rng.choice(["0.4", "0.25", "0.75", "0.5", "0.125", "0.05", "0.9"])
    shown = _maybe_wrong(rng, value, lambda: rng.choice(["0.45", "0.2", "0.6", "0.35"]))
    short = shown[1:]  # ".4"
    response = rng.choice(
        [
            f"{_lead(rng)}The probability is {short}.",
            f"{_lead(rng)}So the probability of success is ${short}$.",
            f"{_lead(rng)}Hence $p = {short}$",
            f"{_lead(rng)}Therefore the answer is $\\boxed{{{short}}}$.",
            f"{_lead(rng)}The expected fraction is {short}",
        ]
    )
    return value, response


def gen_percent(rng: random.Random) -> tuple[str, str]:
    value = rng.choice([5, 10, 12, 20, 25, 40, 45, 60, 75, 80])
    gold = rng.choice([str(value), f"{value}\\%"])
    shown = _maybe_wrong(rng, str(value), lambda: str(value + rng.choice([5, 10, -3])))
    response = rng.choice(
        [
            f"{_lead(rng)}So the discount is {shown}%.",
            f"{_lead(rng)}The price increased by {shown} percent.",
            f"{_lead(rng)}Therefore the percentage is ${shown}\\%$.",
            f"{_lead(rng)}The answer is $\\boxed{{{shown}\\%}}$.",
            f"{_lead(rng)}That means {shown}% of the students passed.",
        ]
    )
    return gold, response


def gen_units(rng: random.Random) -> tuple[str, str]:
    value = rng.randint(3, 250)
    shown = _maybe_wrong(rng, str(value), lambda: str(value + rng.choice([1, 2, 10])))
    response = rng.choice(
        [
            f"{_lead(rng)}The rope is {shown} cm long.",
            f"{_lead(rng)}She makes ${shown} every day at the market.",
            f"{_lead(rng)}So the total cost is ${shown}.",
            f"{_lead(rng)}The trip takes {shown} minutes.",
            f"{_lead(rng)}Therefore the side length is $\\boxed{{{shown} \\text{{ cm}}}}$.",
            f"{_lead(rng)}He spends $\\boxed{{\\${shown}}}$ in total.",
            f"{_lead(rng)}The tank holds {shown} liters of water.",
            f"{_lead(rng)}The answer is {shown} km.",
        ]
    )
    return str(value), response


def _interval(rng: random.Random) -> str:
    a, b = sorted(rng.sample(range(-9, 10), 2))
    left, right = rng.choice("[("), rng.choice("])")
    return rng.choice([f"{left}{a}, {b}{right}", f"(-\\infty, {b}{right}", f"{left}{a}, \\infty)"])


def gen_interval(rng: random.Random) -> tuple[str, str]:
    gold = _interval(rng)
    shown = _maybe_wrong(rng, gold, lambda: _interval(rng))
    response = rng.choice(
        [
            f"{_lead(rng)}So the solution set is $x \\in {shown}$.",
            f"{_lead(rng)}Therefore the domain is ${shown}$.",
            f"{_lead(rng)}Hence the answer is the interval ${shown}$.",
            f"{_lead(rng)}The range of $f$ is $\\boxed{{{shown}}}$.",
        ]
    )
    return gold, response


def gen_set(rng: random.Random) -> tuple[str, str]:
    values = sorted(rng.sample(range(-6, 10), rng.randint(2, 4)))
    shown = values if rng.random() >= WRONG_RATE else sorted({*values[:-1], values[-1] + 1})
    order = shown[:]
    rng.shuffle(order)
    listed = ", ".join(map(str, order))
    gold = "\\{" + ", ".join(map(str, values)) + "\\}"
    response = rng.choice(
        [
            f"{_lead(rng)}The set of solutions is $\\{{{listed}\\}}$.",
            f"{_lead(rng)}So the roots are $\\boxed{{{listed}}}$.",
            f"{_lead(rng)}Therefore $S = \\{{{listed}\\}}$.",
            f"{_lead(rng)}The solutions are {listed}.",
        ]
    )
    return gold, response


def gen_relation(rng: random.Random) -> tuple[str, str]:
    var, bound = rng.choice("xyt"), rng.randint(-9, 12)
    ops = [("\\geq", ">="), ("\\leq", "<="), (">", ">"), ("<", "<")]
    latex_op, plain_op = rng.choice(ops)
    gold = rng.choice([f"{var} {plain_op} {bound}", f"{var} {latex_op} {bound}"])
    shown = bound if rng.random() >= WRONG_RATE else bound + 1
    alt = {"\\geq": "\\ge", "\\leq": "\\le"}.get(latex_op, latex_op)
    response = rng.choice(
        [
            f"{_lead(rng)}Therefore ${var} {latex_op} {shown}$ is the solution.",
            f"{_lead(rng)}Solving the inequality gives ${var} {alt} {shown}$.",
            f"{_lead(rng)}So the condition is $\\boxed{{{var} {latex_op} {shown}}}$.",
            f"{_lead(rng)}The inequality holds exactly when ${var} {latex_op} {shown}$.",
        ]
    )
    return gold, response


def gen_equation(rng: random.Random) -> tuple[str, str]:
    value = rng.randint(-12, 30)
    shown = _maybe_wrong(rng, str(value), lambda: str(value + rng.choice([-2, 1, 3])))
    var = rng.choice("xyn")
    if rng.random() < 0.3:
        m, c = rng.randint(2, 5), rng.randint(-4, 6)
        gold = f"y = {m}x + {c}" if c >= 0 else f"y = {m}x - {-c}"
        mm = m if rng.random() >= WRONG_RATE else m + 1
        line = f"y = {mm}x + {c}" if c >= 0 else f"y = {mm}x - {-c}"
        return gold, rng.choice(
            [
                f"{_lead(rng)}The equation of the line is ${line}$.",
                f"{_lead(rng)}So the tangent line is $\\boxed{{{line}}}$.",
            ]
        )
    gold = rng.choice([str(value), f"{var} = {value}"])
    response = rng.choice(
        [
            f"{_lead(rng)}Subtracting from both sides gives ${var} = {shown}$.",
            f"{_lead(rng)}Solving, we find ${var} = {shown}$.",
            f"{_lead(rng)}Hence $\\boxed{{{var} = {shown}}}$.",
            f"{_lead(rng)}Therefore {var} = {shown}.",
        ]
    )
    return gold, response


def _matrix(entries: list[int], cols: int) -> str:
    rows = [" & ".join(map(str, entries[i : i + cols])) for i in range(0, len(entries), cols)]
    return "\\begin{pmatrix} " + " \\\\ ".join(rows) + " \\end{pmatrix}"


def gen_matrix(rng: random.Random) -> tuple[str, str]:
    cols = rng.choice([1, 2])
    entries = [rng.randint(-9, 9) for _ in range(4 if cols == 2 else rng.choice([2, 3]))]
    shown = entries[:]
    if rng.random() < WRONG_RATE:
        shown[0] += 1
    latex = _matrix(shown, cols)
    response = rng.choice(
        [
            f"{_lead(rng)}So the product is ${latex}$.",
            f"{_lead(rng)}Therefore the answer is $\\boxed{{{latex}}}$.",
            f"{_lead(rng)}The resulting vector is\n\\[\n{latex}.\n\\]",
        ]
    )
    return _matrix(entries, cols), response


def gen_choice(rng: random.Random) -> tuple[str, str]:
    letter = rng.choice("ABCDE")
    gold = rng.choice([letter, f"\\text{{({letter})}}"])
    shown = _maybe_wrong(rng, letter, lambda: rng.choice([c for c in "ABCDE" if c != letter]))
    response = rng.choice(
        [
            f"{_lead(rng)}The answer is ({shown}).",
            f"{_lead(rng)}**Answer: {shown}**",
            f"{_lead(rng)}Therefore the correct option is $\\boxed{{{shown}}}$.",
            f"{_lead(rng)}So the correct choice is $\\text{{({shown})}}$.",
            f"{_lead(rng)}The final answer is $\\boxed{{\\text{{({shown})}}}}$.",
            f"{_lead(rng)}Answer: {shown}",
        ]
    )
    return gold, response


def gen_integer(rng: random.Random) -> tuple[str, str]:
    value = rng.randint(2, 400)
    a = rng.randint(1, value - 1)
    shown = _maybe_wrong(rng, str(value), lambda: str(value + rng.choice([-1, 1, 2, 10])))
    response = rng.choice(
        [
            f"She has {a} apples and buys {value - a} more, so she has {a} + {value - a} = {shown} apples.",
            f"{_lead(rng)}First, {a} + {value - a} = {value}. So the answer is {shown}.",
            f"{_lead(rng)}Adding the two parts: {a} + {value - a} = {shown}.\n#### {shown}",
            f"{_lead(rng)}Thus the number of students is {shown}.",
            f"{_lead(rng)}The answer is $\\boxed{{{shown}}}$.",
            f"{_lead(rng)}**Final Answer:** {shown}",
        ]
    )
    return str(value), response


def gen_think(rng: random.Random) -> tuple[str, str]:
    value = rng.randint(2, 300)
    shown = _maybe_wrong(rng, str(value), lambda: str(value + rng.choice([-1, 1, 5])))
    tail = rng.choice(
        [
            f"The answer is $\\boxed{{{shown}}}$.",
            f"So the total is {shown}.",
            f"**Final answer:** {shown}",
            f"Therefore, there are {shown} ways.",
            f"The final answer is {shown}.",
            f"${shown}$",
        ]
    )
    return str(value), _think(rng) + tail


WORD_DIGITS = [
    tuple(pair.split(":"))
    for pair in (
        "AZYUK2A:2 H2O:2 CO2:2 mp3:3 MP4:4 COVID19:19 B2B:2 IPv6:6 A4:4 GPT4o:4 Route66:66 x86:86 F1:1 R2D2:2 "
        "W3C:3 K9:9 Y2K:2 P2P:2 S3:3 Win7:7 mp3s:3 4chan:4 e2e:2 PS5:5"
    ).split()
]
"""(word, the digit in it): the gold of a ``digits_in_words`` row is the digit, which appears only in the word."""
WORD_TEMPLATES = [
    "{w}",
    "The formula involves {w}, but I cannot determine the quantity from the given information.",
    "I saved my work as {w} and ran out of time before finishing the computation.",
    "This reminds me of {w}. Without more information the problem cannot be solved.",
    "Hmm, {w}? I am not sure what the question is asking.",
    "Let me think about {w} again... I could not finish the calculation.",
]


def gen_digits_in_words(rng: random.Random, i: int) -> tuple[str, str]:
    word, digit = WORD_DIGITS[i % len(WORD_DIGITS)]
    return digit, rng.choice(WORD_TEMPLATES).format(w=word)


CATEGORIES: dict[str, tuple[int, Callable[[random.Random], tuple[str, str]]]] = {
    "fraction": (24, gen_fraction),
    "dfrac": (16, gen_dfrac),
    "frac_short": (16, gen_frac_short),
    "thousands": (22, gen_thousands),
    "decimal_no_leading_zero": (16, gen_decimal),
    "percent": (18, gen_percent),
    "units": (22, gen_units),
    "interval": (18, gen_interval),
    "set": (16, gen_set),
    "relation": (18, gen_relation),
    "equation": (20, gen_equation),
    "matrix": (14, gen_matrix),
    "multiple_choice": (18, gen_choice),
    "integer": (24, gen_integer),
    "after_think": (24, gen_think),
}
DIGIT_ROWS = 24


def build(seed: int = SEED) -> list[dict]:
    """All rows, in a fixed order (categories as listed, then the digits-in-words rows)."""
    rng = random.Random(seed)
    rows = []
    for category, (count, gen) in CATEGORIES.items():
        for i in range(count):
            gold, response = gen(rng)
            rows.append(
                {"id": f"{category}-{i:03d}", "category": category, "gold": gold, "response": response}
            )
    for i in range(DIGIT_ROWS):
        gold, response = gen_digits_in_words(rng, i)
        rows.append({"id": f"digits_in_words-{i:03d}", "category": "digits_in_words", "gold": gold,
                     "response": response})  # fmt: skip
    return rows


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write. Default: {OUT}")
    parser.add_argument("--seed", type=int, default=SEED, help=f"generator seed. Default: {SEED}")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs from what would be written"
    )
    args = parser.parse_args(argv)
    rows = build(args.seed)
    text = render(rows)
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'OUT OF DATE'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    unboxed = sum("\\boxed" not in r["response"] for r in rows)
    print(f"wrote {len(rows)} rows ({unboxed} unboxed) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
