"""``reasoner merge``: DLER update-selective merging (or linear interpolation) of a base and a tuned model.

Registered on the ``reasoner`` parser by ``add_parsers``; the algorithm lives in ``reasoner.train.merge``.
Bad input (``--keep`` outside [0, 1], a missing model directory, models whose tensors differ) prints one line
naming the flag or tensor and exits 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reasoner.argtypes import fraction
from reasoner.clitools import CLIError
from reasoner.types import MERGE_SCOPES

DESCRIPTION = """\
Merge a tuned model into its base and write a Hugging Face directory that both engines (hf, vllm) load.

Selective (--keep, DLER arXiv 2510.15110): theta = base + m * (tuned - base), where m keeps the --keep fraction
of update entries with the largest |tuned - base| (ranked within each tensor, or over the whole model with
--scope global; ties: lower index first). --keep 0 gives the base, --keep 1 the tuned model. Use it to keep the
base's accuracy and most of an RL run's concision when RL data is scarce.
Linear (--alpha): theta = base + alpha * (tuned - base), the interpolation baseline.

The output has the base's config, generation config and tokenizer, in --dtype (auto: the wider of the two
models' dtypes, so --keep 1 reproduces the tuned weights exactly). Both models load in float32 (memory: two
float32 copies).

examples:
  reasoner merge --base smollm2-135m --tuned runs/dler --keep 0.3 --out runs/dler-merged-0.3
  reasoner merge --base deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --tuned runs/dler-1.5b --keep 0.1 \\
      --scope global --out runs/dler-1.5b-merged
  reasoner merge --base smollm2-135m --tuned runs/dler --alpha 0.5 --out runs/dler-lerp-0.5"""


def add_parsers(subparsers: Any) -> None:
    """Register ``merge`` on the ``reasoner`` subparsers."""

    p = subparsers.add_parser(
        "merge",
        help="DLER update-selective merge (top-|delta| fraction of tuned - base) or linear interpolation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--base", required=True, metavar="MODEL",
                   help="the base model: Hub id, local HF directory or alias (smollm2-135m, tiny-random-qwen2)")  # fmt: skip
    p.add_argument("--tuned", required=True, metavar="MODEL",
                   help="the tuned model (e.g. a `reasoner train` output_dir); same architecture as --base")  # fmt: skip
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--keep", type=fraction("--keep"), metavar="FRACTION",
                     help="selective merge: fraction in [0, 1] of update entries to apply, largest |delta| first")  # fmt: skip
    how.add_argument("--alpha", type=fraction("--alpha"), metavar="ALPHA",
                     help="linear interpolation weight in [0, 1]: base + alpha * (tuned - base)")  # fmt: skip
    p.add_argument("--scope", choices=MERGE_SCOPES, default="tensor",
                   help="--keep ranks |delta| within each tensor (tensor) or over all parameters (global). "
                   "Default: %(default)s")  # fmt: skip
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="dtype of the saved weights; auto = the wider of the two models'. Default: auto")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (config.json, model.safetensors, tokenizer); must be empty or new")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it is not empty")
    p.set_defaults(func=cmd_merge)


def cmd_merge(args: argparse.Namespace) -> int:
    """Handler of ``reasoner merge``."""
    from rich.console import Console

    from reasoner.train.merge import MergeError, merge_models

    if args.alpha is not None and args.scope != "tensor":
        raise CLIError("--scope applies to --keep only, not to --alpha")
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.overwrite)):
        raise CLIError(f"--out {str(out)!r} exists and is not an empty directory (use --overwrite)")
    try:
        report = merge_models(args.base, args.tuned, out, keep=args.keep, alpha=args.alpha, scope=args.scope,
                              dtype=args.dtype)  # fmt: skip
    except MergeError as err:
        raise CLIError(str(err)) from None
    how = f"keep {args.keep:g} ({args.scope})" if args.keep is not None else f"alpha {args.alpha:g}"
    Console().print(
        f"merged {args.tuned} into {args.base} with {how}: applied {report.kept:,} of {report.total:,} entries "
        f"({report.changed:,} changed by tuning) in {report.tensors} tensors, {report.update_energy:.1%} of the "
        f"update's squared norm -> {out}",
        markup=False,
        highlight=False,
    )
    return 0
