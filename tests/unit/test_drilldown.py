"""The report's per-problem drill-down: every problem present, text escaped, bounded size, balanced tags."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from evals.drilldown import drilldown_html
from evals.rows import Row

TRACKED = frozenset({"section", "details", "summary", "pre", "div", "p", "span", "code", "b", "label"})
EVIL = "</pre></details><script>alert('pwned')</script><img src=x onerror=alert(1)>"


class TagChecker(HTMLParser):
    """Checks that the tracked tags open and close in nesting order; counts them and the scripts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self._in_script = tag == "script"
        if tag in TRACKED:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        self._in_script = False
        if tag not in TRACKED:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} at {self.getpos()}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def check(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    return checker


def row(pid, strategy, budget, seed, answer, correct, samples, *, gold="42", new=True) -> Row:
    out: dict = {
        "problem_id": pid,
        "strategy": strategy,
        "budget": budget,
        "seed": seed,
        "answer": answer,
        "gold": gold,
        "correct": correct,
        "status": "ok" if answer is not None else "no_answer",
        "tokens": {
            "thinking": 3,
            "answer": 2,
            "generated": 5 * len(samples),
            "prefilled": 7,
            "sequential": 5,
        },
        "spent": 5,
        "wall_s": 0.1,
        "measured_s": 0.1,
        "samples": [],
    }
    for text, ans, ok in samples:
        s = {"tokens": 5, "finish": "stop" if ans is not None else "length", "answer": ans, "correct": ok}
        if new:
            s |= {"status": "ok" if ans is not None else "no_answer", "text": text}
        out["samples"].append(s)
    if new:
        out["grader"] = "lenient"
    return Row.from_json(out)  # the stored format, old (no text, status or grader) or new


@pytest.fixture
def rows():
    long = "step " * 10_000 + "so the answer is \\boxed{42}"
    return [
        row("p0", "greedy", 64, 0, "42", True, [("short one \\boxed{42}", "42", True)]),
        row("p0", "majority:k=2", 64, 0, "41", False, [(EVIL, "41", False), (long, "42", True)]),
        row("p1 <b>", "greedy", 64, 0, None, False, [("ran out", None, False)], gold="7 & 8"),
        # an old-format row: no text, status or grader
        row(
            "p1 <b>",
            "majority:k=2",
            64,
            0,
            "7",
            False,
            [("", "7", False), ("", "7", False)],
            gold="7 & 8",
            new=False,
        ),
        row("p2", "greedy", 64, 0, "1", True, [("\\boxed{1}", "1", True)], gold="1"),
        row("p2", "greedy", 64, 1, "2", False, [("\\boxed{2}", "2", False)], gold="1"),
    ]


def test_every_problem_and_row_is_there_escaped(rows):
    page = drilldown_html(rows, question_of={"p0": "What is 6*7? <i>"}.get)
    checker = check(page)
    assert "<h2>Per problem</h2>" in page
    assert checker.counts["details"] == 3 + sum(len(r.samples) for r in rows)
    assert page.count("class='dd-p'") == 3
    for pid in ("p0", "p1 &lt;b&gt;", "p2"):
        assert f"<span class='dd-id'>{pid}</span>" in page
    assert "&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "alert('pwned')" not in page and "<img" not in page and "<i>" not in page
    assert "What is 6*7? &lt;i&gt;" in page and "gold <code>7 &amp; 8</code>" in page
    assert len(checker.scripts) == 1 and "pwned" not in checker.scripts[0]  # only our own filter script
    assert "(text not recorded in this run)" in page  # the old-format row
    assert "no answer" in page and "finish length" in page and "(lenient grader)" in page
    assert "greedy@64 &#10003;" in page and "majority:k=2@64 &#10007;" in page
    assert "greedy@64 1/2" in page  # p2: right on one seed of two


def test_filter_attributes(rows):
    page = drilldown_html(rows)
    assert "data-id='p0' data-disagree='1' data-wrong='1'" in page
    assert "data-id='p1 &lt;b&gt;' data-disagree='1' data-wrong='1'" in page
    only = [r for r in rows if r.problem_id == "p0" and r.strategy == "greedy"]
    assert "data-id='p0' data-disagree='0' data-wrong='0'" in drilldown_html(only)
    assert "class='dd-filter'" in page and "class='dd-disagree'" in page


def test_long_text_is_truncated_head_and_tail(rows):
    page = drilldown_html(rows, max_chars=1000)
    check(page)
    n = len("step " * 10_000 + "so the answer is \\boxed{42}")
    assert f"(truncated: {n - 1000:,} of {n:,} characters not shown)" in page
    assert f"[... {n - 1000:,} characters not shown ...]" in page
    assert "so the answer is \\boxed{42}</pre>" in page  # the tail, where the answer is, is kept
    assert len(page) < 20_000


def test_problems_beyond_the_cap_are_counted(rows):
    many = [row(f"q{i}", "greedy", 8, 0, "1", True, [("x", "1", True)]) for i in range(7)]
    page = drilldown_html(many, max_problems=3)
    check(page)
    assert page.count("class='dd-p'") == 3 and "q2" in page and "q3" not in page
    assert "4 more problem(s) left out (the first 3 of 7 are shown" in page
    assert "left out" not in drilldown_html(many)


def test_total_text_budget(rows):
    page = drilldown_html(rows, max_chars=1000, max_total_chars=1050)
    check(page)
    # p0's three texts (~1.1k chars, the long one cut to 1000) spend it; p1's and p2's three are left out
    assert page.count("<pre>") == 3 and page.count("the report's text budget is spent") == 3
