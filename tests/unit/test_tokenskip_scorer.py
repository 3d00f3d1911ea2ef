"""The trained TokenSkip scorer (LLMLingua-2's mould, arXiv 2403.12968): alignment, labels, features, AUROC, a
fit that recovers planted rules, its file and its use in the rows and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reasoner.distill import TokenSkipConfig, keep_indices, tokenskip_rows
from reasoner.distill.tokenskip import span_scores
from reasoner.distill.trained_scorer import (
    ScorerConfig,
    TrainedScorer,
    auroc,
    features,
    fit_scorer,
    keep_labels,
    lcs_keep,
    repeat_counts,
    split_ids,
)


@pytest.mark.parametrize(
    ("source", "target", "keep"),
    [
        ([1, 2, 3], [1, 2, 3], [1, 1, 1]),
        ([1, 2, 3, 1, 2, 3], [1, 2, 3], [1, 1, 1, 0, 0, 0]),  # a repeated block: the first copy is aligned
        ([1, 9, 2, 9, 3], [1, 2, 3], [1, 0, 1, 0, 1]),  # inserted tokens are dropped
        ([1, 2, 3, 4], [1, 3, 5, 4], [1, 0, 1, 1]),  # the target need not be a subsequence
        ([5, 1, 2, 7], [1, 2, 5], [0, 1, 1, 0]),  # the LCS (1, 2) beats matching 5 first
        ([1, 1, 2], [1, 2], [1, 0, 1]),  # earliest match
        ([], [1, 2], []),
        ([1, 2], [], [0, 0]),
    ],
)
def test_lcs_keep_table(source, target, keep):
    assert lcs_keep(source, target) == [bool(k) for k in keep]


def _lcs_length(a, b) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _is_subsequence(a, b) -> bool:
    it = iter(b)
    return all(x in it for x in a)


@pytest.mark.parametrize("seed", range(8))
def test_lcs_keep_invariants(seed):
    rng = random.Random(seed)
    source = [rng.randint(0, 4) for _ in range(rng.randint(0, 30))]
    target = [rng.randint(0, 4) for _ in range(rng.randint(0, 30))]
    keep = lcs_keep(source, target)
    kept = [x for x, k in zip(source, keep, strict=True) if k]
    assert len(keep) == len(source) and len(kept) == _lcs_length(source, target)
    assert _is_subsequence(kept, target)
    assert all(lcs_keep(target, target))  # a trace aligned to itself is kept whole


def _trace(span: list[int], prefix=(90,), suffix=(91, 92)) -> dict:
    ids = [*prefix, *span, *suffix]
    return {"token_ids": ids, "scores": [0.5] * len(ids), "span": [len(prefix), len(prefix) + len(span)]}


def test_keep_labels_align_to_the_shortest_trace():
    chain, check = [1, 2, 3], [7, 1, 2, 3]
    record = {"traces": [_trace(chain + check + check), _trace(chain), _trace([4, *chain]), _trace(chain)]}
    assert keep_labels(record) == [[1, 1, 1] + [0] * 8, [1, 1, 1], [0, 1, 1, 1], [1, 1, 1]]
    assert keep_labels({"traces": []}) == []


@pytest.mark.parametrize(
    ("ids", "n", "ending", "starting"),
    [
        ([1, 2, 1, 2, 1], 2, [0, 0, 0, 1, 1], [0, 0, 1, 1, 0]),
        ([1, 1, 1, 1], 1, [0, 1, 2, 3], [0, 1, 2, 3]),
        ([1, 2, 3, 1, 2, 3, 1, 2, 3], 3, [0, 0, 0, 0, 0, 1, 1, 1, 2], [0, 0, 0, 1, 1, 1, 2, 0, 0]),
        ([1, 2], 3, [0, 0], [0, 0]),
    ],
)
def test_repeat_counts_table(ids, n, ending, starting):
    assert repeat_counts(ids, n) == (ending, starting)


def test_features_window_padding_and_dense():
    config = ScorerConfig(window=1, ngrams=(1,))
    cats, dense = features([3, 3, 9], [0.0, 1.0, -1.0], config, vocab=5)  # 9: unseen id
    size = 5 + 2
    assert cats == [[5, size + 3, 2 * size + 3], [3, size + 3, 2 * size + 6], [3, size + 6, 2 * size + 5]]
    assert dense[1] == pytest.approx([0.6931, 1 / 3, 1.0, 1.0], abs=1e-4)
    assert dense[2][0] == 0.0  # negative information clipped


@pytest.mark.parametrize(
    ("labels", "scores", "value"),
    [
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5),
        ([1, 0, 1, 0], [0.9, 0.1, 0.5, 0.5], 0.875),  # one tie among 4 pairs counts half
        ([0, 1, 0], [0.3, 0.2, 0.1], 0.5),
    ],
)
def test_auroc_table(labels, scores, value):
    assert auroc(labels, scores) == pytest.approx(value)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        auroc([1, 1], [0.2, 0.3])


def test_split_ids_is_seeded_and_disjoint():
    ids = [f"p{i}" for i in range(10)]
    fit, held = split_ids(ids, 0.3, seed=1)
    assert len(held) == 3 and fit | held == set(ids) and not fit & held
    assert split_ids(list(reversed(ids)), 0.3, seed=1) == (fit, held)


def _planted(rule: str, problems: int = 40, seed: int = 0) -> list[dict]:
    """Problems whose shortest trace is the chain alone; longer traces add filler ids (40-44) anywhere
    (``filler``) or repeat the chain (``repeat``: random ids, so only redundancy tells the copy apart)."""
    rng = random.Random(seed)
    out = []
    for p in range(problems):
        chain = [rng.randrange(40) for _ in range(rng.randint(8, 16))]
        traces = [_trace(chain)]
        for _ in range(2):
            if rule == "filler":
                span = list(chain)
                for _ in range(rng.randint(2, 6)):
                    span.insert(rng.randint(0, len(span)), rng.randrange(40, 45))
            else:
                span = chain + [45] + chain * rng.randint(1, 2)
            traces.append(_trace(span))
        out.append({"id": f"p{p}", "traces": traces})
    return out


@pytest.mark.parametrize("rule", ["filler", "repeat"])
def test_fit_recovers_a_planted_rule(rule):
    config = ScorerConfig(epochs=40, heldout=0.25, seed=0)
    scorer, report = fit_scorer(_planted(rule), config, vocab=93)
    assert report["usable_problems"] == 40 and report["heldout_problems"] == 10
    assert report["heldout_auroc"] > 0.97 > report["heldout_auroc_self_information"]  # constant info: 0.5
    assert 0 < report["heldout_keep_rate"] < 1
    record = _planted(rule, problems=1, seed=99)[0]
    trace, labels = record["traces"][1], keep_labels(record)[1]
    start, end = trace["span"]
    probs = scorer.score(trace["token_ids"][start:end], trace["scores"][start:end])
    kept = keep_indices(probs, sum(labels) / len(labels))
    assert sum(labels[i] for i in kept) >= 0.9 * len(kept)  # cutting to the label count keeps the chain


def test_fit_needs_problems_with_several_traces():
    with pytest.raises(ValueError, match="min_traces"):
        fit_scorer([{"id": "a", "traces": [_trace([1, 2])]}], ScorerConfig())


@pytest.mark.parametrize(
    ("field", "value"), [("window", -1), ("heldout", 1.0), ("ngrams", ()), ("epochs", 0)]
)
def test_scorer_config_errors(field, value):
    with pytest.raises(ValueError, match=field):
        ScorerConfig(**{field: value})


def test_save_load_and_rows_use_the_trained_scorer(tmp_path: Path, tiny_model):
    from transformers import AutoTokenizer

    scorer, _ = fit_scorer(_planted("filler", problems=12), ScorerConfig(epochs=5, hidden=0), vocab=93)
    path = str(tmp_path / "scorer.pt")
    scorer.save(path)
    again = TrainedScorer.load(path)
    assert again.config == scorer.config and again.score([1, 2, 41, 3], [0.0] * 4) == scorer.score(
        [1, 2, 41, 3], [0.0] * 4
    )
    tok = AutoTokenizer.from_pretrained(tiny_model)
    trace = _trace([1, 2, 41, 3, 4, 42, 5])
    config = TokenSkipConfig(gammas=(1.0, 0.5), scorer_file=path)
    scores = span_scores(trace, tok, config)
    assert scores == scorer.score(trace["token_ids"][1:8], trace["scores"][1:8])
    rows = tokenskip_rows([{"id": "x", "question": "Q?", "answer": "1", "traces": [trace]}], tok, config)
    kept = [trace["token_ids"][1 + i] for i in keep_indices(scores, 0.5)]
    assert rows[1]["completion"][0]["content"] == tok.decode([90, *kept, 91, 92])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a scorer")
    with pytest.raises(ValueError, match="--scorer-file"):
        TrainedScorer.load(str(bad))
    with pytest.raises(ValueError, match="scorer_file"):
        TokenSkipConfig(scorer_file=path, scorer="smollm2-135m")


def test_cli_tokenskip_scorer(tmp_path: Path, capsys):
    from reasoner.cli import main

    runs = tmp_path / "labels"
    runs.mkdir()
    (runs / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _planted("filler", 12)))
    out = tmp_path / "s.pt"
    assert main(["distill", "tokenskip-scorer", "--records", str(runs), "--out", str(out), "--epochs", "3",
                 "--ngrams", "2,4", "--hidden", "0"]) == 0  # fmt: skip
    report = json.loads(Path(f"{out}.json").read_text())
    assert report["config"]["ngrams"] == [2, 4] and "heldout_auroc" in report and out.is_file()
    assert "heldout_auroc" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["distill", "tokenskip-scorer", "--records", str(tmp_path / "none"), "--out", str(out)])
    assert "--records: no records.jsonl" in capsys.readouterr().err
