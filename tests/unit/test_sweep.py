"""Budget sweeps: truncation reuse equals separate runs, run dirs, resume, summaries (config: test_sweep_config)."""

from __future__ import annotations

import json
import zlib
from dataclasses import replace

import pytest

from evals.cells import Summary
from evals.replay import SweepEngine
from evals.report import NOT_REPRODUCIBLE, summarize
from evals.rows import Row
from evals.runner import RunDir, RunDirError, run_sweep, run_unit
from evals.sweep import EvalConfig, StrategyEntry, work_units
from reasoner.engines.base import truncate
from reasoner.engines.fake import FakeEngine, Trace
from reasoner.strategies import build_strategy
from reasoner.types import Problem, SampleSpec, TokenCount

PROBLEMS = [Problem(f"p{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(5)]


def script(prompt: str, j: int) -> Trace | str:
    """Deterministic chains of varied length per (prompt, sample): some end before small budgets, some not;
    some think in tags. Forced answers (after the cue) answer 4."""
    if prompt.endswith("\\boxed{"):
        return "4}"
    h = zlib.crc32(prompt.encode()) + 7 * j
    body = " ".join(["a"] * (2 + h % 23))
    answer = f"\\boxed{{{h % 3 * 2}}}"
    if h % 4 == 0:
        return f"<think>{body}</think> {answer}"
    return Trace(f"{body} {answer}", eos=h % 5 != 0)


@pytest.fixture
def fake():
    return FakeEngine(script)


def same(a, b) -> None:
    """Two StrategyResults agree on everything but time."""
    assert a.answer == b.answer and a.votes == b.votes and a.tokens == b.tokens
    assert len(a.completions) == len(b.completions)
    for x, y in zip(a.completions, b.completions, strict=True):
        assert (x.token_ids, x.text, x.finish_reason, x.think_end) == (
            y.token_ids,
            y.text,
            y.finish_reason,
            y.think_end,
        )
        assert x.logprobs == y.logprobs and x.prompt_tokens == y.prompt_tokens


# ---------------------------------------------------------------- truncation reuse


@pytest.mark.parametrize(
    "name, params, derivable",
    [
        ("greedy", {}, True),
        ("sample", {}, True),
        ("majority", {"k": "4"}, True),
        ("best-of-n", {"n": "3"}, True),
        ("short-m@k", {"k": "4", "m": "2", "mode": "simulated"}, True),
        ("deepconf", {"k": "4", "window": "4"}, True),
        ("short-m@k", {"k": "4", "m": "1", "mode": "live"}, False),  # aborted chains: regenerated per budget
    ],
)
def test_truncation_equals_separate_runs(fake, name, params, derivable):
    """Each budget answered from one max-budget generation equals a run at that budget; strategies whose
    requests cannot be replayed run again, with the same results."""
    strategy = build_strategy(name, params)
    spec = SampleSpec(max_tokens=32, temperature=0.7, seed=11)
    proxy = SweepEngine(fake)
    proxy.set_owners({})
    strategy.run_batch(proxy, PROBLEMS, spec)
    spent = proxy.spent
    for budget in (24, 9, 5, 1):
        via_replay = strategy.run_batch(proxy, PROBLEMS, replace(spec, max_tokens=budget))
        direct = strategy.run_batch(fake, PROBLEMS, replace(spec, max_tokens=budget))
        for a, b in zip(via_replay, direct, strict=True):
            same(a, b)
    assert (proxy.spent == spent) == derivable, "derivable budgets must not generate"
    assert proxy.served > 0


def test_recordings_without_logprobs_do_not_serve_readers_of_logprobs(fake):
    """majority@3 and best-of-3 send the same requests but only best-of-n reads logprobs: it cannot be served
    from majority's recording (generated without them), and its own recording then serves majority, with the
    logprobs dropped as a live run without them would return."""
    spec = SampleSpec(max_tokens=32, temperature=0.7, seed=11)
    majority, best = build_strategy("majority", {"k": "3"}), build_strategy("best-of-n", {"n": "3"})
    proxy = SweepEngine(fake)
    majority.run_batch(proxy, PROBLEMS, spec)
    spent = proxy.spent
    via_proxy = best.run_batch(proxy, PROBLEMS, spec)
    assert proxy.spent == 2 * spent, "best-of-n must generate: the recording has no logprobs"
    for a, b in zip(via_proxy, best.run_batch(fake, PROBLEMS, spec), strict=True):
        same(a, b)
    small = replace(spec, max_tokens=9)
    replayed = majority.run_batch(proxy, PROBLEMS, small)
    assert proxy.spent == 2 * spent, "majority replays best-of-n's recording"
    for a, b in zip(replayed, majority.run_batch(fake, PROBLEMS, small), strict=True):
        same(a, b)
        assert all(c.logprobs is None for c in a.completions)


def test_budget_forcing_reuses_the_capped_thinking(fake):
    """Budget forcing: thinking replayed from the largest budget, only the forced answers are generated."""
    spec = SampleSpec(max_tokens=64, temperature=0.7, seed=3)
    proxy = SweepEngine(fake)
    entry = StrategyEntry.parse("budget-forcing", 4)
    entry.build(32).run_batch(proxy, PROBLEMS, spec)
    before = proxy.spent
    for budget in (16, 4):
        via_replay = entry.build(budget).run_batch(proxy, PROBLEMS, spec)
        direct = entry.build(budget).run_batch(fake, PROBLEMS, spec)
        for a, b in zip(via_replay, direct, strict=True):
            same(a, b)
        forced = sum(r.completions[-1].num_tokens for r in direct if r.extra["forced"])
        assert proxy.spent - before == forced
        before = proxy.spent


def test_truncation_on_the_tiny_model(hf_engine):
    """Greedy and seeded sampling on a real (tiny) model: replayed budgets equal separate runs."""
    problems = PROBLEMS[:3]
    for name, params in [("greedy", {}), ("majority", {"k": "2"})]:
        strategy = build_strategy(name, params)
        spec = SampleSpec(max_tokens=12, temperature=1.0, seed=5)
        proxy = SweepEngine(hf_engine)
        strategy.run_batch(proxy, problems, spec)
        for budget in (7, 3):
            via_replay = strategy.run_batch(proxy, problems, replace(spec, max_tokens=budget))
            direct = strategy.run_batch(hf_engine, problems, replace(spec, max_tokens=budget))
            for a, b in zip(via_replay, direct, strict=True):
                same(a, b)


def test_reuse_off_and_spent_by_owner(fake):
    from reasoner.prompts import render

    proxy = SweepEngine(fake, reuse=False)
    proxy.set_owners({p.id: render(fake.tokenizer, p.question) for p in PROBLEMS})
    strategy = build_strategy("majority", {"k": "2"})
    spec = SampleSpec(max_tokens=16, seed=1)
    results = strategy.run_batch(proxy, PROBLEMS, spec)
    strategy.run_batch(proxy, PROBLEMS, replace(spec, max_tokens=8))
    assert proxy.served == 0
    spent = proxy.take_spent()
    assert set(spent) == {p.id for p in PROBLEMS} and sum(spent.values()) == proxy.spent
    assert spent["p0"] >= results[0].tokens.generated


def test_live_strategies_run_first_so_no_recording_replays_them(fake):
    """majority@3 listed first would record the 3 chains that short-1@3 live asks for; the unit runs the live
    strategy first, so its aborts are real (nothing replayed) and its rows equal a run of it alone."""
    cfg = _cfg(strategies=["majority:k=3", "short-m@k:k=3,m=1"], budgets=[24], seeds=[0])
    unit = work_units(PROBLEMS[:2], [0], 2)[0]
    proxy = SweepEngine(fake)
    rows = run_unit(proxy, unit, cfg.entries(), cfg.budgets, cfg)
    assert proxy.served == 0 and proxy.spent > 0
    alone = run_unit(SweepEngine(fake), unit, cfg.entries()[1:], cfg.budgets, cfg)
    live = [r for r in rows if r.strategy == "short-m@k:k=3,m=1"]
    assert [r.samples for r in live] == [r.samples for r in alone]
    assert any(s.finish == "abort" for r in live for s in r.samples)
    assert [r.strategy for r in rows][:2] == ["short-m@k:k=3,m=1"] * 2


def test_truncate_marks_length_and_recomputes_think_end(fake):
    ids = fake.tokenizer.encode("<think> a a a</think> \\boxed{2}", add_special_tokens=False)
    c = fake.generate([ids[:0] or [1]], SampleSpec(max_tokens=40, seed=0))[0][0]
    cut = truncate(fake.tokenizer, c, 3, "length")
    assert cut.num_tokens == 3 and cut.finish_reason == "length" and cut.token_ids == c.token_ids[:3]
    assert truncate(fake.tokenizer, c, c.num_tokens, c.finish_reason) is c


def test_truncate_is_one_cut_for_aborts_and_budgets():
    """The one truncation (short-m@k's abort replay and the sweep's budget replay): every per-token field is
    cut, think_end found again, the text cut at stop strings, the wall time scaled."""
    text = "<think> a a a a</think> b b STOP \\boxed{2}"
    fake = FakeEngine(lambda prompt, j: Trace(text, entropies=[0.5] * 40))
    spec = SampleSpec(max_tokens=60, seed=0, logprobs=True, logprobs_k=2)
    c = fake.generate([[1]], spec, entropies=True)[0][0]
    assert c.think_end is not None and c.finish_reason == "stop"
    before = truncate(fake.tokenizer, c, c.think_end - 1)  # default reason: a live abort
    after = truncate(fake.tokenizer, c, c.num_tokens - 2, "length", stop=("STOP",))
    assert before.finish_reason == "abort" and before.think_end is None
    assert after.finish_reason == "length" and after.think_end == c.think_end
    assert after.text.endswith("b b ") and "STOP" not in after.text
    for cut, n in ((before, c.think_end - 1), (after, c.num_tokens - 2)):
        assert cut.token_ids == c.token_ids[:n] and cut.prompt_tokens == c.prompt_tokens
        assert len(cut.logprobs) == len(cut.top_logprobs) == len(cut.entropies) == n
        assert cut.elapsed_s == pytest.approx(c.elapsed_s * n / c.num_tokens)


# ---------------------------------------------------------------- run dir, resume, summary


def _row(pid: str) -> Row:
    return Row(problem_id=pid, strategy="greedy", budget=8, seed=0, answer=None, gold="1", tokens=TokenCount(),
               wall_s=0.0, samples=(), correct=False)  # fmt: skip


def test_run_dir_torn_tail_and_duplicates(tmp_path):
    run = RunDir(tmp_path)
    row = _row("p0")
    run.append([row, row.model_copy(update={"problem_id": "p1"})])
    with run.samples_path.open("a") as f:
        f.write('{"strategy": "greedy", "bud')  # a crash mid-write
    assert [r.problem_id for r in run.read_rows()] == ["p0", "p1"]
    # cuts the torn tail first; a duplicate key is ignored
    run.append([row, row.model_copy(update={"problem_id": "p2"})])
    lines = run.samples_path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line) for line in lines)
    assert [r.problem_id for r in run.read_rows()] == ["p0", "p1", "p2"]


def test_run_dir_config_mismatch_and_modes(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(RunDirError, match="nothing to resume"):
        run.prepare(EvalConfig(), "resume")
    assert run.prepare(EvalConfig(), "auto") == 0
    with pytest.raises(RunDirError, match=r"budgets: \[64, 128, 384\] -> \[8\]\); rerun with --fresh"):
        run.prepare(EvalConfig(budgets=[8]), "auto")
    assert run.prepare(EvalConfig(budgets=[8]), "fresh") == 0
    assert run.load_config().budgets == [8]


def _cfg(**kw) -> EvalConfig:
    base = dict(
        model="fake",
        benchmark="arith",
        limit=5,
        budgets=[6, 12, 24],
        seeds=[0, 1],
        batch_size=2,
        strategies=["greedy", "majority:k=3", "short-m@k:k=3,m=1,mode=simulated"],
    )
    return EvalConfig(**(base | kw))


def _strip(summary: Summary) -> Summary:
    cells = tuple(c.model_copy(update=dict.fromkeys(NOT_REPRODUCIBLE, 0.0)) for c in summary.cells)
    return summary.model_copy(update={"cells": cells})


def test_sweep_resume_equals_uninterrupted(tmp_path, fake):
    cfg = _cfg()
    full = RunDir(tmp_path / "full")
    full.prepare(cfg)
    stats = run_sweep(cfg, full, engine=fake, progress=False)
    assert stats.units_run == stats.units_total == 6 and stats.rows_written == 3 * 3 * 5 * 2
    assert stats.spent_tokens < sum(r.tokens.generated for r in full.read_rows())
    # a crash: only the first 20 rows made it, the last one torn
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.yaml").write_bytes(full.config_path.read_bytes())
    lines = full.samples_path.read_text().splitlines(keepends=True)
    (cut / "samples.jsonl").write_text("".join(lines[:20]) + lines[20][:30])
    resumed = RunDir(cut)
    assert resumed.prepare(cfg) == 20
    again = run_sweep(cfg, resumed, engine=fake, progress=False)
    assert 0 < again.units_run < 6 and again.rows_written == len(lines) - 20
    rows = resumed.read_rows()
    assert len(rows) == len(resumed.samples_path.read_text().splitlines()) == len(lines)
    assert _strip(summarize(rows, cfg.to_dict())) == _strip(summarize(full.read_rows(), cfg.to_dict()))
    assert run_sweep(cfg, resumed, engine=fake, progress=False).units_run == 0


def test_sweep_workers_use_the_injected_replica_map(tmp_path, fake, tiny_model):
    """``workers > 0``: units go through the ``map_with_engines`` the caller passes (the CLI passes
    ``reasoner.dist.map_with_engines``), with the model resolved once here; the rows equal a one-engine run's.
    Without a map it is an error that says what to pass."""
    cfg = _cfg(model=tiny_model)
    calls = []

    def local_map(fn, items, *, engine, model, workers, dtype="auto", engine_kwargs=None):
        calls.append((engine, model, workers, dtype, len(items)))
        for i in reversed(range(len(items))):  # out of order, as replicas finish
            yield i, fn(FakeEngine(script), items[i])

    one, two = RunDir(tmp_path / "one"), RunDir(tmp_path / "two")
    one.prepare(cfg)
    two.prepare(cfg)
    with pytest.raises(ValueError, match="workers=2 needs map_with_engines"):
        run_sweep(cfg, two, workers=2, progress=False)
    run_sweep(cfg, one, engine=fake, progress=False)
    stats = run_sweep(cfg, two, workers=2, map_with_engines=local_map, progress=False)
    assert stats.units_run == 6 and calls == [(cfg.engine, tiny_model, 2, cfg.dtype, 6)]
    timeless = {"wall_s": 0.0, "measured_s": 0.0}
    assert [r.model_copy(update=timeless) for r in two.read_rows()] == [
        r.model_copy(update=timeless) for r in one.read_rows()
    ]


def test_summary_metrics_on_known_rows():
    def row(pid, seed, correct, samples, generated):
        return Row.from_json({
            "answer": None,
            "gold": "1",
            "strategy": "majority:k=2",
            "budget": 8,
            "problem_id": pid,
            "seed": seed,
            "correct": correct,
            "tokens": {
                "generated": generated,
                "thinking": 0,
                "answer": generated,
                "sequential": 4,
                "prefilled": 10,
            },
            "samples": [{"tokens": 4, "finish": f, "answer": a, "correct": c} for a, c, f in samples],
            "spent": generated // 2,
            "wall_s": 0.1,
            "measured_s": 0.05,
        })  # fmt: skip

    rows = [
        row("a", 0, True, [("1", True, "stop"), ("2", False, "length")], 8),
        row("a", 1, False, [("2", False, "stop"), ("2", False, "stop")], 8),
        row("b", 0, False, [(None, False, "length"), (None, False, "length")], 8),
        row("b", 1, False, [("3", False, "stop"), ("3", False, "stop")], 8),
    ]
    s = summarize(rows)
    (cell,) = s.cells
    assert cell.accuracy == pytest.approx((0.5 + 0.0) / 2)
    assert cell.sample_acc == pytest.approx((1 / 4 + 0) / 2)
    assert [(k, pytest.approx(v)) for k, v, _ in cell.pass_at] == [(1, 0.125), (2, 0.25), (4, 0.5)]
    assert cell.maj == (2, pytest.approx(0.25))  # row a/0 votes "1" (first of a tie): correct
    assert cell.truncated == pytest.approx(3 / 8)
    assert (
        cell.generated == 8 and cell.tokens_per_correct == 32 and cell.acc_per_1k == pytest.approx(1000 / 32)
    )
    assert s.cost == {"spent_tokens": 16, "separate_tokens": 32, "ratio": 0.5}
    assert cell.pareto and s.pareto[0]["strategy"] == "majority:k=2"
