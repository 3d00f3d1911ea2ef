"""The composition root's wiring: upper-layer pieces put into the registries of the layers below.

DESIGN section 1: imports point downward only, so a registry in a lower layer cannot name an upper layer's
builder; the composition root fills it instead. ``wire()`` does that, in this one place:

- ``reasoner.models.MODELS``: the overthinking organism's aliases ``overthinker`` and ``overthinker-init``,
  whose builders (``reasoner.organism.build``) train a model with ``reasoner.train``.

Entry points call ``wire()`` before resolving names: ``reasoner.cli.main`` (every subcommand, and through it
the learner processes of ``--nproc``), ``reasoner.train.cli.train_recipe``, the bench scripts that take a model
alias, and ``tests/conftest.py``. It is idempotent and cheap (no model is built until an alias is resolved).
Without it, resolving a wired alias is an ``UnknownModelError`` that says to call it. Pieces that are
parameters rather than registry entries (Ray pools, reward functions, benchmarks) are passed in by the
composition root where it calls the layer below (``reasoner/train/cli.py``, ``evals/cli.py``).
"""

from __future__ import annotations


def wire() -> None:
    """Register the upper layers' builders in the lower layers' registries (module docstring)."""
    from reasoner.models import MODELS
    from reasoner.organism.build import build_init, build_overthinker

    MODELS["overthinker"] = build_overthinker
    MODELS["overthinker-init"] = build_init
