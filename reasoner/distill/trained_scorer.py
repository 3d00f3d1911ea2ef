"""A trained TokenSkip importance scorer in LLMLingua-2's mould, taught by the model's own shortest solutions.

TokenSkip (Xia et al. 2025, arXiv 2502.12067) ranks reasoning tokens with LLMLingua-2 (Pan et al. 2024, arXiv
2403.12968): a token classifier trained on labels made by aligning an extractive compression (GPT-4's) back to
the original tokens, ``keep = 1`` when the token survives in the compression; a token's importance is its
predicted keep probability ``p(keep | x)``. Here the compression is the model's own: of the N samples of a
problem, the SHORTEST correct one (self-distillation; shortest-correct SFT, ``reasoner distill shortest-
correct``) is the compressed solution, and every correct trace's reasoning tokens are labelled by a longest-
common-subsequence alignment onto its reasoning tokens (``lcs_keep``; token ids, earliest matches). No gold
answer structure and no trace generator enters: only the model's own samples and the verifier's verdicts.

The classifier sees what exists at data-building time, per reasoning token ``i`` of a trace (``features``):
the token ids at offsets ``-w..w`` (LLMLingua-2's encoder is bidirectional; a window is its cheapest form), the
token's self-information ``-log p`` under the sampling model (Selective Context's signal), its relative position
``i / n``, and redundancy counts: how often the n-gram ending at ``i`` / starting at ``i`` occurred earlier in
the reasoning (n in ``ScorerConfig.ngrams``; capped at 3). Model: a one-hidden-layer MLP (``hidden`` ReLU units; 0: logistic
regression) on those, trained with binary cross-entropy (Adam) on problems split off from a held-out set,
whose token AUROC (``auroc``) the fit reports. ``reasoner distill tokenskip-scorer`` fits and saves it;
``reasoner distill tokenskip --scorer-file`` compresses with it (selection to gamma unchanged).

Measured on the organism (``bench/tokenskip.py --scorer trained``; README "TokenSkip"): held-out token AUROC
0.856 on 59 unseen problems (self-information 0.476); it keeps the first chain over the re-checks, but traces
without a re-check carry all-keep labels, so it cuts their chains' repeated values, and the students trained on
its compressions lose accuracy at every gamma.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScorerConfig:
    """Features and fit of the trained keep scorer (``fit_scorer``)."""

    window: int = 1
    """Token ids at offsets -window..window are features. Default 1 (held-out AUROC on the organism's traces:
    0.855 at window 0 and 1, 0.847 at 2)."""
    ngrams: tuple[int, ...] = (2, 4, 8)
    """n of the redundancy counts (times the n-gram ending / starting at the token occurred earlier). Default
    (2, 4, 8)."""
    hidden: int = 16
    """Hidden ReLU units; 0 is logistic regression. Default 16."""
    epochs: int = 30
    """Passes over the fit tokens. Default 30."""
    lr: float = 0.01
    """Adam learning rate. Default 0.01."""
    batch: int = 1024
    """Tokens per step. Default 1024."""
    heldout: float = 0.2
    """Fraction of problems held out (seeded shuffle of problem ids) for the reported AUROC. Default 0.2."""
    min_traces: int = 2
    """Problems with fewer correct traces are skipped: a lone trace is its own shortest, all keep=1, and says
    nothing about what to drop. Default 2."""
    seed: int = 0
    """Split, initialisation and batch order seed. Default 0."""

    def __post_init__(self) -> None:
        checks = {"window": self.window >= 0, "hidden": self.hidden >= 0, "epochs": self.epochs >= 1,
                  "lr": self.lr > 0, "batch": self.batch >= 1, "heldout": 0 <= self.heldout < 1,
                  "min_traces": self.min_traces >= 1, "ngrams": bool(self.ngrams) and min(self.ngrams) >= 1}  # fmt: skip
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")


def lcs_keep(source: Sequence[int], target: Sequence[int]) -> list[bool]:
    """For each ``source`` token, whether a longest common subsequence of ``source`` and ``target`` uses it;
    among LCSs the one matching each target token to its earliest source token (as LLMLingua-2's alignment
    searches the original forward). Suffix table ``L[i][j] = LCS(source[i:], target[j:])``, walked from (0, 0):
    equal tokens match (always optimal), else skip the source token when that keeps the LCS, else the target's."""
    n, m = len(source), len(target)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if source[i] == target[j] else max(below[j], row[j + 1])
    keep, i, j = [False] * n, 0, 0
    while i < n and j < m:
        if source[i] == target[j]:
            keep[i], i, j = True, i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return keep


def span_ids(trace: Mapping[str, Any]) -> list[int]:
    """A stored trace's reasoning token ids (``trace["span"]``)."""
    start, end = trace["span"]
    return list(trace["token_ids"][start:end])


def keep_labels(record: Mapping[str, Any]) -> list[list[int]]:
    """Per correct trace of a problem record, its reasoning tokens' labels: 1 when aligned (``lcs_keep``) to the
    reasoning of the record's shortest correct trace (fewest tokens; ties: the first), else 0."""
    traces = record["traces"]
    if not traces:
        return []
    short = span_ids(min(traces, key=lambda t: len(t["token_ids"])))
    return [[int(k) for k in lcs_keep(span_ids(t), short)] for t in traces]


def repeat_counts(ids: Sequence[int], n: int) -> tuple[list[int], list[int]]:
    """``(ending, starting)``: how many times the n-gram ending / starting at each token occurred ending /
    starting at an earlier position (overlaps allowed); 0 where no n-gram fits."""
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    seen: dict[tuple[int, ...], int] = {}
    starting = [0] * len(ids)
    for i, gram in enumerate(grams):
        starting[i] = seen.get(gram, 0)
        seen[gram] = starting[i] + 1
    ending = [0] * len(ids)
    for i, count in enumerate(starting[: len(grams)]):
        ending[i + n - 1] = count
    return ending, starting


def features(
    ids: Sequence[int], info: Sequence[float], config: ScorerConfig, vocab: int
) -> tuple[list[list[int]], list[list[float]]]:
    """Per token: categorical indices (offset ``o`` of ``-w..w`` times ``vocab + 2``, plus the id there; ``vocab``
    pads past the ends, ``vocab + 1`` is an unseen id) and dense features (self-information ``log(1 + s)``,
    relative position, the ``repeat_counts`` of each n, capped at 3)."""
    n, w, size = len(ids), config.window, vocab + 2
    safe = [i if 0 <= i < vocab else vocab + 1 for i in ids]
    cats = [[k * size + (safe[i + o] if 0 <= i + o < n else vocab) for k, o in enumerate(range(-w, w + 1))]
            for i in range(n)]  # fmt: skip
    counts = [c for g in config.ngrams for c in repeat_counts(ids, g)]
    dense = [[math.log1p(max(0.0, info[i])), i / max(1, n)] + [float(min(c[i], 3)) for c in counts]
             for i in range(n)]  # fmt: skip
    return cats, dense


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve: ``P(score_pos > score_neg) + P(tie) / 2`` (Mann-Whitney U over ranks, ties
    averaged); ``ValueError`` when one class is absent."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if not pos or not neg:
        raise ValueError(f"auroc: need both classes, got {pos} positive and {neg} negative labels")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    lo = 0
    while lo < len(order):
        hi = lo
        while hi + 1 < len(order) and scores[order[hi + 1]] == scores[order[lo]]:
            hi += 1
        for k in range(lo, hi + 1):
            ranks[order[k]] = (lo + hi) / 2 + 1
        lo = hi + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


class TrainedScorer:
    """The keep-probability classifier (module docstring): ``score(ids, info)`` per reasoning token."""

    def __init__(self, config: ScorerConfig, vocab: int, state: Mapping[str, Any] | None = None):
        import torch

        self.config, self.vocab = config, vocab
        torch.manual_seed(config.seed)
        dims = 2 + 2 * len(config.ngrams)
        width = config.hidden or 1
        cats = (2 * config.window + 1) * (vocab + 2)
        self.embed = torch.nn.EmbeddingBag(cats, width, mode="sum")
        torch.nn.init.normal_(self.embed.weight, std=0.01)
        self.dense = torch.nn.Linear(dims, width)
        self.out = torch.nn.Linear(width, 1) if config.hidden else None
        self.params = [*self.embed.parameters(), *self.dense.parameters()]
        self.params += [*self.out.parameters()] if self.out is not None else []
        if state is not None:
            for p, value in zip(self.params, state["params"], strict=True):
                p.data.copy_(value)

    def logits(self, cats: Any, dense: Any) -> Any:
        """Keep logits of a batch of token features (tensors)."""
        import torch

        h = self.embed(cats) + self.dense(dense)
        return (h if self.out is None else self.out(torch.relu(h)))[:, 0]

    def score(self, ids: Sequence[int], info: Sequence[float]) -> list[float]:
        """Keep probabilities of a trace's reasoning tokens (ids and their self-information)."""
        import torch

        if not ids:
            return []
        cats, dense = features(ids, info, self.config, self.vocab)
        with torch.no_grad():
            probs = torch.sigmoid(self.logits(torch.tensor(cats), torch.tensor(dense)))
        return [round(p, 6) for p in probs.tolist()]

    def save(self, path: str) -> None:
        import torch

        torch.save({"config": asdict(self.config), "vocab": self.vocab,
                    "params": [p.detach().clone() for p in self.params]}, path)  # fmt: skip

    @classmethod
    def load(cls, path: str) -> TrainedScorer:
        """A scorer saved by ``save`` (``OSError`` / ``ValueError`` naming the file otherwise)."""
        import pickle

        import torch

        try:
            blob = torch.load(path, weights_only=True)
            fields: dict[str, Any] = dict(blob["config"])
            config = ScorerConfig(**(fields | {"ngrams": tuple(fields["ngrams"])}))
            return cls(config, int(blob["vocab"]), blob)
        except (KeyError, TypeError, RuntimeError, pickle.UnpicklingError) as err:
            raise ValueError(f"--scorer-file {path!r}: not a trained TokenSkip scorer ({err})") from None


def split_ids(ids: Sequence[str], heldout: float, seed: int) -> tuple[set[str], set[str]]:
    """``(fit, held)``: the problem ids shuffled (seeded, from sorted order), the first ``round(heldout * n)``
    held out."""
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    k = round(heldout * len(order))
    return set(order[k:]), set(order[:k])


def labelled(
    records: Sequence[Mapping[str, Any]], config: ScorerConfig, vocab: int
) -> tuple[list[list[int]], list[list[float]], list[int], list[float]]:
    """Features, ``keep_labels`` and stored scores (self-information) of every reasoning token of the records."""
    cats: list[list[int]] = []
    dense: list[list[float]] = []
    labels: list[int] = []
    info: list[float] = []
    for record in records:
        for trace, y in zip(record["traces"], keep_labels(record), strict=True):
            start, end = trace["span"]
            c, d = features(span_ids(trace), trace["scores"][start:end], config, vocab)
            cats += c
            dense += d
            labels += y
            info += trace["scores"][start:end]
    return cats, dense, labels, info


def fit_scorer(
    records: Sequence[Mapping[str, Any]], config: ScorerConfig, vocab: int | None = None
) -> tuple[TrainedScorer, dict[str, Any]]:
    """Fit a ``TrainedScorer`` on the problems of ``records`` (TokenSkip records: every correct trace, with
    self-information scores) with at least ``min_traces`` traces, less the held-out split; return it and a
    report: problems, tokens and keep rate per split, the held-out token AUROC of the scorer and of self-
    information alone, the fit AUROC. ``vocab``: the tokenizer's size (default: the largest id seen + 1)."""
    import torch

    usable = [r for r in records if len(r["traces"]) >= config.min_traces]
    if not usable:
        raise ValueError(f"min_traces: no problem has {config.min_traces} correct traces; sample more (-n)")
    vocab = vocab or 1 + max(i for r in usable for t in r["traces"] for i in t["token_ids"])
    fit_ids, held_ids = split_ids([r["id"] for r in usable], config.heldout, config.seed)
    fit = labelled([r for r in usable if r["id"] in fit_ids], config, vocab)
    held = labelled([r for r in usable if r["id"] in held_ids], config, vocab)
    scorer = TrainedScorer(config, vocab)
    cats, dense, y = torch.tensor(fit[0]), torch.tensor(fit[1]), torch.tensor(fit[2], dtype=torch.float32)
    optim = torch.optim.Adam(scorer.params, lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    loss = torch.tensor(0.0)
    for epoch in range(config.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(config.batch):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                scorer.logits(cats[idx], dense[idx]), y[idx]
            )
            optim.zero_grad()
            loss.backward()
            optim.step()
        log.debug("epoch %d: loss %.4f", epoch, loss.item())
    report: dict[str, Any] = {"problems": len(records), "usable_problems": len(usable), "vocab": vocab,
                              "config": asdict(config), "final_loss": round(loss.item(), 4)}  # fmt: skip
    for name, (c, d, labels, info), ids in (("fit", fit, fit_ids), ("heldout", held, held_ids)):
        report[f"{name}_problems"], report[f"{name}_tokens"] = len(ids), len(labels)
        report[f"{name}_keep_rate"] = round(sum(labels) / len(labels), 4) if labels else None
        if labels and 0 < sum(labels) < len(labels):
            with torch.no_grad():
                probs = torch.sigmoid(scorer.logits(torch.tensor(c), torch.tensor(d))).tolist()
            report[f"{name}_auroc"] = round(auroc(labels, probs), 4)
            report[f"{name}_auroc_self_information"] = round(auroc(labels, info), 4)
    return scorer, report
