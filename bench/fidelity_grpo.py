"""The fidelity table's GRPO-baseline rows (``bench/fidelity.py``): D3S and difficulty pruning, each against
plain GRPO on the organism, trained from it and evaluated on the row's held-out problems.

Every run is ``recipes/grpo_overthinker.yaml`` (GRPO: accuracy reward, group normalisation, clip 0.2, no dynamic
sampling, 4 prompts x 8 samples, cap 256, lr 1e-4, 80 training problems, seed 0) for ``GRPO_STEPS`` steps; an arm
adds only its method's overrides. The GRPO run (label ``grpo``) is trained once and shared by both rows
(``Ctx.trained`` caches it). Both claims are "the same quality for less": the quality is GRPO's final training
reward ``R`` (mean per-step reward over its last ``FINAL_FRAC`` of steps), an arm reaches it at the first step
where the trailing ``WINDOW``-step mean of its per-step reward is >= ``R`` (``first_reach``), and the cost is
the cumulative count up to that step (``cost_to_reach``), compared with GRPO's own cost to first reach ``R``.
An arm that never reaches ``R`` within its steps misses.

Fairness (what the per-step reward is, per row):

- D3S (arXiv 2509.22115) selects what enters the loss (per group the ``sample_k`` rollouts of largest advantage
  variance, then the top ``rho`` of tokens by |A| * entropy), not what is generated: every step still samples
  the same prompts (the same deterministic stream as GRPO's) x 8 rollouts, and TRL's ``reward`` is the mean over
  all of them. So D3S's training reward is measured on exactly GRPO's prompt mix and is comparable as is; the
  cost is ``reasoner/loss_tokens`` (completion tokens in the loss mask). GRPO's loss tokens include those of
  zero-advantage groups (they enter DAPO's token normalisation); part of what D3S saves is those tokens, which is
  the paper's point. The row also checks held-out accuracy >= GRPO's - 2 at the same steps.
- Difficulty pruning swaps a prompt whose last group was all solved (or all failed) for a fresh one for its next
  epoch. Its per-step training reward is then measured on a harder mix (the always-solved prompts are gone), so
  comparing raw ``reward`` is biased against pruning: it would need to learn more just to score the same. The
  row therefore uses ``reasoner/stream_pass_rate`` (``reasoner.train.difficulty.stream_pass_rate``): the step's
  pass rate over the prompts GRPO's stream put in that step, a trained prompt counting its group's fraction
  solved and a pruned prompt its running pass rate (what it was pruned for: ~1 solved, ~0 failed; a cumulative
  mean, so slightly below the current policy's for a prompt that became easy: conservative for pruning). For
  GRPO it equals the batch's fraction solved, i.e. its ``reward`` (accuracy reward is 0/1). The cost is rollouts
  generated, ``reasoner/generated_groups`` x ``num_generations``. The issue's literal wording (raw training
  reward) is also measured and shown, with the bias: pruning's mean raw reward minus its mean stream pass rate.
  The row also shows each arm's mean fraction of zero-signal groups (TRL's ``frac_reward_zero_std``): what pruning
  is meant to cut, so a miss can be told apart from a pruner that did not remove the groups it targets.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from fidelity_common import Ctx, times

GRPO_RECIPE, GRPO_STEPS = "grpo_overthinker", 100
"""The GRPO recipe on the organism and its steps (both arms run the same steps)."""
NUM_GENERATIONS = 8
"""The recipe's ``trainer.num_generations``: rollouts per generated group."""
D3S = [
    "advantages.d3s.enabled=true",
    "advantages.d3s.sample_k=4",
    "advantages.d3s.rho_start=0.5",
    "advantages.d3s.rho_end=0.9",
    "advantages.d3s.schedule=cosine",
    "advantages.d3s.scope=batch",
]
"""D3S as ``recipes/d3s.yaml``: 4 of 8 rollouts per group, token fraction 0.5 -> 0.9 on a cosine schedule."""
PRUNE = [
    "difficulty.track=true",
    "difficulty.prune.enabled=true",
    "difficulty.prune.skip_epochs=1",
    "difficulty.prune.min_seen=1",
]
"""Difficulty pruning as ``recipes/prune.yaml``: a prompt whose last group was uniform skips its next epoch."""
WINDOW = 10
"""Steps in the trailing mean of the per-step reward (10% of ``GRPO_STEPS``)."""
FINAL_FRAC = 0.1
"""GRPO's final training reward: the mean over this fraction of its last steps."""


def series(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    """``key``'s value at each step of a run's history; an error when a step lacks it (no silent gaps)."""
    missing = [i for i, r in enumerate(history) if r.get(key) is None]
    if missing:
        raise KeyError(
            f"{key!r} missing at {len(missing)} of {len(history)} steps (first: step {missing[0]})"
        )
    return [float(r[key]) for r in history]


def final_value(values: Sequence[float], frac: float = FINAL_FRAC) -> float:
    """The mean of the last ``ceil(frac * len)`` values (at least one)."""
    if not values:
        raise ValueError("final_value of an empty series")
    k = max(1, math.ceil(frac * len(values)))
    return statistics.fmean(values[-k:])


def first_reach(values: Sequence[float], target: float, window: int = WINDOW) -> int | None:
    """The first step index i (0-based) at which the mean of ``values[i - window + 1 : i + 1]`` is >= ``target``
    (1e-9 slack for float sums); steps before a full window do not count. None: never reached."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    for i in range(window - 1, len(values)):
        if statistics.fmean(values[i - window + 1 : i + 1]) >= target - 1e-9:
            return i
    return None


def cost_to_reach(
    values: Sequence[float], costs: Sequence[float], target: float, window: int = WINDOW
) -> float | None:
    """The summed ``costs`` of steps 0..``first_reach`` (inclusive); None when ``target`` is never reached."""
    if len(values) != len(costs):
        raise ValueError(f"{len(values)} values but {len(costs)} costs")
    i = first_reach(values, target, window)
    return None if i is None else float(sum(costs[: i + 1]))


def reach(reward: Sequence[float], cost: Sequence[float], target: float) -> dict[str, Any]:
    """Where a run first reaches ``target`` (0-based step, None: never) and its cost up to there."""
    return {"step": first_reach(reward, target), "cost": cost_to_reach(reward, cost, target)}


def grpo(ctx: Ctx, extra: Sequence[str] = (), label: str = "grpo") -> dict[str, Any]:
    """A GRPO run (``GRPO_RECIPE``, ``GRPO_STEPS``) with ``extra`` overrides (cached by ``Ctx.trained``)."""
    return ctx.trained(label, GRPO_RECIPE, [f"trainer.max_steps={GRPO_STEPS}", *extra])


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    h = run["history"]
    return {"acc": run["eval"]["acc"], "length": run["eval"]["length"], "steps": run["steps"],
            "train_s": run["train_s"], "truncated": statistics.fmean(series(h, "completions/clipped_ratio")),
            "train_length": statistics.fmean(series(h, "completions/mean_length"))}  # fmt: skip


def _token_arm(run: dict[str, Any], target: float) -> dict[str, Any]:
    """A run's loss tokens to first reach ``target`` on its training reward, and its own final reward."""
    reward, cost = series(run["history"], "reward"), series(run["history"], "reasoner/loss_tokens")
    return (
        _summary(run)
        | reach(reward, cost, target)
        | {
            "final_reward": final_value(reward),
            "loss_tokens": sum(cost),
        }
    )


def row_d3s(ctx: Ctx) -> dict[str, Any]:
    """D3S vs GRPO, same steps: loss tokens to first reach GRPO's final training reward (see module doc), and
    held-out accuracy."""
    base, arm = grpo(ctx), grpo(ctx, D3S, label="d3s")
    target = final_value(series(base["history"], "reward"))
    return {"target_reward": target, "window": WINDOW, "grpo": _token_arm(base, target),
            "d3s": _token_arm(arm, target)}  # fmt: skip


def _rollout_arm(run: dict[str, Any], target: float, raw_target: float) -> dict[str, Any]:
    """A run's rollouts to first reach ``target`` on its stream pass rate and ``raw_target`` on its raw reward,
    and the raw reward's bias against the stream pass rate (mean over steps)."""
    h = run["history"]
    cost = [g * NUM_GENERATIONS for g in series(h, "reasoner/generated_groups")]
    stream, raw = series(h, "reasoner/stream_pass_rate"), series(h, "reward")
    return (
        _summary(run)
        | reach(stream, cost, target)
        | {
            "raw": reach(raw, cost, raw_target),
            "rollouts": sum(cost),
            "bias": statistics.fmean(raw) - statistics.fmean(stream),
            "substituted": sum(series(h, "reasoner/substituted")),
            "zero_std": statistics.fmean(series(h, "frac_reward_zero_std")),
        }
    )


def row_prune(ctx: Ctx) -> dict[str, Any]:
    """Difficulty pruning vs GRPO: rollouts generated to first reach GRPO's final training reward, measured on
    GRPO's prompt stream (``reasoner/stream_pass_rate``) and, as the issue words it, on the raw training reward
    (module doc)."""
    base, arm = grpo(ctx), grpo(ctx, PRUNE, label="prune")
    target = final_value(series(base["history"], "reasoner/stream_pass_rate"))
    raw_target = final_value(series(base["history"], "reward"))
    return {"target_reward": target, "raw_target_reward": raw_target, "window": WINDOW,
            "grpo": _rollout_arm(base, target, raw_target),
            "prune": _rollout_arm(arm, target, raw_target)}  # fmt: skip


def _ratio(arm: float | None, base: float | None) -> str:
    return "never reached (missed)" if arm is None else times(arm, base or 0.0)


def _step(r: dict[str, Any]) -> str:
    return "never" if r["step"] is None else f"step {r['step'] + 1}"


def show_d3s(m: dict[str, Any]) -> str:
    g, d = m["grpo"], m["d3s"]
    return (f"R={m['target_reward']:.3f} (GRPO's last 10%); loss tokens to R: D3S {_ratio(d['cost'], g['cost'])} "
            f"of GRPO's (D3S {_step(d)}, GRPO {_step(g)}, {m['window']}-step mean); held-out acc D3S "
            f"{d['acc']:.1f}% vs GRPO {g['acc']:.1f}% ({d['acc'] - g['acc']:+.1f}); final reward "
            f"{d['final_reward']:.3f}; truncated {100 * g['truncated']:.1f}%")  # fmt: skip


def show_prune(m: dict[str, Any]) -> str:
    g, p = m["grpo"], m["prune"]
    return (f"R={m['target_reward']:.3f} on GRPO's prompt stream: rollouts to R {_ratio(p['cost'], g['cost'])} "
            f"(prune {_step(p)}, GRPO {_step(g)}); raw training reward (R={m['raw_target_reward']:.3f}): "
            f"{_ratio(p['raw']['cost'], g['raw']['cost'])}, bias {p['bias']:+.3f}; {p['substituted']:.0f} "
            f"prompts swapped; zero-signal groups {p['zero_std']:.2f} vs {g['zero_std']:.2f}; held-out acc "
            f"{p['acc']:.1f}% vs {g['acc']:.1f}%")  # fmt: skip


GRPO_ROWS: dict[str, tuple[Callable[[Ctx], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "D3S": (row_d3s, show_d3s),
    "difficulty pruning": (row_prune, show_prune),
}
"""GRPO-baseline rows: name -> (measure on a Ctx, one-line summary of the measured numbers)."""
