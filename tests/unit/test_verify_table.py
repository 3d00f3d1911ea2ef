r"""A table of gold / response / expected verdicts in the styles real models produce.

Every case goes through the real pipeline (extraction, gold normalisation, math-verify in the worker pool).
The whole table is graded in one ``grade_many`` batch per mode (module fixtures) so the pool works in parallel.
Expected verdicts are for the ``lenient`` mode (the evaluation default); in ``strict`` mode the rows without
a marked answer (``UNMARKED``) have no answer and every other row keeps its verdict.
"""

from __future__ import annotations

import pytest

from reasoner.types import Verdict
from reasoner.verify import grade_many

OK, NO, UNP = "ok", "no_answer", "unparsable"
T = "<think>\nLet me work through this carefully. First, ...\n</think>\n\n"

# (id, gold, response, correct, status); gold may be raw benchmark data (GSM8K solution, AMC float, list).
BOXED_NUMBERS = [
    ("int", "18", r"So she makes $9 \times 2 = 18$ dollars. \boxed{18}", True, OK),
    ("int-wrong", "18", r"The answer is \boxed{16}.", False, OK),
    ("int-negative", "-7", r"Thus $x = \boxed{-7}$.", True, OK),
    ("int-negative-wrong", "-7", r"Thus $x = \boxed{7}$.", False, OK),
    ("int-spaces", "42", r"\boxed{ 42 }", True, OK),
    ("int-dollar", "18", r"She makes \boxed{\$18} every day.", True, OK),
    ("int-dollar-text", "18", r"\boxed{18 \text{ dollars}}", True, OK),
    ("int-dollars-word", "18", r"\boxed{18\text{ dollars}}", True, OK),
    ("decimal-money", "18.90", r"The total is \boxed{\$18.90}.", True, OK),
    ("decimal-trailing-zero", "18.9", r"\boxed{18.90}", True, OK),
    ("decimal-wrong", "18.9", r"\boxed{18.09}", False, OK),
    ("int-as-float", "27", r"\boxed{27.0}", True, OK),
    ("float-gold-int-answer", "27.0", r"\boxed{27}", True, OK),
    ("zero", "0", r"\boxed{0}", True, OK),
    ("zero-wrong", "0", r"\boxed{1}", False, OK),
    ("big-int", "1000000", r"\boxed{1000000}", True, OK),
    ("big-int-wrong", "1000000", r"\boxed{1000001}", False, OK),
    ("leading-plus", "5", r"\boxed{+5}", True, OK),
    ("fbox", "204", r"the walk takes $\fbox{204}$ minutes", True, OK),
    ("framebox", "204", r"or $\framebox{204}$ minutes", True, OK),
    ("boxed-space", "5", r"Hence the result is \boxed 5.", True, OK),
    ("boxed-in-display", "12", "\\[\n\\boxed{12}\n\\]", True, OK),
    ("double-box", "3", r"\boxed{\boxed{3}}", True, OK),
]
COMMAS = [
    ("comma-thousands", "1234", r"\boxed{1,234}", True, OK),
    ("comma-latex-braces", "1234", r"\boxed{1{,}234}", True, OK),
    ("comma-millions", "1234567", r"\boxed{1,234,567}", True, OK),
    ("comma-wrong", "1234", r"\boxed{1,243}", False, OK),
    ("gsm8k-gold-comma", "He made 70,000 in profit.\n#### 70,000", r"\boxed{70000}", True, OK),
    (
        "gsm8k-gold-raw",
        "It takes 2/2=<<2/2=1>>1 bolt\nSo 2+1=<<2+1=3>>3 bolts\n#### 3",
        r"\boxed{3}",
        True,
        OK,
    ),
    ("gsm8k-gold-raw-wrong", "So 2+1=<<2+1=3>>3 bolts\n#### 3", r"\boxed{4}", False, OK),
    ("gsm8k-response-hashes", "72", "Natalia sold 48/2 = 24 clips in May.\n48+24 = 72\n#### 72", True, OK),
    ("gsm8k-response-hashes-comma", "5600", "So the total is 5,600.\n#### 5,600", True, OK),
    ("gsm8k-hashes-dollar", "5600", "#### $5,600", True, OK),
    ("comma-in-text", "10000", "The answer is 10,000.", True, OK),
    ("comma-space-is-list", "10000", r"\boxed{10, 000}", False, OK),
]
FRACTIONS = [
    ("frac", r"\frac{1}{2}", r"\boxed{\frac{1}{2}}", True, OK),
    ("dfrac", r"\frac{1}{2}", r"\boxed{\dfrac{1}{2}}", True, OK),
    ("tfrac", r"\frac{1}{2}", r"\boxed{\tfrac12}", True, OK),
    ("frac-short", r"\frac12", r"\boxed{\frac{1}{2}}", True, OK),
    ("slash", r"\frac{1}{2}", r"\boxed{1/2}", True, OK),
    ("decimal-of-frac", r"\frac{1}{2}", r"\boxed{0.5}", True, OK),
    ("unreduced", r"\frac{1}{3}", r"\boxed{\frac{2}{6}}", True, OK),
    ("frac-wrong", r"\frac{1}{3}", r"\boxed{\frac{1}{4}}", False, OK),
    ("frac-negative", r"-\frac{3}{4}", r"\boxed{-\frac{3}{4}}", True, OK),
    ("frac-negative-inside", r"-\frac{3}{4}", r"\boxed{\frac{-3}{4}}", True, OK),
    ("frac-sign-wrong", r"-\frac{3}{4}", r"\boxed{\frac{3}{4}}", False, OK),
    ("frac-vs-rounded-decimal", r"\frac{1}{3}", r"\boxed{0.33}", False, OK),
    ("frac-sqrt", r"\frac{\sqrt{3}}{2}", r"\boxed{\frac{\sqrt3}{2}}", True, OK),
    ("frac-sqrt-rationalised", r"\frac{1}{\sqrt{2}}", r"\boxed{\frac{\sqrt{2}}{2}}", True, OK),
    ("frac-pi", r"\frac{\pi}{4}", r"\boxed{\pi/4}", True, OK),
    ("improper", r"\frac{7}{2}", r"\boxed{3.5}", True, OK),
    ("frac-of-sums", r"\frac{1+\sqrt{5}}{2}", r"\boxed{\dfrac{1+\sqrt{5}}{2}}", True, OK),
    ("frac-of-sums-wrong", r"\frac{1+\sqrt{5}}{2}", r"\boxed{\dfrac{1-\sqrt{5}}{2}}", False, OK),
    ("amc-float-gold-frac", 0.5, r"\boxed{\frac{1}{2}}", True, OK),
    (
        "final-answer-frac",
        r"\frac{9}{4}",
        "Final Answer: The final answer is $\\frac{9}{4}$. I hope it is correct.",
        True,
        OK,
    ),
]
LATEX = [
    ("sqrt", r"2\sqrt{2}", r"\boxed{2\sqrt{2}}", True, OK),
    ("sqrt-unsimplified", r"2\sqrt{2}", r"\boxed{\sqrt{8}}", True, OK),
    ("sqrt-wrong", r"2\sqrt{2}", r"\boxed{\sqrt{2}}", False, OK),
    ("sqrt-no-braces", r"3\sqrt{3}", r"\boxed{3\sqrt3}", True, OK),
    ("pi-times", r"6\pi", r"\boxed{6 \pi}", True, OK),
    ("pi-wrong", r"6\pi", r"\boxed{3\pi}", False, OK),
    ("power", "2^{10}", r"\boxed{1024}", True, OK),
    ("cdot", r"2 \cdot 3^2", r"\boxed{18}", True, OK),
    ("left-right", r"\left( 3, \frac{\pi}{2} \right)", r"\boxed{(3, \frac{\pi}{2})}", True, OK),
    ("tuple-slash", r"\left( 3, \frac{\pi}{2} \right)", r"\boxed{(3,\pi/2)}", True, OK),
    ("tuple-wrong-order", r"\left( 3, \frac{\pi}{2} \right)", r"\boxed{(\frac{\pi}{2}, 3)}", False, OK),
    ("degrees-gold", r"90^\circ", r"\boxed{90}", True, OK),
    ("degrees-answer", "45", r"\boxed{45^\circ}", True, OK),
    ("degrees-answer-braced", "45", r"\boxed{45^{\circ}}", True, OK),
    ("degrees-wrong", "45", r"\boxed{90^\circ}", False, OK),
    ("expression", r"x^2+2x+1", r"\boxed{(x+1)^2}", True, OK),
    ("expression-reordered", "x+1", r"\boxed{1+x}", True, OK),
    ("expression-wrong", "x+1", r"\boxed{x-1}", False, OK),
    ("equation-gold", "x=3", r"\boxed{3}", True, OK),
    ("equation-answer", "3", r"\boxed{x = 3}", True, OK),
    ("equation-both", "y=2x+1", r"\boxed{y = 1 + 2x}", True, OK),
    ("function-gold", "f(x)=x+22", r"\boxed{x+22}", True, OK),
    ("text-choice", r"\text{(C)}", r"\boxed{C}", True, OK),
    ("text-choice-wrong", r"\text{(C)}", r"\boxed{D}", False, OK),
    ("textbf-choice", r"\textbf{(B)}", r"\boxed{\textbf{(B)}}", True, OK),
    ("text-word", r"\text{Monday}", r"\boxed{\text{Monday}}", True, OK),
    ("text-word-wrong", r"\text{Monday}", r"\boxed{\text{Tuesday}}", False, OK),
    ("mathrm", "10", r"\boxed{\mathrm{10}}", True, OK),
    ("dfrac-in-sum", r"\frac{3}{2}+\sqrt{2}", r"\boxed{\sqrt{2}+\dfrac{3}{2}}", True, OK),
    ("exp-e", "e^{2}", r"\boxed{e^2}", True, OK),
    ("log", r"\log_2 8", r"\boxed{3}", True, OK),
    ("complex", "3+4i", r"\boxed{4i+3}", True, OK),
    ("complex-wrong", "3+4i", r"\boxed{3-4i}", False, OK),
    (
        "pmatrix",
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
        r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}",
        True,
        OK,
    ),
    (
        "pmatrix-wrong",
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
        r"\boxed{\begin{pmatrix} 2 \\ 1 \end{pmatrix}}",
        False,
        OK,
    ),
    (
        "inline-math-dollars",
        r"\frac{5}{6}",
        "The probability is therefore $\\boxed{\\frac{5}{6}}$.",
        True,
        OK,
    ),
    ("display-parens", "7", r"Therefore \(\boxed{7}\)", True, OK),
    ("sci-minerva", "4.5e33", r"\boxed{4.5 \times 10^{33}}", True, OK),
    ("sci-minerva-answer-e", r"4.5 \times 10^{33}", r"\boxed{4.5e33}", True, OK),
    ("sci-wrong", "4.5e33", r"\boxed{4.5 \times 10^{32}}", False, OK),
]
UNITS_PERCENT = [
    ("unit-cm", "1.6", r"\boxed{1.6 \mathrm{~cm}}", True, OK),
    ("unit-text", "50", r"\boxed{50 \text{ meters}}", True, OK),
    ("unit-squared", "10", r"\boxed{10 \text{ cm}^2}", True, OK),
    ("unit-after-box", "8", r"It takes \boxed{8} minutes.", True, OK),
    ("unit-words-final-answer", "8", "The final answer is 8 minutes.", True, OK),
    ("unit-hours-wrong", "8", r"\boxed{9 \text{ hours}}", False, OK),
    ("percent-gold", r"50\%", r"\boxed{50}", True, OK),
    ("percent-answer", "50", r"\boxed{50\%}", True, OK),
    ("percent-both", r"25\%", r"\boxed{25\%}", True, OK),
    ("percent-word", "25", r"\boxed{25 \text{ percent}}", True, OK),
    ("percent-wrong", "25", r"\boxed{20\%}", False, OK),
    ("percent-as-fraction", "0.25", r"\boxed{25\%}", True, OK),
    ("percent-plain-text", "40", "So the discount is 40%.", True, OK),
]
SETS_INTERVALS = [
    ("set", r"\{1, 2\}", r"\boxed{\{2, 1\}}", True, OK),
    ("set-wrong", r"\{1, 2\}", r"\boxed{\{1, 3\}}", False, OK),
    ("list-unordered", "1, 2, 3", r"\boxed{3, 2, 1}", True, OK),
    ("list-missing-one", "1, 2, 3", r"\boxed{1, 2}", False, OK),
    ("interval-closed", "[1, 2]", r"\boxed{[1,2]}", True, OK),
    ("interval-half-open", "[1, 2)", r"\boxed{[1, 2)}", True, OK),
    ("interval-wrong-bracket", "[1, 2)", r"\boxed{[1, 2]}", False, OK),
    ("interval-infinity", r"(-\infty, 3]", r"\boxed{(-\infty,3]}", True, OK),
    ("interval-union", r"(-\infty, -1) \cup (1, \infty)", r"\boxed{(-\infty,-1)\cup(1,\infty)}", True, OK),
    ("interval-decimal", r"[\frac{1}{2}, 8]", r"\boxed{[0.5, 8]}", True, OK),
    ("olympiad-list", ["$69$,$84$"], r"\boxed{69, 84}", True, OK),
    ("olympiad-list-reversed", ["$69$,$84$"], r"\boxed{84, 69}", True, OK),
    ("olympiad-list-partial", ["$69$,$84$"], r"\boxed{69}", False, OK),
    ("olympiad-single", ["2"], r"\boxed{2}", True, OK),
    ("olympiad-expression", [r"$\frac{1-p^{2}}{3}$"], r"\boxed{\frac{1-p^2}{3}}", True, OK),
    ("olympiad-interval", [r"$[\frac{1}{2}, 8]$"], r"\boxed{\left[\frac12, 8\right]}", True, OK),
    ("olympiad-degrees-list", [r"$90^{\circ}$,$60^{\circ}$"], r"\boxed{60^\circ, 90^\circ}", True, OK),
    ("solutions-with-x", "2, -3", r"The solutions are $x = 2$ and $x = -3$, so \boxed{-3, 2}", True, OK),
]
THINKING = [
    ("think-then-box", "12", T + r"The answer is \boxed{12}.", True, OK),
    ("think-box-inside-only", "12", "<think>maybe \\boxed{12}</think>\n\nI am not sure.", False, NO),
    ("think-box-inside-differs", "12", "<think>so \\boxed{11}? no.</think> Final: \\boxed{12}", True, OK),
    ("think-inside-right-outside-wrong", "12", "<think>it is \\boxed{12}</think> \\boxed{13}", False, OK),
    ("think-unclosed", "12", "<think>Let me think. 3*4 = 12, so \\boxed{12}", False, NO),
    ("think-unclosed-number", "12", "<think>Let me think. 3*4 = 12", False, NO),
    ("think-close-only", "12", "3*4 = 12, so \\boxed{12}</think>The answer is \\boxed{12}.", True, OK),
    ("think-close-only-no-answer-after", "12", "3*4 = 12, so \\boxed{12}</think>", False, NO),
    ("think-then-final-answer", "7", T + "The final answer is 7.", True, OK),
    ("think-then-hashes", "7", T + "#### 7", True, OK),
    ("think-then-number", "7", T + "So we get 7", True, OK),
    ("think-two-spans", "5", "<think>a</think> draft \\boxed{4} <think>b</think> \\boxed{5}", True, OK),
    ("think-reopened", "5", "<think>a</think> \\boxed{5} <think> wait, let me re-check", False, NO),
    ("think-empty", "9", "<think></think>\\boxed{9}", True, OK),
]
NO_ANSWER = [
    ("empty", "5", "", False, NO),
    ("whitespace", "5", "   \n  ", False, NO),
    ("words-only", "5", "I am not able to solve this problem.", False, NO),
    ("empty-box", "5", r"Put the answer in \boxed{}.", False, NO),
    ("unclosed-box-truncated", "5", r"So the answer is \boxed{\frac{1}{", False, UNP),
    ("none-response", "5", None, False, NO),
    ("gold-empty", "", r"\boxed{5}", False, UNP),
    ("gold-none", None, r"\boxed{5}", False, UNP),
]
SEVERAL_BOXES = [
    ("last-box-wins", "5", r"First guess \boxed{4}, corrected: \boxed{5}", True, OK),
    ("last-box-wrong", "4", r"First guess \boxed{4}, corrected: \boxed{5}", False, OK),
    ("box-then-unclosed-box", "4", r"Answer \boxed{4}. Also \boxed{5", True, OK),
    ("nested-braces-box", r"\frac{1}{2}", r"\boxed{\frac{1}{{2}}}", True, OK),
    ("box-with-escaped-braces", r"\{1,2\}", r"\boxed{\{1,2\}}", True, OK),
    ("box-before-final-answer-phrase", "6", r"\boxed{6}. The final answer is 7.", True, OK),
    ("instruction-echo-then-box", "3", r"I will put the answer in \boxed{}. ... \boxed{3}", True, OK),
]
PHRASES = [
    ("final-answer-is", "42", "The final answer is 42.", True, OK),
    ("final-answer-colon", "42", "Final answer: 42", True, OK),
    ("final-answer-bold", "42", "**Final Answer:** 42", True, OK),
    ("final-answer-bold-is", "42", "**Final Answer** is $42$", True, OK),
    ("final-answer-math", "42", "The final answer is $42$. I hope it is correct.", True, OK),
    ("final-answer-next-line", "42", "Final answer:\n\\[ 42 \\]", True, OK),
    ("final-answer-wrong", "42", "The final answer is 24.", False, OK),
    ("answer-is", "42", "So the answer is 42.", True, OK),
    ("answer-colon", "42", "Answer: 42", True, OK),
    ("answer-is-colon", "42", "The answer is: 42", True, OK),
    ("answer-dollar", "18", "The answer is $18.", True, OK),
    ("answer-because", "18", "The answer is 18 because 9 * 2 = 18.", True, OK),
    ("final-answer-preferred", "7", "The final answer is 7. Let me double check the answer: yes.", True, OK),
    # a marked letter: math-verify reads none, so lenient agrees with it (no answer); strict counts the mark
    ("answer-choice", r"\text{(B)}", "The answer is (B).", False, NO),
    ("answer-decimal-period", "3.5", "The answer is 3.5.", True, OK),
    ("answer-fraction-text", r"\frac{3}{4}", "The answer is 3/4.", True, OK),
    ("answer-latex-paren", r"\frac{3}{4}", r"The answer is \(\frac{3}{4}\).", True, OK),
]
TRAILING = [  # no marked answer: math-verify's own extraction decides (lenient mode)
    ("trailing-number", "18", "She sells 9 eggs at $2 each, so she makes 18 dollars", True, OK),
    ("trailing-number-wrong", "18", "She sells 9 eggs at $2 each, earning 16 dollars", False, OK),
    ("trailing-negative", "-4", "The temperature dropped to -4", True, OK),
    ("trailing-decimal", "2.5", "It takes 2.5", True, OK),
    ("trailing-after-words", "30", "Total: 10 + 20 = 30 apples in the basket.", True, OK),
    ("trailing-comma-number", "1500", "Her savings grew to 1,500", True, OK),
]
BENCHMARK_GOLDS = [
    ("amc-float", 27.0, r"\boxed{27}", True, OK),
    ("amc-float-wrong", 27.0, r"\boxed{28}", False, OK),
    ("amc-float-decimal-answer", 36.0, r"\boxed{36.0}", True, OK),
    ("aime-int", 204, r"\boxed{204}", True, OK),
    ("aime-leading-zero", "033", r"\boxed{33}", True, OK),
    (
        "minerva-solution-gold",
        r"For the values given, $s=\boxed{1.6} \mathrm{~cm}$",
        r"\boxed{1.6}",
        True,
        OK,
    ),
    ("minerva-sci-gold", r"L \simeq \boxed{4.5e33} \mathrm{ergs}", r"\boxed{4.5\times10^{33}}", True, OK),
    (
        "minerva-sci-gold-wrong",
        r"L \simeq \boxed{4.5e33} \mathrm{ergs}",
        r"\boxed{4.5\times10^{23}}",
        False,
        OK,
    ),
    ("math-gold-dollars", r"$\frac{14}{3}$", r"\boxed{\frac{14}{3}}", True, OK),
    ("math-gold-escaped-dollar", r"\$32,\!000", r"\boxed{32000}", True, OK),
]
MISC_WRONG = [
    ("wrong-text-vs-number", "5", r"\boxed{five apples}", False, OK),
    ("wrong-variable", "x", r"\boxed{y}", False, OK),
    ("wrong-close-decimal", "3.14159", r"\boxed{3.14}", False, OK),
    ("right-pi-symbol-vs-number", r"\pi", r"\boxed{3.14}", False, OK),
    ("wrong-interval-vs-point", "[1, 2]", r"\boxed{1}", False, OK),
    ("wrong-sign-exponent", "2^{-3}", r"\boxed{8}", False, OK),
    ("right-negative-exponent", "2^{-3}", r"\boxed{\frac{1}{8}}", True, OK),
]

TABLE = (
    BOXED_NUMBERS
    + COMMAS
    + FRACTIONS
    + LATEX
    + UNITS_PERCENT
    + SETS_INTERVALS
    + THINKING
    + NO_ANSWER
    + SEVERAL_BOXES
    + PHRASES
    + TRAILING
    + BENCHMARK_GOLDS
    + MISC_WRONG
)
IDS = [case[0] for case in TABLE]
UNMARKED = {case[0] for case in TRAILING} | {
    "percent-plain-text",
    "think-then-number",
    "unclosed-box-truncated",
}
"""Rows whose answer is not marked (no box, no "answer is", no ``####``; "the answer is" followed by a box that
was cut off marks nothing): graded only in lenient mode."""


def test_table_is_big_and_ids_unique():
    assert len(TABLE) >= 150
    assert len(set(IDS)) == len(IDS)


@pytest.fixture(scope="module")
def verdicts():
    golds = [case[1] for case in TABLE]
    responses = [case[2] for case in TABLE]
    return dict(zip(IDS, grade_many(golds, responses, timeout=30.0), strict=True))


@pytest.fixture(scope="module")
def strict_verdicts():
    golds = [case[1] for case in TABLE]
    responses = [case[2] for case in TABLE]
    return dict(zip(IDS, grade_many(golds, responses, timeout=30.0, mode="strict"), strict=True))


@pytest.mark.parametrize(("case_id", "gold", "response", "correct", "status"), TABLE, ids=IDS)
def test_verdict(verdicts, case_id, gold, response, correct, status):
    verdict = verdicts[case_id]
    assert (verdict.correct, verdict.status) == (correct, status), verdict


MARKED_WORDS = {"answer-choice": Verdict(correct=True, extracted="(B)", status="ok")}
"""Marked answers with no digit and no math: strict mode grades them; lenient leaves them to math-verify."""


def test_strict_mode_grades_only_marked_answers(verdicts, strict_verdicts):
    for case_id in IDS:
        if case_id in MARKED_WORDS:
            assert strict_verdicts[case_id] == MARKED_WORDS[case_id], case_id
        elif case_id in UNMARKED:
            assert strict_verdicts[case_id] == Verdict(correct=False, extracted=None, status="no_answer"), (
                case_id
            )
        else:
            assert strict_verdicts[case_id] == verdicts[case_id], case_id


NUMERIC_PAIRS = [
    ("3", "3.0000001"), (r"\frac{1}{3}", "0.333333"), (r"\frac{1}{3}", "0.33"), ("2", "2.000"), ("-7", "-7"),
    ("1000000", "1000000.4"), ("0.1", "0.10000001"), (r"\pi", "3.14159265"), ("0.5", r"\frac{1}{2}"),
    ("18.9", "18.90"), ("0", "-0"), ("1234", "1234.0"), (r"50\%", "50"), ("0.25", r"25\%"), ("12", "13"),
]  # fmt: skip


@pytest.mark.parametrize(("gold", "answer"), NUMERIC_PAIRS)
def test_worker_number_parse_agrees_with_math_verify(gold, answer):
    """Plain numbers skip math-verify's LaTeX grammar in the worker; verdicts must not change."""
    from math_verify import parse, verify

    from reasoner.verify.worker import run_task

    expected = verify(
        gold=parse(f"\\boxed{{{gold}}}", parsing_timeout=None),
        target=parse(f"\\boxed{{{answer}}}", parsing_timeout=None),
        timeout_seconds=None,
    )
    assert run_task(("grade", gold, answer)) == ("ok", expected)
