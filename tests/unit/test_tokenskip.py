"""TokenSkip (arXiv 2502.12067): token selection tables, the reasoning span, the gamma cue, data and the knobs."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest

from reasoner.distill import (
    RecordLog,
    TokenSkipConfig,
    distill_tokenskip,
    keep_indices,
    kept_count,
    reasoning_span,
    tokenskip_rows,
    tokenskip_stats,
)
from reasoner.distill.scorers import ReferenceScorer, offsets, project_scores, self_information
from reasoner.distill.tokenskip import compress, forced_scores, parse_gammas
from reasoner.engines.fake import FakeEngine, Trace
from reasoner.prompts import COMPRESSION_CUE, check_compression, compression_question
from reasoner.types import Problem, SampleSpec


@pytest.mark.parametrize(
    ("n", "gamma", "k"),
    [(10, 1.0, 10), (10, 0.5, 5), (10, 0.6, 6), (10, 0.7, 7), (5, 0.5, 3), (3, 0.5, 2), (7, 0.9, 6), (1, 0.4, 0),
     (0, 0.5, 0), (4, 0.625, 3)],
)  # fmt: skip
def test_kept_count_is_round_half_up(n, gamma, k):
    assert kept_count(n, gamma) == k


@pytest.mark.parametrize(
    ("scores", "gamma", "kept"),
    [
        ([0.1, 5.0, 0.3, 2.0], 0.5, [1, 3]),  # the two highest, in order
        ([3.0, 1.0, 2.0, 4.0, 0.0], 0.6, [0, 2, 3]),
        ([1.0, 1.0, 1.0, 1.0], 0.5, [0, 1]),  # ties: earlier tokens win
        ([2.0, 1.0, 1.0, 2.0, 1.0], 0.6, [0, 1, 3]),  # a tie at the cut: the earlier 1.0 is kept
        ([0.5, 0.2], 1.0, [0, 1]),
        ([], 0.5, []),
    ],
)
def test_keep_indices_table(scores, gamma, kept):
    assert keep_indices(scores, gamma) == kept


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma", [0.5, 0.6, 0.8, 0.9, 1.0])
def test_keep_indices_invariants(seed, gamma):
    rng = random.Random(seed)
    scores = [round(rng.random(), 1) for _ in range(rng.randint(1, 40))]  # coarse: many ties
    kept = keep_indices(scores, gamma)
    assert len(kept) == kept_count(len(scores), gamma) == int(gamma * len(scores) + 0.5 + 1e-9)
    assert kept == sorted(set(kept))
    dropped = [i for i in range(len(scores)) if i not in kept]
    if kept and dropped:
        assert min(scores[i] for i in kept) >= max(scores[i] for i in dropped)
        tie = min(scores[i] for i in kept)  # at the cut, kept tied tokens come before dropped tied ones
        assert max(i for i in kept if scores[i] == tie) < min(
            (i for i in dropped if scores[i] == tie), default=99
        )


def test_forced_tokens_are_kept_first():
    pieces = ["Step", " A", ":", " 12", " +", "x"]
    scores = forced_scores([0.0, 5.0, 0.1, 0.2, 3.0, 4.0], pieces, ["Step", ":"], digits=True)
    assert scores[:4] == [float("inf"), 5.0, float("inf"), float("inf")] and scores[4:] == [3.0, 4.0]
    assert keep_indices(scores, 0.5) == [0, 2, 3]  # the three forced tokens fill the budget
    assert keep_indices(scores, 0.67) == [0, 1, 2, 3]  # then the highest scored
    assert keep_indices(forced_scores([1.0, 2.0], ["a", "b"], ["a", "b"]), 0.5) == [
        0
    ]  # too many: the earliest


def test_self_information_is_negative_logprob():
    assert self_information([-0.5, 0.0, -2.25]) == [0.5, 0.0, 2.25]


@pytest.mark.parametrize(
    ("src", "scores", "dst", "expected"),
    [
        ([0, 2, 5], [1.0, 2.0, 4.0], [0, 2, 5], [1.0, 2.0, 4.0]),  # same tokens
        ([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0], [0, 2], [3.0, 7.0]),  # finer source: summed
        ([0, 4], [1.0, 2.0], [0, 2, 4, 6], [1.0, 0.0, 2.0, 0.0]),  # coarser source: to where it starts
        ([1, 3], [1.0, 2.0], [2, 3], [1.0, 2.0]),  # before the first destination token: the first
        ([0], [1.0], [], []),
    ],
)
def test_project_scores_table(src, scores, dst, expected):
    assert project_scores(src, scores, dst) == expected


def test_offsets():
    assert offsets(["ab", "", "c", "de"]) == [0, 2, 2, 3]


def test_reference_scorer_is_the_reference_lms_self_information(tiny_model):
    import torch

    scorer = ReferenceScorer(tiny_model, device="cpu")
    tok = scorer.tokenizer
    pieces = [tok.decode([i]) for i in tok.encode("two plus two is four", add_special_tokens=False)]
    scores = scorer.score("question: ", pieces)
    ctx = tok.encode("question: ", add_special_tokens=False)
    ids = torch.tensor([ctx + tok.encode("".join(pieces), add_special_tokens=False)])
    logp = torch.log_softmax(scorer.model(ids).logits[0, :-1], dim=-1)
    want = [-logp[len(ctx) - 1 + i, ids[0, len(ctx) + i]].item() for i in range(len(pieces))]
    assert scores == pytest.approx(want, rel=1e-4) and len(scores) == len(pieces) and min(scores) > 0


@pytest.mark.parametrize(
    ("pieces", "span"),
    [
        (["<think>", "\n", "a", " b", "</think>", " x"], (1, 4)),
        (["<", "think", ">", "a", "b", "</", "think", ">", "c"], (3, 5)),  # multi-token tags
        (["a", "b", "</think>", "c"], (0, 2)),  # <think> was in the prompt
        (["<think>", "a", "b</think>", "c"], (1, 2)),  # a token holding part of </think> is kept
        (["<think>", "</think>", "c"], None),  # empty span
        (["<think>", "a", "b"], None),  # never closed
    ],
)
def test_reasoning_span_table(pieces, span):
    assert reasoning_span(pieces) == span


def test_compress_keeps_prefix_and_answer():
    trace = {"token_ids": [9, 1, 2, 3, 4, 8, 7], "scores": [0, 0.1, 3, 0.2, 2, 0, 0], "span": [1, 5]}
    assert compress(trace, 0.5) == [9, 2, 4, 8, 7]
    assert compress(trace, 1.0) == trace["token_ids"]


def test_compression_question_and_errors():
    assert compression_question("Q?", None) == "Q?" == compression_question("Q?", 1.0)
    assert (
        compression_question("Q?", 0.6)
        == "Q?" + COMPRESSION_CUE.format(gamma="0.6")
        == "Q?<|eot_id|>0.6<|eot_id|>"
    )
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="gamma must be in"):
            check_compression(bad)
        with pytest.raises(ValueError, match="gamma must be in"):
            compression_question("Q?", bad)


@pytest.mark.parametrize(
    ("text", "message"), [("1.0,0", "--gammas"), ("0.5,0.5", "distinct"), ("a", "--gammas"), ("", "at least")]
)
def test_parse_gammas_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_gammas(text)


def test_parse_gammas():
    assert parse_gammas("1.0, 0.9,0.5") == (1.0, 0.9, 0.5)


PROBLEMS = [Problem("p0", "What is 2 + 3?", "5"), Problem("p1", "What is 4 + 4?", "8")]


def _script(prompt: str, j: int):
    if "2 + 3" in prompt:
        return ["<think>\nadd two and three gives five\n</think>\nso \\boxed{5}", "\\boxed{4}"][j]
    return ["<think>\nfour plus four\n</think>\n\\boxed{9}", Trace("\\boxed{8}", logprob=-1.0)][j]


def test_distill_tokenskip_rows_stats_and_resume(tmp_path: Path):
    engine = FakeEngine(_script)
    config = TokenSkipConfig(gammas=(1.0, 0.5))
    spec = SampleSpec(n=2, max_tokens=64, temperature=0.0)
    done = distill_tokenskip(engine, PROBLEMS, spec, RecordLog(tmp_path, {"m": 1}), config, batch_size=1)
    by_id = {r["id"]: r for r in done}
    assert len(by_id["p0"]["traces"]) == 1  # the correct sample; the wrong one is dropped
    assert by_id["p1"]["traces"] == []  # correct, but no thinking span to compress
    assert by_id["p0"]["sample_correct"] == [True, False] and by_id["p1"]["sample_correct"] == [False, True]
    trace = by_id["p0"]["traces"][0]
    assert trace["scores"] == pytest.approx([0.1] * len(trace["token_ids"]))  # FakeEngine: logprob -0.1
    rows = tokenskip_rows(done, engine.tokenizer, config)
    assert [(r["id"], r["gamma"]) for r in rows] == [("p0", 1.0), ("p0", 0.5)]
    full, half = rows
    assert full["completion"][0]["content"] == _script("2 + 3", 0)
    assert "<|eot_id|>" not in full["prompt"][0]["content"]
    assert "What is 2 + 3?<|eot_id|>0.5<|eot_id|>" in half["prompt"][0]["content"]
    n = trace["span"][1] - trace["span"][0]
    assert full["think_tokens"] == n and half["think_tokens"] == kept_count(n, 0.5)
    assert half["num_tokens"] == full["num_tokens"] - (n - kept_count(n, 0.5))
    text = half["completion"][0]["content"]
    assert text.startswith("<think>") and text.endswith("</think>\nso \\boxed{5}")
    stats = tokenskip_stats(done, engine.tokenizer, config)
    assert (stats["problems"], stats["samples"], stats["traces"], stats["rows"]) == (2, 4, 1, 2)
    assert stats["skipped_no_trace"] == 1 and stats["think_tokens@0.5"] == kept_count(n, 0.5)
    assert stats["numbers_kept@1"] is None  # no digits in the reasoning
    again = distill_tokenskip(None, PROBLEMS, spec, RecordLog(tmp_path, {"m": 1}), config)
    assert again == done  # resumed: nothing regenerated, no engine needed


def test_decode_compression_flag():
    from reasoner.cli import build_parser, compression_arg

    assert compression_arg("0.6") == 0.6
    for bad in ("0", "1.2", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="--compression"):
            compression_arg(bad)
    args = build_parser().parse_args(["decode", "Q?", "--compression", "0.5"])
    assert args.compression == 0.5
    assert build_parser().parse_args(["decode", "Q?"]).compression is None


def test_eval_config_compression_cues_the_problems():
    from evals.runner import sweep_problems
    from evals.sweep import EvalConfig

    plain = EvalConfig(limit=3)
    assert plain.compression is None
    cued = EvalConfig(limit=3, compression=0.6)
    a, b = sweep_problems(plain), sweep_problems(cued)
    assert [p.question + "<|eot_id|>0.6<|eot_id|>" for p in a] == [p.question for p in b]
    assert [p.id for p in a] == [p.id for p in b]
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="compression"):
            EvalConfig.from_dict({"compression": bad})
