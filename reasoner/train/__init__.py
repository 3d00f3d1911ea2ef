"""RL training on TRL's GRPOTrainer (DESIGN section 6). Nothing heavy is imported here.

- ``rollout``: rollout sources (``generate`` + ``sync_weights``): an in-process engine now, a Ray pool later.
- ``batch``: one training batch: generate, score, DAPO dynamic sampling with refill.
- ``postprocess``: our advantage normalisation and D3S selection as a loss mask (math in ``reasoner.advantages``).
- ``difficulty``: per-prompt pass rates, pruning, Difficulty-Aware DLER caps (checkpointed).
- ``hooks``: the GRPOTrainer hooks that tie these together; ``trainer``: the only trl/peft importer.
- ``metrics``: ``metrics.jsonl`` + console; ``cli``: ``reasoner train RECIPE [key=value ...]``.
- ``collective``: the learner processes' rank, world and object all-gathers (global-batch semantics at N).
- ``launch``: ``--nproc N`` local learner processes (torch's elastic launcher, as ``torchrun``).
- ``sync``: the full (merged, gathered) weights sent to engines and the engine-vs-learner logprob check.
- ``loss``: TRL's clipped surrogate as a pure function, pinning what TRL does with our advantages and mask.
"""
