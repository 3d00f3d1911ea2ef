"""Concise chain-of-thought data tools: build short-reasoning SFT sets from a model's own samples or a teacher.

- ``shortest``: shortest-correct distillation, sample N answers per problem and keep the shortest verified-
  correct one (``reasoner distill shortest-correct``).
- ``dap``: difficulty-aware prompting (arXiv 2505.19716), a teacher rates each problem's difficulty and
  rewrites its long trace to a token budget for that level; rewrites that miss the gold answer are rejected
  (``reasoner distill dap``).
- ``tokenskip``: TokenSkip (arXiv 2502.12067), correct traces with their least informative reasoning tokens
  dropped to kept ratios gamma, gamma cued in the prompt (``reasoner distill tokenskip``).
- ``data``: input rows, the resumable per-problem record log and the output dataset (TRL prompt-completion
  format, ``save_to_disk``) that ``recipes/sft_short.yaml`` trains on.

Layer L4 (beside ``train/``): uses engines, prompts and verify; benchmarks are passed in by the CLI.
"""

from reasoner.distill.dap import (
    DAPConfig,
    dap_rows,
    dap_stats,
    distill_dap,
    parse_difficulty,
    rewrite_outcome,
)
from reasoner.distill.data import DistillError, RecordLog, TraceRow, load_rows, sft_row, write_dataset
from reasoner.distill.shortest import (
    SELECTS,
    correct_index,
    distill_shortest,
    select_record,
    shortest_correct_index,
    shortest_rows,
    shortest_stats,
)
from reasoner.distill.tokenskip import (
    GAMMAS,
    TokenSkipConfig,
    distill_tokenskip,
    keep_indices,
    kept_count,
    reasoning_span,
    tokenskip_rows,
    tokenskip_stats,
)

__all__ = [
    "GAMMAS",
    "TokenSkipConfig",
    "distill_tokenskip",
    "keep_indices",
    "kept_count",
    "reasoning_span",
    "tokenskip_rows",
    "tokenskip_stats",
    "SELECTS",
    "DAPConfig",
    "DistillError",
    "RecordLog",
    "TraceRow",
    "correct_index",
    "dap_rows",
    "dap_stats",
    "distill_dap",
    "distill_shortest",
    "load_rows",
    "parse_difficulty",
    "rewrite_outcome",
    "select_record",
    "sft_row",
    "shortest_correct_index",
    "shortest_rows",
    "shortest_stats",
    "write_dataset",
]
