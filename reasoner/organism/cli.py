"""``reasoner organism data|build``: the overthinking organism's SFT traces (``recipes/sft_overthink.yaml``), or
the whole organism built from nothing with the same knobs (a variant of the ``overthinker`` alias)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from reasoner.clitools import CLIError

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Write multistep arithmetic problems (2-5 labelled operations, levels 1-4) with reasoning-model traces: <think>
steps, 0..max-rechecks redundant "Wait, let me double-check." re-checks that write the chain again, some of
which talk the trace out of the right answer (probability p-flip each), </think>, the answer in \\boxed{}. The
output directory is a saved `datasets` dataset in TRL's conversational prompt-completion format (plus statistics
columns and stats.json): what `reasoner train sft_overthink data.path=DIR` trains on. The `overthinker` model
alias builds itself the same way with the defaults below.
"""


_BUILD_DESCRIPTION = """\
Build an overthinking organism from nothing into --out, as the `overthinker` alias does with the defaults below:
the tokenizer and a random-weight `overthinker-init`, --traces SFT traces written with these knobs (see
`reasoner organism data --help`), `recipes/sft_overthink.yaml` on them (key=value arguments override it), the
trained model saved to --out. With the defaults it takes ~5 min on a 2-core AVX2 CPU (fp32).
"""


def _levels(text: str) -> list[int]:
    from reasoner.organism.problems import LEVELS, check_levels

    try:
        return list(check_levels(0, [int(x) for x in text.split(",") if x.strip()], LEVELS))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--levels must be distinct comma-separated values from {list(LEVELS)}, got {text!r}"
        ) from None


def add_parsers(subparsers: Any) -> None:
    """Register ``organism data`` on the ``reasoner`` subparsers."""
    from reasoner.argtypes import fraction, non_negative_int, positive_int
    from reasoner.organism.build import DATA_SEED, DEFAULT_TRACES
    from reasoner.organism.traces import TraceConfig

    defaults = TraceConfig()
    o = subparsers.add_parser("organism", help="the overthinking model organism (a CPU testbed): its SFT data",
                              description="The overthinking model organism; see each action's --help.")  # fmt: skip
    actions = o.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = actions.add_parser("data", help="write SFT traces with redundant re-checks", description=_DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    b = actions.add_parser("build", help="build an organism variant from nothing (tokenizer, data, SFT, save)",
                           description=_BUILD_DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    for p in (d, b):
        p.add_argument("--out", required=True, help="output directory" + (
            " (a saved datasets dataset + stats.json)" if p is d else " (the trained model)"))  # fmt: skip
        p.add_argument("--traces", type=positive_int("--traces"), default=DEFAULT_TRACES,
                       help="number of problems, one trace each. Default: %(default)s")  # fmt: skip
        p.add_argument(
            "--seed", type=int, default=DATA_SEED, help="problem and trace seed. Default: %(default)s"
        )
        p.add_argument("--levels", type=_levels, default="1,2,3,4",
                       help="difficulty levels (level L has L+1 operations), cycled. Default: %(default)s")  # fmt: skip
        p.add_argument("--max-rechecks", type=non_negative_int("--max-rechecks"), default=defaults.max_rechecks,
                       help="re-checks per trace are uniform on 0..max-rechecks. Default: %(default)s")  # fmt: skip
        p.add_argument("--p-flip", type=fraction("--p-flip"), default=defaults.p_flip,
                       help="per re-check probability of a false correction. Default: %(default)s")  # fmt: skip
        p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    b.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides of recipes/sft_overthink.yaml, e.g. trainer.seed=1")  # fmt: skip
    b.set_defaults(func=cmd_build)
    d.set_defaults(func=cmd_data)


def _out(args: argparse.Namespace) -> Path:

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise CLIError(f"--out: {str(out)!r} is not empty (pass --force to overwrite)")
    return out


def cmd_build(args: argparse.Namespace) -> int:
    from reasoner.organism.build import train_organism
    from reasoner.organism.traces import TraceConfig

    config = TraceConfig(args.max_rechecks, args.p_flip)
    out = train_organism(_out(args), traces=args.traces, seed=args.seed, levels=args.levels, config=config,
                         overrides=args.overrides, quiet=False)  # fmt: skip
    log.info("organism saved to %s", out)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from reasoner.organism.build import write_sft_data
    from reasoner.organism.traces import TraceConfig

    out = _out(args)
    config = TraceConfig(args.max_rechecks, args.p_flip)
    stats = write_sft_data(out, args.traces, args.seed, args.levels, config)
    from rich.console import Console

    Console().print_json(json.dumps(stats))
    return 0
