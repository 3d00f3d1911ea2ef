"""Uncertainty for evaluation results: bootstrap intervals over problems and paired strategy comparisons.

Pure numpy functions over per-problem values (one number per problem, e.g. its accuracy averaged over
seeds). Problems are the sampling unit: a benchmark is a sample of problems, so intervals resample problems,
never individual completions (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 6 and 13;
for paired system comparisons, Koehn 2004 and Dror et al. 2018, "The Hitchhiker's Guide to Testing
Statistical Significance in NLP").

- ``bootstrap_ci``      percentile bootstrap: resample the P problems with replacement B times, take the
                        (1-level)/2 and (1+level)/2 quantiles of the statistic over the B resamples
- ``sign_flip_p_value`` two-sided paired permutation (sign-flip) test of "no difference"
- ``paired_comparison`` accuracy difference of two strategies on the same problems (bootstrap CI + p-value)
                        and their token ratio / saving (bootstrap CIs from the same resampled problems)

All randomness comes from ``np.random.default_rng(seed)``: equal inputs and seeds give equal outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["EXACT_MAX", "bootstrap_ci", "paired_comparison", "sign_flip_p_value"]

EXACT_MAX = 20
"""Up to this many non-zero paired differences the sign-flip test enumerates all 2^m sign patterns."""


def _check(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _resample(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` problem indices drawn uniformly with replacement (one bootstrap resample per row)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _quantiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates; non-finite replicates (e.g. x/0) are dropped."""
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def bootstrap_ci(
    per_problem_values: Sequence[float] | np.ndarray,
    *,
    statistic: Callable[..., Any] = np.mean,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(lo, hi)`` of ``statistic`` over problems.

    Draw ``n_boot`` resamples of the P values with replacement (one vectorised ``(n_boot, P)`` index draw
    from ``np.random.default_rng(seed)``), compute ``statistic(resamples, axis=1)`` and return its
    ``(1-level)/2`` and ``(1+level)/2`` quantiles (linear interpolation); Efron & Tibshirani 1993, ch. 13.
    ``statistic`` must accept ``axis=`` like ``np.mean`` / ``np.median``. Degenerate inputs (one problem,
    or all values equal) return ``lo == hi == statistic(values)``.
    """
    _check(n_boot, level)
    x = np.asarray(per_problem_values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty 1-d sequence of per-problem values, got shape {x.shape}")
    if x.size == 1 or np.all(x == x[0]):
        value = float(statistic(x))
        return (value, value)
    boot = np.asarray(statistic(x[_resample(x.size, n_boot, seed)], axis=1), dtype=float)
    return _quantiles(boot, level)


def _exact_sign_flip(d: np.ndarray, observed: float, tol: float) -> float:
    sums = np.zeros(1)
    for value in d:  # all 2^m signed sums, built one difference at a time (2^20 doubles = 8 MB)
        sums = np.concatenate([sums + value, sums - value])
    return float(np.mean(np.abs(sums) >= observed - tol))


def _monte_carlo_sign_flip(d: np.ndarray, observed: float, tol: float, n_perm: int, seed: int) -> float:
    rng = np.random.default_rng([seed, 1])  # a stream of its own, apart from the bootstrap's
    hits, done = 0, 0
    while done < n_perm:  # chunks keep the (chunk, m) sign matrix small
        chunk = min(n_perm - done, max(1, 2_000_000 // d.size))
        signs = rng.integers(0, 2, size=(chunk, d.size)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ d) >= observed - tol))
        done += chunk
    return (hits + 1) / (n_perm + 1)


def sign_flip_p_value(
    differences: Sequence[float] | np.ndarray,
    *,
    n_perm: int = 10_000,
    seed: int = 0,
    exact_max: int = EXACT_MAX,
) -> float:
    """Two-sided paired sign-flip (permutation) test of "the two strategies do equally well".

    Under the null each per-problem difference ``d_p = a_p - b_p`` is as likely to be ``+d_p`` as ``-d_p``.
    The statistic is ``T = |sum_p d_p|`` (equivalently |mean difference|); the p-value is the fraction of
    sign patterns ``s`` with ``|sum_p s_p d_p| >= T`` (Fisher's randomisation test; Good 2005,
    *Permutation, Parametric and Bootstrap Tests of Hypotheses*). Zero differences do not change under a
    flip and are dropped. With ``m <= exact_max`` non-zero differences all ``2^m`` patterns are enumerated
    (exact: e.g. five differences of +1 give 2/32 = 0.0625); otherwise ``n_perm`` patterns are drawn from
    ``np.random.default_rng([seed, 1])`` and ``p = (1 + hits) / (1 + n_perm)``, which never returns 0 and
    keeps the test valid (Phipson & Smyth 2010). No non-zero difference gives ``p = 1``. Sums are compared
    with a relative tolerance of 1e-9 so that equal sums reached in different orders count as ties.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    if d.size <= exact_max:
        return _exact_sign_flip(d, observed, tol)
    return _monte_carlo_sign_flip(d, observed, tol, n_perm, seed)


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    tokens_a: Sequence[float] | np.ndarray,
    tokens_b: Sequence[float] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    n_perm: int = 10_000,
) -> dict[str, Any]:
    """Strategy A vs strategy B on the same P problems (entry p of every sequence is problem p).

    ``a``/``b``: per-problem accuracies (each problem's mean over seeds); ``tokens_a``/``tokens_b``:
    per-problem tokens (e.g. mean generated tokens). Returns

    - ``diff`` = mean_p (a_p - b_p), with ``diff_ci`` (percentile bootstrap over problems, as
      ``bootstrap_ci(a - b)`` with the same seed) and ``p_value`` (``sign_flip_p_value``, two-sided);
    - ``token_ratio`` = sum_p tokens_a / sum_p tokens_b and ``token_saving`` = 1 - ratio (> 0: A is
      cheaper), with bootstrap CIs computed on the *same* resampled problems as ``diff_ci``
      (``token_saving_ci`` = 1 - the ratio's interval, reversed); NaN when B spent no tokens;
    - ``problems`` = P.

    Unequal or empty inputs raise ValueError naming the lengths.
    """
    _check(n_boot, level)
    arrays = [np.asarray(v, dtype=float).ravel() for v in (a, b, tokens_a, tokens_b)]
    sizes = [x.size for x in arrays]
    if len(set(sizes)) != 1 or sizes[0] == 0:
        raise ValueError(
            "need equal, non-empty per-problem sequences, got lengths "
            f"a={sizes[0]}, b={sizes[1]}, tokens_a={sizes[2]}, tokens_b={sizes[3]}"
        )
    xa, xb, ta, tb = arrays
    d = xa - xb
    idx = _resample(d.size, n_boot, seed)
    diff = float(d.mean())
    degenerate = d.size == 1 or bool(np.all(d == d[0]))
    diff_ci = (diff, diff) if degenerate else _quantiles(d[idx].mean(axis=1), level)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(ta.sum() / tb.sum()) if tb.sum() > 0 else float("nan")
        ratio_ci = _quantiles(ta[idx].sum(axis=1) / tb[idx].sum(axis=1), level)
    return {
        "problems": int(d.size),
        "diff": diff,
        "diff_ci": diff_ci,
        "p_value": sign_flip_p_value(d, n_perm=n_perm, seed=seed),
        "token_ratio": ratio,
        "token_ratio_ci": ratio_ci,
        "token_saving": 1.0 - ratio,
        "token_saving_ci": (1.0 - ratio_ci[1], 1.0 - ratio_ci[0]),
    }
