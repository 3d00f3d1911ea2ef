"""Per-step training metrics: ``metrics.jsonl`` in the output directory and a compact console line.

Every ``on_log`` of the transformers Trainer (TRL's GRPOTrainer logs TRL's names: ``reward``,
``reward_std``, ``frac_reward_zero_std``, ``completions/mean_length``, ``completions/clipped_ratio``,
``rewards/<name>/mean``, ``entropy``, ``clip_ratio/*``, ``step_time``, ...; our trainer adds
``reasoner/kept_samples``, ``reasoner/kept_tokens`` (fraction) and ``reasoner/loss_tokens`` (count) in the loss,
``reasoner/frac_zero_std_groups``, ``reasoner/refill_rounds``, ``reasoner/generated_groups``, ``difficulty/pass_rate_hist/<bin>``, ``time/generate|score|sync|advantages|update``)
becomes one JSON line ``{"step": global_step, ...logs}``. ``report_to`` backends (wandb, tensorboard, ...)
receive the same dict through TRL. The console line shows a few headline numbers with rich.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

__all__ = ["CONSOLE_KEYS", "MetricsLogger", "StepTimer"]

CONSOLE_KEYS = (
    ("reward", "reward"),
    ("completions/mean_length", "len"),
    ("completions/clipped_ratio", "clipped"),
    ("reasoner/kept_samples", "kept"),
    ("reasoner/refill_rounds", "refill"),
    ("time/generate", "gen_s"),
    ("time/update", "upd_s"),
)
"""(metric, short label) shown on the console each logging step."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


class MetricsLogger(TrainerCallback):
    """Append every log record to ``path`` (JSON lines) and print a compact line to ``console``."""

    def __init__(self, path: str | Path, console: Any = None, quiet: bool = False):
        self.path = Path(path)
        self.console = console
        self.quiet = quiet

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        record = {"step": state.global_step, **{k: _jsonable(v) for k, v in logs.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if not self.quiet and "reward" in logs:
            self._print(record, state.max_steps)

    def _print(self, record: dict[str, Any], max_steps: int) -> None:
        if self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True)
        parts = [f"step {record['step']}/{max_steps}"]
        for key, label in CONSOLE_KEYS:
            value = record.get(key)
            if isinstance(value, int | float):
                parts.append(f"{label} {value:.3g}")
        self.console.print("  ".join(parts), highlight=False, markup=False)


class StepTimer(TrainerCallback):
    """Per optimizer step: ``time/step`` (wall), ``time/generate|score|sync|sync_check|advantages`` (inside the
    rollout), ``time/comm`` (collectives between learner processes), ``time/rollout`` (all of TRL's
    generate-and-score, ours included) and ``time/update`` (the rest: forward, backward, optimizer). At N
    processes each figure is the slowest rank's. Appended to TRL's metrics, so they are logged with TRL's."""

    KEYS = ("generate", "score", "sync", "sync_check", "advantages", "rollout", "comm")

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.t0 = self.comm0 = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.t0 = time.perf_counter()
        self.comm0 = self.trainer.comm.seconds
        self.trainer._timers = defaultdict(float)

    def on_step_end(self, args, state, control, **kwargs):
        comm = self.trainer.comm
        timers = dict(self.trainer._timers)
        timers["comm"] = comm.seconds - self.comm0
        timers["step"] = time.perf_counter() - self.t0
        if comm.distributed:
            parts = comm.all_gather(timers, "step timers", state.global_step)
            timers = {k: max(p.get(k, 0.0) for p in parts) for k in set().union(*parts)}
        metrics = self.trainer._metrics["train"]
        if getattr(self.trainer, "_is_mode", None) is not None:
            self.trainer._log_importance()  # the importance weights of the step's micro-batches
        for key in self.KEYS:
            metrics[f"time/{key}"].append(timers.get(key, 0.0))
        metrics["time/update"].append(timers["step"] - timers.get("rollout", 0.0))
        metrics["time/step"].append(timers["step"])
