"""Training batch assembly without TRL: dynamic sampling with refill (alignment of gold answers), the refill
stream, and advantage post-processing (fake engine; reasoner/train/batch.py, postprocess.py)."""

from __future__ import annotations

import re

import pytest
import torch

from reasoner.advantages import d3s_select_samples, group_advantages
from reasoner.engines.fake import FakeEngine
from reasoner.prompts import render
from reasoner.train.batch import ProblemStream, Scorer, collect_batch
from reasoner.train.postprocess import process_advantages
from reasoner.train.rollout import EngineRollout, RolloutSource
from reasoner.types import Problem, SampleSpec

N = 4


def make_problems(k: int, constant: set[int]) -> list[Problem]:
    """'What is a + b?' problems; those in ``constant`` make the fake model answer identically every time."""
    out = []
    for i in range(k):
        tag = "const" if i in constant else "vary"
        out.append(Problem(f"p{i}", f"What is {i} + {i + 1}? ({tag})", str(2 * i + 1)))
    return out


def script(prompt: str, j: int) -> str:
    if "(const)" in prompt:
        return "the answer is 1"
    return "so " * (j + 1) + "done"


class AlignmentReward:
    """Records what it is shown and checks that every row's gold answer belongs to the row's prompt."""

    def __init__(self):
        self.calls: list[list[tuple[str, str, str]]] = []

    def __call__(self, prompts, completions, completion_ids, answer, problem_id, **kwargs):
        rows = list(zip(prompts, answer, problem_id, strict=True))
        for question, gold, pid in rows:
            a, b = map(int, re.match(r"What is (\d+) \+ (\d+)", question).groups())
            assert gold == str(a + b), f"{pid}: gold {gold} does not belong to {question!r}"
            assert pid == f"p{a}"
        self.calls.append(rows)
        return [float(len(ids)) for ids in completion_ids]


@pytest.fixture(scope="module")
def source() -> RolloutSource:
    return EngineRollout(FakeEngine(script))


def run(problems, pool, source, *, dynamic=True, max_rounds=3, reward=None):
    reward = reward or AlignmentReward()
    scorer = Scorer([reward], ["align"], [1.0])
    stream = ProblemStream(pool, seed=0)
    tok = source.tokenizer

    def generate(probs, round_):
        ids = [render(tok, p.question) for p in probs]
        return ids, source.generate(ids, SampleSpec(n=N, max_tokens=32, seed=round_)), [round_] * len(ids)

    batch = collect_batch(
        problems, n=N, generate=generate, score=scorer, combine=scorer.combine,
        refill=lambda count, exclude: stream.take(count, exclude), dynamic_sampling=dynamic,
        max_rounds=max_rounds,
    )  # fmt: skip
    return batch, reward


def test_refill_replaces_constant_groups_and_keeps_gold_answers_aligned(source):
    pool = make_problems(12, constant={0, 2, 5, 6})
    batch, reward = run(pool[:4], pool, source)
    assert [g.problem.id for g in batch.groups][1::2] == ["p1", "p3"]  # signal groups stay in place
    assert [g.version for g in batch.groups][1::2] == [0, 0] and max(g.version for g in batch.observed) >= 1
    assert all(g.keep for g in batch.groups)
    assert {g.problem.id for g in batch.groups[0::2]}.isdisjoint({"p0", "p2", "p5", "p6"})
    assert batch.stats["refill_rounds"] >= 1 and batch.stats["frac_zero_std_groups"] == 0.5
    for g in batch.groups:  # the columns the trainer forwards to TRL are those of the generated prompt
        assert g.columns["answer"] == [g.problem.answer] * N and g.columns["problem_id"] == [g.problem.id] * N
        assert render(source.tokenizer, g.problem.question) == g.prompt_ids
        assert g.rewards.std() > 0
    assert batch.column("answer") == [g.problem.answer for g in batch.groups for _ in range(N)]
    assert len(reward.calls) == 1 + batch.stats["refill_rounds"]  # one scoring call per round
    assert len(batch.observed) == batch.stats["generated_groups"]


def test_refill_cap_pads_with_masked_constant_groups(source):
    pool = make_problems(8, constant={0, 1, 2, 3, 4, 5, 6, 7})
    batch, _ = run(pool[:2], pool, source, max_rounds=2)
    assert [g.problem.id for g in batch.groups] == ["p0", "p1"]  # the originals come back, masked
    assert batch.keep.tolist() == [False, False]
    assert batch.stats["refill_rounds"] == 2 and batch.stats["generated_groups"] == 2 + 2 * 2


def test_no_dynamic_sampling_keeps_everything(source):
    pool = make_problems(4, constant={0})
    batch, reward = run(pool, pool, source, dynamic=False)
    assert [g.problem.id for g in batch.groups] == ["p0", "p1", "p2", "p3"] and bool(batch.keep.all())
    assert len(reward.calls) == 1
    assert batch.stats["generated_groups"] == 4 and batch.stats["refill_rounds"] == 0


def test_nan_rewards_drop_a_group(source):
    pool = make_problems(6, constant=set())

    def reward(prompts, completions, completion_ids, problem_id, **kw):
        return [
            None if pid == "p0" else float(len(ids))
            for pid, ids in zip(problem_id, completion_ids, strict=True)
        ]

    batch, _ = run(pool[:2], pool, source, reward=reward)
    assert "p0" not in [g.problem.id for g in batch.groups] and bool(batch.keep.all())


def test_problem_stream_is_deterministic_and_resumable():
    pool = make_problems(5, constant=set())
    a = ProblemStream(pool, seed=3)
    first = [p.id for p in a.take(3)] + [p.id for p in a.take(4)]
    b = ProblemStream(pool, seed=3)
    assert [p.id for p in b.take(3)] + [p.id for p in ProblemStream(pool, 3, pos=b.pos).take(4)] == first
    assert sorted(first[:5]) == sorted(p.id for p in pool)  # a pass visits every problem once
    assert len(ProblemStream(pool, seed=3).take(7)) == 5  # one take never repeats a problem
    c = ProblemStream(pool, seed=3)
    got = c.take(10, exclude={"p1"}, allow=lambda p: p.id != "p2")
    assert {p.id for p in got} == {"p0", "p3", "p4"}  # scans at most one pass, never repeats


def test_scorer_rejects_wrong_length_and_combines_with_weights():
    p = make_problems(1, constant=set())
    comps = FakeEngine(script).generate([[1, 2]], SampleSpec(n=2, max_tokens=8))
    scorer = Scorer([lambda **kw: [1.0, None], lambda **kw: [2.0, None]], ["a", "b"], [1.0, 0.5])
    rewards, _ = scorer(p, comps)
    combined = scorer.combine(rewards)
    assert combined[0] == 2.0 and torch.isnan(combined[1])
    with pytest.raises(ValueError, match="returned 1 values"):
        Scorer([lambda **kw: [1.0]], ["short"], [1.0])(p, comps)


# ---------------------------------------------------------------- advantage post-processing


def _batch(g=3, n=4, t=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.rand(g * n, generator=gen)
    lengths = torch.randint(1, t + 1, (g * n,), generator=gen)
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).long()
    return rewards, mask


@pytest.mark.parametrize("normalize", ["group", "batch", "none"])
def test_process_reduces_to_group_advantages(normalize):
    rewards, mask = _batch()
    out = process_advantages(rewards, mask, 4, normalize=normalize, token_weighted=False)
    assert torch.allclose(out.advantages, group_advantages(rewards, 4, normalize))
    assert torch.equal(out.loss_mask, mask) and out.stats["kept_samples"] == 1.0


def test_process_masks_dropped_groups_and_normalises_over_kept_only():
    rewards, mask = _batch()
    keep = torch.tensor([True, False, True])
    out = process_advantages(rewards, mask, 4, keep_groups=keep, normalize="batch", token_weighted=True)
    rows = keep.repeat_interleave(4)
    assert torch.all(out.advantages[~rows] == 0) and torch.all(out.loss_mask[~rows] == 0)
    expected = group_advantages(rewards[rows], 4, "batch", token_lengths=mask[rows].sum(1))
    assert torch.allclose(out.advantages[rows], expected)
    assert out.stats["kept_groups"] == pytest.approx(2 / 3)


def test_process_d3s_sample_and_token_selection():
    rewards, mask = _batch()
    out = process_advantages(rewards, mask, 4, sample_k=2)
    chosen = d3s_select_samples(group_advantages(rewards, 4), 4, 2)
    rows_with_loss = (out.loss_mask.sum(1) > 0).nonzero().squeeze(1)
    assert set(rows_with_loss.tolist()) <= set(chosen.tolist())
    entropies = torch.rand(mask.shape)
    tok = process_advantages(rewards, mask, 4, sample_k=2, rho=0.5, entropies=entropies)
    assert int(tok.loss_mask.sum()) < int(out.loss_mask.sum())
    assert torch.all(tok.loss_mask <= out.loss_mask)
    for o in (out, tok):  # the count of tokens in the loss, and its share of the completion tokens
        assert o.stats["loss_tokens"] == float(o.loss_mask.sum())
        assert o.stats["kept_tokens"] == pytest.approx(o.stats["loss_tokens"] / float(mask.sum()))
    with pytest.raises(ValueError, match="entropies"):
        process_advantages(rewards, mask, 4, rho=0.5)


def test_process_zeroes_unscorable_rows():
    rewards, mask = _batch()
    rewards[1] = float("nan")
    out = process_advantages(rewards, mask, 4)
    assert out.advantages[1] == 0 and out.loss_mask[1].sum() == 0
    assert torch.isfinite(out.advantages).all()


def test_train_modules_do_not_import_trl_or_peft():
    import subprocess
    import sys

    code = (
        "import sys, reasoner, reasoner.config, reasoner.train, reasoner.train.cli, reasoner.train.trainer, "
        "reasoner.train.batch, reasoner.train.difficulty, reasoner.train.rollout\n"
        "heavy = [m for m in ('vllm', 'ray', 'trl', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
