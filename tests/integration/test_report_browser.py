"""report.html in a real browser (opt-in: ``pytest -m browser``): headless Chromium opens a report written by
``evals.report.write_report`` from synthetic rows and finds no console or page errors, no request leaving the
file, every plot loaded and not blank, and the per-problem drill-down opening onto a response's text.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``; ``$REASONER_CHROMIUM`` names another binary) and the
Python driver (``pip install -e '.[browser]'``, Playwright driving that binary: no ``playwright install``).
Skips with the reason when either is missing. ``$REASONER_REPORT_SCREENSHOT`` saves a full-page screenshot.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from evals.report import write_report
from evals.runner import RunDir
from evals.sweep import EvalConfig

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# unescaped, this would run and raise a page error, and the <img> would make a failing request
EVIL = "<script>throw new Error('model text ran as script')</script><img src='https://example.invalid/x.png'>"
STRATEGIES = ["greedy", "majority:k=2"]
BUDGETS = [8, 16]


def _chromium() -> str:
    path = os.environ.get("REASONER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip(f"no Chromium at {path} (apt-get install chromium, or set REASONER_CHROMIUM)")
    return path


def _row(pid: int, strategy: str, budget: int) -> dict:
    k = 2 if strategy.startswith("majority") else 1
    gold = str(pid * 7)
    answers = [gold if pid + i < budget // 4 else str(pid) for i in range(k)]  # more budget, more right
    texts = [
        f"Problem {pid}, try {i}: {EVIL}\n" + "thinking... " * (budget * (i + 1)) + f"\\boxed{{{a}}}"
        for i, a in enumerate(answers)
    ]
    final = answers[0]
    return {
        "problem_id": f"arith-{pid}",
        "strategy": strategy,
        "budget": budget,
        "seed": 0,
        "answer": final,
        "gold": gold,
        "correct": final == gold,
        "status": "ok",
        "grader": "lenient",
        "tokens": {
            "thinking": budget * k // 2,
            "answer": 4 * k,
            "generated": budget * k - pid,
            "prefilled": 20,
            "sequential": budget - pid,
        },
        "spent": budget * k - pid,
        "wall_s": 0.01 * budget,
        "measured_s": 0.01 * budget,
        "samples": [
            {
                "tokens": budget - pid - i,
                "finish": "length" if i else "stop",
                "answer": a,
                "correct": a == gold,
                "status": "ok",
                "text": t,
            }
            for i, (a, t) in enumerate(zip(answers, texts, strict=True))
        ],
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run = RunDir(tmp_path_factory.mktemp("browser") / "run")
    cfg = EvalConfig(
        model="fake", benchmark="arith", limit=4, budgets=BUDGETS, seeds=[0], strategies=STRATEGIES
    )
    run.prepare(cfg)
    run.append([_row(p, s, b) for s in STRATEGIES for b in BUDGETS for p in range(4)])
    return write_report(run.path)


# Each plot drawn on a canvas at its natural size: how many distinct colours, and the share of pixels that
# differ from the top-left one (the background).
IMAGE_STATS = """img => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  let differ = 0;
  for (let i = 0; i < d.length; i += 4) {
    const v = (d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3];
    colours.add(v);
    if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) differ++;
  }
  return {complete: img.complete, width: img.naturalWidth, colours: colours.size,
          differ: differ / (d.length / 4)};
}"""


def test_report_renders_in_chromium(report, tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[browser]')"
    )
    chromium = _chromium()
    errors: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("request", lambda r: r.url.startswith(("file:", "data:")) or outside.append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            _check_images(page)
            _check_drilldown(page)
            shot = os.environ.get("REASONER_REPORT_SCREENSHOT") or str(tmp_path / "report.png")
            page.screenshot(path=shot, full_page=True)
        finally:
            context.close()
    assert not errors, errors
    assert not outside, f"the report made requests outside itself: {outside}"


def _check_images(page) -> None:
    images = page.locator("img")
    assert images.count() == 3
    for i in range(images.count()):
        img = images.nth(i)
        stats = img.evaluate(IMAGE_STATS)
        name = img.get_attribute("alt")
        assert stats["complete"] and stats["width"] > 0, (name, stats)
        assert stats["colours"] > 20 and stats["differ"] > 0.01, (name, stats)  # a drawn plot, not blank


def _check_drilldown(page) -> None:
    assert page.locator("h2", has_text="Per problem").count() == 1
    problems = page.locator("details.dd-p")
    assert problems.count() == 4
    first = problems.first
    pre = first.locator("details.dd-s pre").first
    assert not pre.is_visible()
    first.locator("summary").first.click()
    response = first.locator("details.dd-s").first
    assert response.is_visible() and not pre.is_visible()
    response.locator("summary").click()
    assert pre.is_visible()
    assert "<script>throw new Error('model text ran as script')</script>" in pre.inner_text()
    page.locator(".dd-filter").fill("arith-2")
    assert [problems.nth(i).is_visible() for i in range(4)] == [False, False, True, False]
    assert page.locator(".dd-count").inner_text() == "1 shown"
    page.locator(".dd-filter").fill("")
    page.locator(".dd-disagree").check()
    shown = page.locator(".dd-count").inner_text()
    expected = sum(problems.nth(i).get_attribute("data-disagree") == "1" for i in range(4))
    assert shown == f"{expected} shown" and 0 < expected < 4
    page.locator(".dd-disagree").uncheck()
    assert page.locator(".dd-count").inner_text() == "4 shown"
