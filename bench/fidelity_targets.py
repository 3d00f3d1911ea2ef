"""The fidelity table's targets (issue [13]): each row's paper claim as a pure function of its measured numbers.

Accuracies are percentages (0-100), token and wall figures are totals over the row's problems. Each function
returns ``MET`` or ``MISSED`` (``REPORTED`` for rows whose target is to report what is seen); ``bench/fidelity.py``
measures the numbers, ``tests/unit/test_fidelity.py`` checks these functions on hand-made tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

MET, MISSED, REPORTED = "met", "missed", "reported"

Measured = Mapping[str, object]


def _verdict(ok: bool) -> str:
    return MET if ok else MISSED


def _f(m: Measured, key: str) -> float:
    value = m[key]
    if not isinstance(value, int | float):
        raise TypeError(f"measured {key!r} must be a number, got {value!r}")
    return float(value)


def short_m(m: Measured) -> str:
    """short-1@8 accuracy >= majority@8 - 2 at <= 0.6x its thinking tokens; short-3@8 accuracy >= majority@8 at
    <= 0.67x its wall time; shortest-of-8 accuracy > longest-of-8 (arXiv 2505.17813)."""
    maj = _f(m, "maj_acc")
    s1 = _f(m, "s1_acc") >= maj - 2 and _f(m, "s1_thinking") <= 0.6 * _f(m, "maj_thinking")
    s3 = _f(m, "s3_acc") >= maj and _f(m, "s3_wall") <= 0.67 * _f(m, "maj_wall")
    return _verdict(s1 and s3 and _f(m, "shortest_acc") > _f(m, "longest_acc"))


def budget_forcing(m: Measured) -> str:
    """Accuracy against the thinking budget: reported as measured (no pass/fail: on an overthinking model less
    may be more)."""
    return REPORTED


def deer(m: Measured) -> str:
    """DEER early exit: <= 0.7x the full chains' generated tokens at accuracy >= full - 2 (arXiv 2504.15895)."""
    return _verdict(
        _f(m, "deer_tokens") <= 0.7 * _f(m, "full_tokens") and _f(m, "deer_acc") >= _f(m, "full_acc") - 2
    )


def deepconf(m: Measured) -> str:
    """DeepConf online: <= 0.7x majority@k's generated tokens at accuracy >= majority@k - 2 (arXiv 2508.15260)."""
    return _verdict(
        _f(m, "dc_tokens") <= 0.7 * _f(m, "maj_tokens") and _f(m, "dc_acc") >= _f(m, "maj_acc") - 2
    )


def at_or_above(curve: Sequence[tuple[float, float]], budget: float, value: float) -> bool:
    """Whether the step curve ``curve`` ((tokens, pass) points) reaches ``value`` within ``budget`` tokens: the
    best pass among its points that spend at most ``budget`` (no such point: False)."""
    within = [p for t, p in curve if t <= budget]
    return bool(within) and max(within) >= value


def matched_budgets(fractured: Sequence[Sequence[float]], full: Sequence[Sequence[float]]) -> int:
    """How many of the full-chain curve's (tokens, pass@k) points the fractured curve matches or beats at the same
    token budget (``at_or_above``)."""
    frac = [(float(t), float(p)) for t, p in fractured]
    return sum(at_or_above(frac, float(t), float(p)) for t, p in full)


def fractured(m: Measured) -> str:
    """Fractured sampling: pass@k vs total tokens at or above parallel full chains at >= 3 matched budgets, and
    answers forced at 50% of the thinking within 5 points of the full chains' (>= full - 5; arXiv 2505.12992)."""
    curves = m["frac_curve"], m["full_curve"]
    if not all(isinstance(c, Sequence) for c in curves):
        raise TypeError("measured frac_curve and full_curve must be lists of (tokens, pass) points")
    matched = matched_budgets(*curves)  # type: ignore[arg-type]  # checked just above; points are pairs
    return _verdict(matched >= 3 and _f(m, "half_acc") >= _f(m, "chain_acc") - 5)


def rises(values: Sequence[float]) -> bool:
    """Non-decreasing, and the last above the first (a flat series does not rise)."""
    return (
        len(values) >= 2
        and all(b >= a for a, b in zip(values[:-1], values[1:], strict=True))
        and values[-1] > values[0]
    )


def entropy_branch(m: Measured) -> str:
    """Entropy-gated branching with cap M: <= 0.6x the tokens of M parallel samples at pass@M >= theirs, and
    branches per problem rising with level (arXiv 2510.11170)."""
    per_level = m["branches_by_level"]
    if not isinstance(per_level, Mapping):
        raise TypeError("measured branches_by_level must map level -> mean branches")
    ordered = [float(per_level[k]) for k in sorted(per_level, key=int)]
    cheap = _f(m, "eb_tokens") <= 0.6 * _f(m, "par_tokens") and _f(m, "eb_pass") >= _f(m, "par_pass")
    return _verdict(cheap and rises(ordered))


def _eval(m: Measured, key: str) -> Mapping[str, object]:
    value = m[key]
    if not isinstance(value, Mapping):
        raise TypeError(f"measured {key!r} must be an evaluation (acc, length, ...), got {value!r}")
    return value


def dler(m: Measured) -> str:
    """DLER: mean response length <= 0.5x the organism's at accuracy >= before - 2 (arXiv 2510.15110)."""
    before, after = _eval(m, "before"), _eval(m, "after")
    return _verdict(
        _f(after, "length") <= 0.5 * _f(before, "length") and _f(after, "acc") >= _f(before, "acc") - 2
    )


TIE = 2.0
"""Accuracy points within which two arms count as tied (about one standard error at 100 problems x 4 samples
and 80% accuracy: 100 * sqrt(0.8 * 0.2 / 400) = 2)."""


def ablations(m: Measured) -> str:
    """DLER's ablations: full DLER's held-out accuracy best or tied (within ``TIE``) against each ablation."""
    full = _f(_eval(m, "DLER"), "acc")
    others = [_f(_eval(m, k), "acc") for k in m if k != "DLER"]
    return _verdict(bool(others) and all(full >= o - TIE for o in others))


def da_dler(m: Measured) -> str:
    """Difficulty-Aware DLER vs DLER: every level but the hardest shorter (mean response tokens) than under DLER,
    and the hardest level's accuracy >= DLER's (arXiv 2510.15110)."""
    dl, da = _eval(m, "dler")["by_level"], _eval(m, "da")["by_level"]
    if not isinstance(dl, Mapping) or not isinstance(da, Mapping):
        raise TypeError("measured by_level must map level -> {acc, length}")
    levels = sorted(dl, key=int)
    easy, hardest = levels[:-1], levels[-1]
    shorter = all(_f(da[k], "length") < _f(dl[k], "length") for k in easy)
    return _verdict(bool(easy) and shorter and _f(da[hardest], "acc") >= _f(dl[hardest], "acc"))


def merge(m: Measured) -> str:
    """Update-selective merge: keeps >= 60% of DLER's length cut ((base - merged) / (base - DLER)) at accuracy >=
    the base's (arXiv 2510.15110)."""
    base, dl, merged = _eval(m, "base"), _eval(m, "dler"), _eval(m, "merged")
    cut = _f(base, "length") - _f(dl, "length")
    kept = (_f(base, "length") - _f(merged, "length")) / cut if cut > 0 else 0.0
    return _verdict(kept >= 0.6 and _f(merged, "acc") >= _f(base, "acc"))


def shortest_sft(m: Measured) -> str:
    """Shortest-correct SFT vs random- and longest-correct SFT on the same problems: held-out accuracy shortest >=
    random >= longest, and mean response tokens in the same order, shortest <= random <= longest (arXiv
    2502.20122)."""
    s, r, lo = _eval(m, "shortest"), _eval(m, "random"), _eval(m, "longest")
    acc = _f(s, "acc") >= _f(r, "acc") >= _f(lo, "acc")
    return _verdict(acc and _f(s, "length") <= _f(r, "length") <= _f(lo, "length"))


def dap(m: Measured) -> str:
    """DAP distillation vs SFT on the original traces: the DAP student's mean response tokens rise with the
    level (``rises``), and are <= 0.5x the original student's at accuracy >= original - 2 (arXiv 2505.19716)."""
    orig, new = _eval(m, "original"), _eval(m, "dap")
    per_level = new["by_level"]
    if not isinstance(per_level, Mapping):
        raise TypeError("measured dap.by_level must map level -> {acc, length}")
    ordered = [_f(per_level[k], "length") for k in sorted(per_level, key=int)]
    short = _f(new, "length") <= 0.5 * _f(orig, "length") and _f(new, "acc") >= _f(orig, "acc") - 2
    return _verdict(short and rises(ordered))


def _reached(m: Measured, key: str) -> float | None:
    """An arm's cost to reach the target reward (None: never reached)."""
    arm = m[key]
    if not isinstance(arm, Mapping):
        raise TypeError(f"measured {key!r} must be an arm ({{cost, acc, ...}}), got {arm!r}")
    return None if arm["cost"] is None else _f(arm, "cost")


def d3s(m: Measured) -> str:
    """D3S vs GRPO, same steps: <= 0.7x GRPO's loss tokens to first reach GRPO's final training reward (an arm
    that never reaches it misses), and held-out accuracy >= GRPO's - 2 (arXiv 2509.22115)."""
    base, arm = _reached(m, "grpo"), _reached(m, "d3s")
    acc_ok = _f(_eval(m, "d3s"), "acc") >= _f(_eval(m, "grpo"), "acc") - 2
    return _verdict(base is not None and arm is not None and arm <= 0.7 * base and acc_ok)


def prune(m: Measured) -> str:
    """Difficulty pruning vs GRPO: <= 0.8x the rollouts GRPO generated to first reach its final training reward,
    the reward taken over GRPO's prompt stream (``bench/fidelity_grpo.py``; an arm that never reaches it
    misses)."""
    base, arm = _reached(m, "grpo"), _reached(m, "prune")
    return _verdict(base is not None and arm is not None and arm <= 0.8 * base)


TARGETS: dict[str, tuple[str, Callable[[Measured], str]]] = {
    "short-m@k": ("s1@8 >= maj-2 at <=0.6x think; s3@8 >= maj at <=0.67x wall; shortest > longest", short_m),
    "budget forcing": ("report accuracy vs thinking budget", budget_forcing),
    "DEER early exit": ("<=0.7x tokens at acc >= full-2", deer),
    "DeepConf online": ("DeepConf-low <=0.7x tokens at acc >= maj@8-2", deepconf),
    "fractured": (">= full chains at >=3 matched budgets; 50%-depth acc >= full-5", fractured),
    "entropy-branch": ("<=0.6x tokens at pass@M >= parallel; branches rise with level", entropy_branch),
    "DLER": ("length <= 0.5x at acc >= before-2", dler),
    "DLER ablations": ("full DLER best or tied (2 pts) on acc; report acc, length, entropy", ablations),
    "Difficulty-Aware DLER": ("easy levels shorter than DLER; hardest level acc >= DLER", da_dler),
    "update-selective merge": ("keep=0.3 retains >= 60% of DLER's cut at acc >= base", merge),
    "shortest-correct SFT": ("acc shortest >= random >= longest; lengths in that order", shortest_sft),
    "DAP distillation": ("length rises with level; <= 0.5x tokens at acc >= original-2", dap),
    "D3S": ("<= 0.7x loss tokens to GRPO's final reward; acc >= GRPO-2", d3s),
    "difficulty pruning": ("<= 0.8x rollouts to GRPO's final reward", prune),
}
"""Row -> (target text, verdict function)."""
