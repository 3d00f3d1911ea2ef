"""Fitting a difficulty probe: pass rates from graded samples, ridge regression, AUROC, layer/alpha choice.

Zhu et al. 2025 ("The LLM Already Knows", https://arxiv.org/abs/2509.12886) read a question's difficulty as
the model perceives it from the hidden state at the end of the prompt. Here the target is the model's measured
pass rate y_i on problem i (the fraction of its graded samples that were correct), and the probe is ridge
regression on standardised features z = (h - mu) / sigma:

    w = argmin_w  (1/n) sum_i (y_i - y_bar - z_i . w)^2 + alpha ||w||^2
      = (Z^T Z + alpha n I)^-1 Z^T (y - y_bar)        (primal, d <= n)
      = Z^T (Z Z^T + alpha n I)^-1 (y - y_bar)        (dual, d > n: the same w)
    b = y_bar,   p_hat = clip(b + z . w, 0, 1)

Why ridge on the pass rate: the target is a rate in [0, 1] measured from k samples (not a 0/1 label), the
closed form is exact and deterministic, and the L2 penalty shrinks towards the mean pass rate where hidden
states have more dimensions than there are problems (1536 for a 1.5B model against a few hundred problems).
Standardising makes one alpha mean the same for every feature. Layer and alpha are chosen on a validation
slice of the training problems (``split_validation``: a hash of the problem id), never on test problems.

AUROC (Mann-Whitney U): the probability that a random positive scores above a random negative, ties 0.5.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def pass_rates(samples: Iterable[tuple[str, Sequence[bool]]]) -> dict[str, tuple[float, int]]:
    """Problem id -> (pass rate, number of samples), pooling every (problem id, verdicts) record (several
    rows of one problem: seeds). Problems without any sample are left out."""
    right: dict[str, int] = {}
    count: dict[str, int] = {}
    for pid, verdicts in samples:
        right[pid] = right.get(pid, 0) + sum(bool(v) for v in verdicts)
        count[pid] = count.get(pid, 0) + len(verdicts)
    return {pid: (right[pid] / count[pid], count[pid]) for pid in count if count[pid] > 0}


@dataclass(frozen=True)
class Spread:
    """How far pass rates differ between problems: what a per-problem sample allocation has to work with."""

    variance: float
    """Population variance of the measured pass rates r_i across problems."""
    noise: float
    """The part of ``variance`` that k-sample binomial noise explains: mean_i r_i (1 - r_i) / (k - 1) (unbiased
    for mean_i p_i (1 - p_i) / k)."""
    zero: float
    """Share of problems with r_i = 0 (no sample right)."""
    one: float
    """Share of problems with r_i = 1 (every sample right)."""

    @property
    def between(self) -> float:
        """variance - noise: the estimated variance of the true pass rates p_i (may dip below 0 by chance)."""
        return self.variance - self.noise


def pass_rate_spread(rates: Sequence[float], k: int) -> Spread:
    """``Spread`` of pass rates ``rates`` each measured on ``k`` samples (k >= 2). With true rates p_i,
    E[r_i (1 - r_i)] = p_i (1 - p_i) (1 - 1/k), so noise = mean r_i (1 - r_i) / (k - 1) estimates the
    binomial share p_i (1 - p_i) / k of the observed variance, and variance - noise the spread of the p_i."""
    if k < 2:
        raise ValueError(f"pass_rate_spread: k must be >= 2, got {k}")
    if not rates:
        raise ValueError("pass_rate_spread: no pass rates")
    n = len(rates)
    mean = sum(rates) / n
    return Spread(
        variance=sum((r - mean) ** 2 for r in rates) / n,
        noise=sum(r * (1 - r) for r in rates) / n / (k - 1),
        zero=sum(r == 0 for r in rates) / n,
        one=sum(r == 1 for r in rates) / n,
    )


def standardise(x: Any) -> tuple[Any, Any]:
    """(mu, sigma) per feature of ``x`` [n, d]; sigma = 1 where a feature is constant."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    mu, sigma = x.mean(axis=0), x.std(axis=0)
    return mu, np.where(sigma > 1e-12, sigma, 1.0)


def ridge(z: Any, y: Sequence[float], alpha: float) -> tuple[Any, float]:
    """(w, b) of ridge regression of ``y`` on standardised ``z`` [n, d] (module docstring formula)."""
    import numpy as np

    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    z, t = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, d = z.shape
    if n == 0:
        raise ValueError("ridge: no training rows")
    b = float(t.mean())
    r = t - b
    if d <= n:
        w = np.linalg.solve(z.T @ z + alpha * n * np.eye(d), z.T @ r)
    else:
        w = z.T @ np.linalg.solve(z @ z.T + alpha * n * np.eye(n), r)
    return w, b


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (Mann-Whitney U / (P N), ties count 0.5).
    NaN when one class is empty."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant."""
    import numpy as np

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def regression_metrics(pred: Sequence[float], target: Sequence[float]) -> dict[str, float]:
    """mse, pearson r, and AUROC of ``pred`` for "pass rate >= 0.5" (NaN with one class)."""
    import numpy as np

    p, t = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return {
        "mse": float(((p - t) ** 2).mean()) if len(t) else float("nan"),
        "pearson": pearson(list(p), list(t)),
        "auroc_pass_ge_half": auroc(list(p), [v >= 0.5 for v in t]),
        "n": float(len(t)),
    }


def split_validation(ids: Sequence[str], fraction: float) -> list[bool]:
    """Whether each problem is in the validation slice: crc32(id) mod 1000 < 1000 * fraction (stable)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    return [zlib.crc32(i.encode()) % 1000 < 1000 * fraction for i in ids]


@dataclass(frozen=True)
class Fit:
    """One fitted probe: layer, alpha, standardisation, weights, bias and its train/validation metrics."""

    layer: int
    alpha: float
    mean: Any
    std: Any
    weights: Any
    bias: float
    train: dict[str, float]
    validation: dict[str, float]


def fit_one(x: Any, y: Sequence[float], alpha: float, layer: int, val: Sequence[bool]) -> Fit:
    """Ridge on the rows of ``x`` [n, d] outside ``val``; metrics on both sides."""
    import numpy as np

    x, t, v = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(val, dtype=bool)
    if (~v).sum() == 0:
        raise ValueError("no training problems left outside the validation slice")
    mu, sigma = standardise(x[~v])
    w, b = ridge((x[~v] - mu) / sigma, t[~v], alpha)
    pred = np.clip(b + ((x - mu) / sigma) @ w, 0.0, 1.0)
    return Fit(layer, alpha, mu, sigma, w, b, regression_metrics(pred[~v], t[~v]),
               regression_metrics(pred[v], t[v]) if v.any() else {})  # fmt: skip


def select(features: Any, y: Sequence[float], layers: Sequence[int], alphas: Sequence[float],
           val: Sequence[bool]) -> tuple[Fit, list[Fit]]:  # fmt: skip
    """Fit every (layer, alpha) on the training side; the best by validation MSE (train MSE without a
    validation slice), and all candidates. ``features`` is [len(layers), n, d]."""
    fits = [fit_one(features[i], y, a, layer, val) for i, layer in enumerate(layers) for a in alphas]
    key = "mse"
    best = min(fits, key=lambda f: (f.validation or f.train)[key])
    return best, fits
