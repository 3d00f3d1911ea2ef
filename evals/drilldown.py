"""The "Per problem" drill-down of ``report.html``: every problem's rows and completions, collapsed.

``drilldown_html(rows)`` renders ``samples.jsonl`` rows (``evals.rows.Row``) as one ``<section>``: a filter bar
(problem id substring; only problems where the final answers differ; only problems with a wrong answer), then
one ``<details>`` per problem whose summary line shows the problem id, the gold answer and a mark per
strategy@budget (correct on every seed, on none, or on ``k/n`` seeds). Opened, it lists each
(strategy, budget, seed) row (final answer, verdict, tokens generated) and each completion as its own
``<details>`` (extracted answer, verdict, token count and finish reason in the summary line; the text in a
``<pre>``).

Everything from the rows is HTML-escaped (model text may hold ``<script>``); the section carries its own
``<style>`` and an inline script, so the page stays one self-contained file. Keys added to the row format
later (``grader``, a completion's ``status`` and ``text``) are optional: old runs render without them.
Size bounds: ``max_problems`` problems (the rest counted in a note), ``max_chars`` per text (head and tail
kept, the middle replaced by a note: the final answer is usually at the end) and ``max_total_chars`` of text
over the whole section (later texts are left out with a note; ``samples.jsonl`` has them all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from evals.rows import Row, SampleRecord

MAX_PROBLEMS = 200
MAX_CHARS = 20_000
MAX_TOTAL_CHARS = 10_000_000
OK, WRONG = "&#10003;", "&#10007;"

_CSS = (
    "#dd .dd-bar{margin:.5em 0 1em;font-size:14px}#dd .dd-bar label,#dd .dd-count{margin-left:1em}"
    "#dd details{margin:2px 0}#dd details.dd-p{border:1px solid #ddd;border-radius:4px;padding:2px 8px}"
    "#dd details.dd-p>summary{cursor:pointer;font-size:14px}#dd .dd-id{font-weight:600}"
    "#dd .dd-m{display:inline-block;margin-left:.8em;font-size:12px;white-space:nowrap}"
    "#dd .ok{color:#1a7f37}#dd .bad{color:#c62828}#dd .part{color:#b26b00}"
    "#dd .dd-row{margin:.6em 0 .6em 1em;font-size:13px}#dd .dd-s{margin-left:1.5em}"
    "#dd .dd-s>summary{cursor:pointer;color:#333}#dd code{background:#f3f3f3;padding:0 3px}"
    "#dd pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;border:1px solid #e4e4e4;"
    "padding:6px;max-height:40em;overflow:auto;font-size:12px}#dd .dd-note{color:#666;font-style:italic}"
    "#dd .dd-q{white-space:pre-wrap;font-size:13px;margin:.4em 0}"
)

_JS = """(function(){
var root=document.getElementById('dd');if(!root)return;
var q=root.querySelector('.dd-filter'),d=root.querySelector('.dd-disagree'),
w=root.querySelector('.dd-wrong'),n=root.querySelector('.dd-count');
function apply(){var s=q.value.trim().toLowerCase(),k=0;
root.querySelectorAll('details.dd-p').forEach(function(e){
var ok=(!s||e.getAttribute('data-id').toLowerCase().indexOf(s)>=0)&&
(!d.checked||e.getAttribute('data-disagree')==='1')&&(!w.checked||e.getAttribute('data-wrong')==='1');
e.hidden=!ok;if(ok)k++;});n.textContent=k+' shown';}
q.addEventListener('input',apply);d.addEventListener('change',apply);w.addEventListener('change',apply);
apply();})();"""


def _text(value: Any) -> str:
    """Escaped display form of an answer (None: a dash)."""
    return "&#8212;" if value is None else escape(str(value))


def _verdict(correct: Any, answer: Any, status: str | None) -> tuple[str, str]:
    """(css class, words) of one graded answer: correct, wrong, or why it was not compared."""
    if correct:
        return "ok", "correct"
    if status and status != "ok":
        return "bad", "no answer" if status == "no_answer" else f"wrong ({status})"
    return "bad", "no answer" if answer is None else "wrong"


class _Budget:
    """The text budget of the whole section (``max_total_chars``) and the per-text cap (``max_chars``)."""

    def __init__(self, per_text: int, total: int):
        self.per_text, self.left = per_text, total

    def pre(self, text: str | None) -> str:
        """The ``<pre>`` of one completion's text (escaped, truncated) or a note why there is none."""
        if text is None:
            return "<p class='dd-note'>(text not recorded in this run)</p>"
        if self.left <= 0:
            return (
                "<p class='dd-note'>(text left out: the report's text budget is spent; see samples.jsonl)</p>"
            )
        note = ""
        if len(text) > self.per_text:
            head = self.per_text * 3 // 4
            cut = len(text) - self.per_text
            tail = text[-(self.per_text - head) :]
            note = f"<p class='dd-note'>(truncated: {cut:,} of {len(text):,} characters not shown)</p>"
            body = escape(text[:head]) + f"\n\n[... {cut:,} characters not shown ...]\n\n" + escape(tail)
        else:
            body = escape(text)
        self.left -= min(len(text), self.per_text)
        return f"{note}<pre>{body}</pre>"


def _sample_html(i: int, sample: SampleRecord, budget: _Budget) -> str:
    """One completion: a collapsed ``<details>`` with its answer, verdict, length and finish reason."""
    cls, words = _verdict(sample.correct, sample.answer, sample.status)
    head = (
        f"#{i} answer <code>{_text(sample.answer)}</code> &middot; "
        f"<span class='{cls}'>{escape(words)}</span> &middot; {_text(sample.tokens)} tokens"
        f" &middot; finish {_text(sample.finish)}"
    )
    return f"<details class='dd-s'><summary>{head}</summary>{budget.pre(sample.text)}</details>"


def _row_html(row: Row, budget: _Budget) -> str:
    """One (strategy, budget, seed) row: final answer, verdict, tokens generated, then its completions."""
    cls, words = _verdict(row.correct, row.answer, row.status)
    grader = f" ({escape(str(row.grader))} grader)" if row.grader else ""
    tokens = row.tokens.generated
    samples = row.samples
    head = (
        f"<b>{escape(row.cell)}</b> seed {_text(row.seed)}: answer "
        f"<code>{_text(row.answer)}</code> &middot; <span class='{cls}'>{escape(words)}</span>{grader}"
        f" &middot; {_text(tokens)} tokens generated &middot; {len(samples)} completion(s)"
    )
    body = "".join(_sample_html(i, s, budget) for i, s in enumerate(samples, 1))
    return f"<div class='dd-row'><div>{head}</div>{body}</div>"


def _mark(cell: str, rows: Sequence[Row]) -> str:
    """The summary-line mark of one strategy@budget on one problem (over its seeds)."""
    right = sum(bool(r.correct) for r in rows)
    if right == len(rows):
        cls, sign = "ok", OK
    elif right == 0:
        cls, sign = "bad", WRONG
    else:
        cls, sign = "part", f"{right}/{len(rows)}"
    return f"<span class='dd-m {cls}'>{escape(cell)} {sign}</span>"


def _problem_html(
    pid: str,
    rows: Sequence[Row],
    cells: Sequence[str],
    question: str | None,
    budget: _Budget,
) -> str:
    """One problem: a ``<details>`` whose summary line is id, gold and a mark per strategy@budget."""
    by_cell = {c: [r for r in rows if r.cell == c] for c in cells}
    marks = "".join(_mark(c, rs) for c, rs in by_cell.items() if rs)
    answers = {None if r.answer is None else r.answer.strip() for r in rows}
    disagree = int(len(answers) > 1)
    wrong = int(not all(r.correct for r in rows))
    golds = list(dict.fromkeys(r.gold for r in rows))
    gold = " | ".join(golds) if golds else None
    head = f"<span class='dd-id'>{escape(pid)}</span> &middot; gold <code>{_text(gold)}</code>{marks}"
    parts = [f"<div class='dd-q'><b>Question:</b> {escape(question)}</div>"] if question else []
    ordered = sorted(rows, key=lambda r: (cells.index(r.cell), r.seed))
    parts += [_row_html(r, budget) for r in ordered]
    return (
        f"<details class='dd-p' data-id='{escape(pid)}' data-disagree='{disagree}' data-wrong='{wrong}'>"
        f"<summary>{head}</summary>{''.join(parts)}</details>"
    )


def _cells(rows: Iterable[Row]) -> list[str]:
    """strategy@budget labels: strategies in order of appearance, budgets ascending within each."""
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    budgets: dict[str, set[int]] = {s: set() for s in strategies}
    for r in rows:
        budgets[r.strategy].add(r.budget)
    return [f"{s}@{b}" for s in strategies for b in sorted(budgets[s])]


def drilldown_html(
    rows: Sequence[Row],
    *,
    question_of: Callable[[str], str | None] | None = None,
    max_problems: int | None = None,
    max_chars: int = MAX_CHARS,
    max_total_chars: int = MAX_TOTAL_CHARS,
) -> str:
    """The "Per problem" section (module docstring) for ``rows`` (``samples.jsonl`` rows, any order).

    ``question_of(problem_id)`` may give each problem's question (shown when the problem is opened);
    ``max_problems`` (default ``MAX_PROBLEMS``) keeps the first problems in order of appearance.
    """
    limit = MAX_PROBLEMS if max_problems is None else max_problems
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.problem_id, []).append(r)
    cells = _cells(rows)
    budget = _Budget(max_chars, max_total_chars)
    kept = list(groups)[:limit]
    left_out = len(groups) - len(kept)
    blocks = [
        _problem_html(pid, groups[pid], cells, question_of(pid) if question_of else None, budget)
        for pid in kept
    ]
    note = (
        f"<p class='dd-note'>{left_out} more problem(s) left out (the first {len(kept)} of {len(groups)} "
        "are shown; samples.jsonl has them all).</p>"
        if left_out
        else ""
    )
    bar = (
        "<div class='dd-bar'><input class='dd-filter' type='search' placeholder='filter problem ids' "
        "aria-label='filter problem ids'><label><input class='dd-disagree' type='checkbox'> only problems "
        "where final answers differ</label><label><input class='dd-wrong' type='checkbox'> only problems "
        "with a wrong answer</label> <span class='dd-count'></span></div>"
    )
    return (
        f"<section id='dd'><style>{_CSS}</style><h2>Per problem</h2>"
        f"<p class='dd-note'>{len(groups)} problem(s); click one to see its rows and completions. "
        f"Marks: {OK} correct on every seed, {WRONG} on none, k/n on k of n seeds.</p>"
        f"{bar}{note}{''.join(blocks)}<script>{_JS}</script></section>"
    )
