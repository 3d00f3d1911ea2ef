"""Predicted difficulty: the linear probe's file and predictions, and how a sample budget follows them.

A difficulty probe (Zhu et al. 2025, "The LLM Already Knows", https://arxiv.org/abs/2509.12886) reads the
hidden state h of the prompt's last token at one layer and predicts the model's pass rate on the question
before generating anything:

    p_hat(h) = clip( b + w . (h - mu) / sigma , 0, 1 )          difficulty d = 1 - p_hat

(mu, sigma: the training features' mean and standard deviation; ``reasoner probe fit`` fits w, b.) The probe is
a JSON file, by default ``<model dir>/difficulty_probe.json`` (``PROBE_FILE``), with its metadata (model,
layer, run, fit date, train metrics).

``allocate`` spends a total sample budget over a batch by predicted difficulty (adaptive self-consistency
budgets in the spirit of Aggarwal et al. 2023, https://arxiv.org/abs/2305.11860, which stop sampling a
question once its vote is settled; here the budget is decided before sampling, from the prompt alone).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

PROBE_FILE = "difficulty_probe.json"
"""The probe's file name in the model directory."""
Rule = Literal["difficulty", "uncertainty", "marginal"]
"""How the budget follows p_hat: ``difficulty`` proportional to w = d = 1 - p_hat; ``uncertainty`` to
w = p_hat (1 - p_hat); ``marginal`` greedily to the largest expected gain of majority accuracy per sample
(``allocate_marginal``)."""


class ProbeMissingError(FileNotFoundError):
    """No difficulty probe where one was looked for."""


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: layer, standardisation, weights, bias, and metadata."""

    layer: int
    """Hidden-state layer (0 = embeddings, -1 = last; ``reasoner.engines.hidden``)."""
    mean: tuple[float, ...]
    """Per-feature mean mu of the training features."""
    std: tuple[float, ...]
    """Per-feature standard deviation sigma (features with sigma = 0 use 1)."""
    weights: tuple[float, ...]
    """w, over standardised features."""
    bias: float
    """b: the predicted pass rate of the mean feature vector."""
    meta: dict[str, Any] = field(default_factory=dict)
    """model, run, fit date, strategy, alpha, train/validation metrics, ..."""

    def __post_init__(self) -> None:
        sizes = {len(self.mean), len(self.std), len(self.weights)}
        if len(sizes) != 1:
            raise ValueError(f"probe: mean/std/weights lengths differ: {sorted(sizes)}")

    def predict(self, features: Any) -> list[float]:
        """Predicted pass rates in [0, 1] for ``features`` ``[N, hidden_size]`` (module docstring formula)."""
        import numpy as np

        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.weights):
            raise ValueError(f"probe expects features [N, {len(self.weights)}], got shape {list(x.shape)}")
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return [float(v) for v in np.clip(self.bias + z @ np.asarray(self.weights), 0.0, 1.0)]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearProbe:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            return cls(
                layer=int(data["layer"]),
                mean=tuple(data["mean"]),
                std=tuple(data["std"]),
                weights=tuple(data["weights"]),
                bias=float(data["bias"]),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a difficulty probe ({type(err).__name__}: {err})") from None


def probe_path(model: str, probe: str = "") -> Path:
    """Where the probe is: ``probe`` when given, else ``<model>/difficulty_probe.json`` (``model`` a local
    directory; a Hub id has none, so it needs ``probe``). Raises ``ProbeMissingError`` naming the path and the
    command that makes one."""
    if probe:
        path = Path(probe)
    elif Path(model).is_dir():
        path = Path(model) / PROBE_FILE
    else:
        raise ProbeMissingError(
            f"model {model!r} is not a local directory, so there is no default probe next to it: pass "
            "probe=PATH (fit one with `reasoner probe fit RUN_DIR --out PATH`)"
        )
    if not path.is_file():
        raise ProbeMissingError(
            f"no difficulty probe at {path}: fit one with `reasoner probe fit RUN_DIR` (an eval run of this "
            "model; saved next to the model) or pass probe=PATH"
        )
    return path


def majority_accuracy(p: float, k: int) -> float:
    """Accuracy of majority@k when each sample is right with probability p and the wrong ones agree (the
    pessimistic two-answer case; a tie goes to the first sample, right half the time):

        M(p, k) = sum_{j > k/2} C(k, j) p^j (1-p)^(k-j)  +  [k even] C(k, k/2) (p (1-p))^(k/2) / 2

    M(p, 1) = M(p, 2) = p: a second sample alone never changes a plurality."""
    if k < 1:
        return 0.0
    win = sum(math.comb(k, j) * p**j * (1 - p) ** (k - j) for j in range(k // 2 + 1, k + 1))
    tie = math.comb(k, k // 2) * (p * (1 - p)) ** (k // 2) / 2 if k % 2 == 0 else 0.0
    return win + tie


def allocate_marginal(pass_rates: Sequence[float], total: int, lo: int, hi: int) -> list[int]:
    """Samples per problem by greedy marginal gain: start every problem at ``lo``; while samples are left,
    give 1 or 2 more (2 because an even count alone gains nothing, ``majority_accuracy``) to the problem and
    step with the largest gain per sample, (M(p_i, k_i + s) - M(p_i, k_i)) / s, ties to the fewer samples so
    far, then the smaller step, then the lower index. Optimal for gains concave in steps of two. Same range rule as ``allocate``."""
    n = len(pass_rates)
    if lo < 0 or hi < lo:
        raise ValueError(f"need 0 <= min_k <= max_k, got min_k={lo}, max_k={hi}")
    if not n * lo <= total <= n * hi:
        raise ValueError(f"total {total} samples cannot be spread over {n} problems with {lo} <= k <= {hi}")
    ps = [min(1.0, max(0.0, p)) for p in pass_rates]
    ks, left = [lo] * n, total - n * lo
    while left > 0:
        options = [
            ((majority_accuracy(ps[i], ks[i] + s) - majority_accuracy(ps[i], ks[i])) / s, -ks[i], -s, -i)
            for i in range(n)
            for s in (1, 2)
            if s <= left and ks[i] + s <= hi
        ]
        _, _, neg_step, neg_i = max(options)
        ks[-neg_i] -= neg_step
        left += neg_step
    return ks


def allocate_by(pass_rates: Sequence[float], rule: Rule, total: int, lo: int, hi: int) -> list[int]:
    """Samples per problem from predicted pass rates with ``rule`` (``Rule``), summing to ``total``."""
    if rule == "marginal":
        return allocate_marginal(pass_rates, total, lo, hi)
    return allocate(allocation_weights(pass_rates, rule), total, lo, hi)


def allocation_weights(pass_rates: Sequence[float], rule: Rule) -> list[float]:
    """Per-problem weights from predicted pass rates (``difficulty`` or ``uncertainty``)."""
    ps = [min(1.0, max(0.0, p)) for p in pass_rates]
    if rule == "difficulty":
        return [1.0 - p for p in ps]
    if rule == "uncertainty":
        return [p * (1.0 - p) for p in ps]
    raise ValueError(f"rule must be difficulty or uncertainty for weights, got {rule!r}")


def allocate(weights: Sequence[float], total: int, lo: int, hi: int) -> list[int]:
    """Integer samples per problem, proportional to ``weights`` above a floor, capped, summing to ``total``.

        x_i = lo + R * w_i / sum_{j free} w_j      R = total - sum of the others' allocations
        (problems whose x_i exceeds hi get hi and leave the free set; repeat: water-filling)
        k_i = floor(x_i), then the total - sum floor(x) remaining samples go one each to the largest
              fractional parts (ties: lower index)

    All weights zero (or a free set with zero weight) spreads the rest evenly. Requires weights >= 0 and
    ``len(weights) * lo <= total <= len(weights) * hi``; then lo <= k_i <= hi and sum k_i == total exactly."""
    n = len(weights)
    if lo < 0 or hi < lo:
        raise ValueError(f"need 0 <= min_k <= max_k, got min_k={lo}, max_k={hi}")
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise ValueError(f"weights must be finite and >= 0, got {list(weights)}")
    if not n * lo <= total <= n * hi:
        raise ValueError(f"total {total} samples cannot be spread over {n} problems with {lo} <= k <= {hi}")
    x = [float(lo)] * n
    free = set(range(n))
    rest = float(total - n * lo)
    while free:
        mass = sum(weights[i] for i in free)
        share = {i: rest * (weights[i] / mass if mass > 0 else 1.0 / len(free)) for i in free}
        over = {i for i in free if lo + share[i] > hi}
        if not over:
            for i in free:
                x[i] = lo + share[i]
            break
        for i in over:
            x[i] = float(hi)
            rest -= hi - lo
        free -= over
    ks = [min(hi, math.floor(v + 1e-9)) for v in x]
    left = total - sum(ks)
    order = sorted(range(n), key=lambda i: (-(x[i] - ks[i]), i))
    for i in [i for i in order if ks[i] < hi][:left]:
        ks[i] += 1
    return ks
