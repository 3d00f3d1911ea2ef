"""Pipelined rollouts (``rollout.async_steps``, ``reasoner.train.pipeline``) through the real trainer.

With the scripted engine of ``test_train_distributed`` (its completions do not depend on the weights), a
pipelined run without the off-policy correction must train exactly like the synchronous one: the same prompts
(pruning's substitutions included), seeds, completions, refills, tracker and weights; only the version each
group was sampled with differs. With the correction on it must still mean the same at 2 learner processes as
at 1, and a run SIGKILLed between steps and resumed must train the same batches as one that never stopped
(the in-flight batch is recorded in the checkpoint). On the real tiny model the engine's logprobs are the
learner's, so the importance weights measure one update's drift, and two steps ahead every rollout carries
the logprobs of the weights of the version it is labelled with."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from test_train_distributed import train_worker

ASYNC = ["rollout.async_steps=1"]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _max_gap(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _train_pair(recipe: str, out: str, depth: int) -> tuple[dict, dict]:
    sync = train_worker(recipe, 16, f"{out}/sync", {}, ["trainer.max_steps=3"])
    pipelined = train_worker(recipe, 16, f"{out}/async", {}, ["trainer.max_steps=3", f"rollout.async_steps={depth}",
                                                              "rollout.importance_sampling=off"])  # fmt: skip
    return sync, pipelined


@pytest.mark.parametrize(
    ("recipe", "depth"), [("dler", 1), ("dler_da", 1), ("d3s", 1), ("prune", 1), ("dler_da", 2)]
)
def test_pipelined_rollouts_without_correction_train_like_synchronous_ones(recipe, depth, tmp_path):
    """At depth 2, step 3's batch is generated from the initial weights while two syncs queue behind it (each
    loads a snapshot of the weights it was given)."""
    from reasoner.train.launch import launch_local

    [(sync, pipelined)] = launch_local(_train_pair, (recipe, str(tmp_path), depth), nproc=1)
    assert sync["moved"] > 1e-3, "the weights did not move: the comparison would be vacuous"
    assert len(sync["steps"]) == len(pipelined["steps"]) == 3
    for a, b in zip(sync["steps"], pipelined["steps"], strict=True):
        assert a == b
    assert _max_gap(sync["weights"], pipelined["weights"]) <= 1e-6
    lags = [r.get("async/staleness_max") for r in _metrics(tmp_path / "async") if "reward" in r]
    assert lags == ([0.0, 1.0, 1.0] if depth == 1 else [0.0, 1.0, 2.0]), (
        "rollouts as old as the pipeline is deep"
    )
    assert all(r["async/staleness_max"] == 0.0 for r in _metrics(tmp_path / "sync") if "reward" in r)
    assert not any(k.startswith("sampling/") for r in _metrics(tmp_path / "sync") for k in r)


def test_two_processes_with_pipelined_corrected_rollouts_train_like_one(tmp_path):
    from reasoner.train.launch import launch_local

    extra = [*ASYNC, "trainer.max_steps=3"]
    [one] = launch_local(train_worker, ("dler_da", 16, str(tmp_path / "one"), {}, extra), nproc=1)
    two = launch_local(train_worker, ("dler_da", 8, str(tmp_path / "two"), {}, extra), nproc=2)
    assert one["moved"] > 1e-4
    for rank in two:
        for a, b in zip(one["steps"], rank["steps"], strict=True):
            for key in ("problems", "completions", "rewards", "keep", "loss_mask", "stats", "tracker"):
                assert a[key] == b[key], key
    assert _max_gap(one["weights"], two[0]["weights"]) <= 1e-5
    steps = [r for r in _metrics(tmp_path / "one") if "reward" in r]
    assert all("sampling/importance_sampling_ratio/mean" in r for r in steps)
    assert steps[-1]["async/staleness_hist/1"] == 4.0  # all 4 groups of step 3 are one version old


def test_a_run_killed_between_steps_resumes_its_in_flight_batch(tmp_path):
    """dler_da, 2 processes, one-step-off: 3 steps straight vs a run SIGKILLed right after checkpoint-1 was
    saved (the batch of step 2 was in flight), resumed. Same batches and weights; nothing generated twice."""
    from reasoner.train.collective import RankFailedError
    from reasoner.train.launch import launch_local

    extra = [*ASYNC, "trainer.max_steps=3", "trainer.save_strategy=steps", "trainer.save_steps=1"]
    straight = launch_local(train_worker, ("dler_da", 8, str(tmp_path / "a"), {}, extra), nproc=2)
    with pytest.raises(RankFailedError, match="SIGKILL"):
        launch_local(train_worker, ("dler_da", 8, str(tmp_path / "b"), {}, extra, False, None, 1), nproc=2)
    checkpoint = tmp_path / "b" / "checkpoint-1"
    for rank in (0, 1):
        [entry] = json.loads((checkpoint / f"reasoner_inflight.{rank}.json").read_text())
        assert entry["step"] == 1 and set(entry["versions"]) == {0} and len(entry["groups"]) == 2
    assert not (tmp_path / "b" / "checkpoint-2").exists()
    resumed = launch_local(train_worker, ("dler_da", 8, str(tmp_path / "b"), {}, extra, True), nproc=2)
    for a, b in zip(straight, resumed, strict=True):
        assert len(b["steps"]) == 2, "the resumed run should train steps 2 and 3"
        assert a["steps"][1:] == b["steps"]
        assert _max_gap(a["weights"], b["weights"]) <= 1e-6


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_pipelined_rollouts_on_the_real_model_log_one_update_of_drift(tmp_path, tiny_model, temperature):
    """The hf engine's (processed) logprobs are the learner's at the sampling temperature: at step 1 the
    importance weights are 1 (same weights); from step 2 on the rollouts are one update old, so the learner's
    logprobs have moved and the weights show it."""
    from test_train_trainer import AlignedReward, hf_rollout, problems, tiny_recipe

    from reasoner.train.trainer import build_trainer

    recipe = tiny_recipe(tmp_path, *ASYNC, "trainer.max_steps=3", "trainer.learning_rate=0.05",
                         f"trainer.temperature={temperature}")  # fmt: skip
    trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                            rollout=hf_rollout(tiny_model, "processed"), quiet=True)  # fmt: skip
    trainer.train()
    steps = [r for r in _metrics(tmp_path) if "reward" in r]
    assert [r["async/staleness_max"] for r in steps] == [0.0, 1.0, 1.0]
    assert steps[0]["sampling/sampling_logp_difference/max"] < 1e-4
    assert steps[0]["sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0, abs=1e-4)
    assert steps[0]["sync/checked_on_policy"] == 1.0 and steps[0]["sync/logprob_gap_mean"] < 1e-4
    for r in steps[1:]:
        assert r["sampling/sampling_logp_difference/mean"] > 1e-4
        assert r["sampling/importance_sampling_ratio/max"] <= 3.0
        assert r["sync/checked_on_policy"] == 0.0  # stale rows: their gap (logged) adds one update's drift
    assert trainer.rollout.version == 3 and not trainer._ahead
    assert torch.equal(
        trainer.rollout.source.engine.model.model.embed_tokens.weight, trainer.model.model.embed_tokens.weight
    ), "after train() the engine holds the final weights"


def test_two_steps_ahead_every_rollout_is_sampled_by_the_weights_of_its_version(
    tmp_path, tiny_model, monkeypatch
):
    """``async_steps=2`` on the real model: weight syncs queued behind generations (each made to take 0.3 s)
    run from snapshots taken when the update finished. Every completion, re-scored by the learner's weights of
    the version it is labelled with (kept per step by a callback), has the engine's logprobs; the next
    version's weights do not."""
    from test_train_trainer import AlignedReward, problems, tiny_recipe
    from transformers import AutoModelForCausalLM, TrainerCallback

    from reasoner.engines.hf import HFEngine
    from reasoner.train.pipeline import OrderedRollout
    from reasoner.train.rollout import EngineRollout
    from reasoner.train.sync import token_logprobs
    from reasoner.train.trainer import build_trainer
    from reasoner.types import SampleSpec

    class Recording(EngineRollout):
        def __init__(self, engine):
            super().__init__(engine)
            self.records: list = []  # (version, prompt ids, completion) of every sample

        def generate(self, prompts, spec, *, entropies=False):
            time.sleep(0.3)
            out = super().generate(prompts, spec, entropies=entropies)
            self.records += [(self.version, p, c) for p, row in zip(prompts, out, strict=True) for c in row]
            return out

    versions: dict[int, dict] = {}

    class KeepWeights(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            versions[0] = {k: v.detach().clone() for k, v in model.state_dict().items()}

        def on_step_end(self, args, state, control, model=None, **kw):
            versions[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    busy_at_sync: list[bool] = []
    sync = OrderedRollout.sync_weights

    def spy(self, named_tensors, version):
        busy_at_sync.append(self.busy())
        sync(self, named_tensors, version)

    monkeypatch.setattr(OrderedRollout, "sync_weights", spy)
    recipe = tiny_recipe(tmp_path, "rollout.async_steps=2", "trainer.max_steps=4", "trainer.learning_rate=0.05",
                         "trainer.temperature=0.7")  # fmt: skip
    rollout = Recording(HFEngine(tiny_model, dtype="float32", logprobs_mode="processed"))
    trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                            rollout=rollout, callbacks=[KeepWeights()], quiet=True)  # fmt: skip
    trainer.train()
    steps = [r for r in _metrics(tmp_path) if "reward" in r]
    assert [r["async/staleness_max"] for r in steps] == [0.0, 1.0, 2.0, 2.0]
    assert sorted({v for v, _, _ in rollout.records}) == [0, 1]  # steps 0-2 from v0 (two ahead), 3 from v1
    assert any(busy_at_sync), "no sync was queued behind a generation: the snapshot path did not run"
    scorer = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    spec = SampleSpec(temperature=0.7, logprobs=True)
    gaps: dict[str, list[float]] = {"own": [], "next": []}
    for version, prompt, c in rollout.records:
        ids = torch.tensor([list(c.token_ids)])
        for key, v in (("own", version), ("next", version + 1)):
            scorer.load_state_dict(versions[v])
            mine = token_logprobs(scorer, torch.tensor([list(prompt)]), torch.ones(1, len(prompt), dtype=torch.long),
                                  ids, torch.ones_like(ids), spec)[0]  # fmt: skip
            gaps[key].append((mine - torch.tensor(c.logprobs)).abs().max().item())
    assert max(gaps["own"]) < 1e-4, gaps["own"]
    assert min(gaps["next"]) > 1e-3, "the test needs updates large enough to tell versions apart"


def test_an_engine_reporting_raw_logprobs_under_the_correction_fails_the_sync_check(tmp_path, tiny_model):
    """At T=0.7 the raw distribution is not the one sampled from: the sync check, scoring the learner's tokens
    as a processed-mode engine would, sees the gap on fresh rows and stops the run at step 0."""
    from test_train_trainer import AlignedReward, hf_rollout, problems, tiny_recipe

    from reasoner.train.sync import WeightSyncError
    from reasoner.train.trainer import build_trainer

    recipe = tiny_recipe(tmp_path, *ASYNC, "trainer.max_steps=1", "trainer.temperature=0.7",
                         "rollout.max_logprob_gap=0.001")  # fmt: skip
    trainer = build_trainer(recipe, reward_funcs=[AlignedReward(constant_even=False)], problems=problems(),
                            rollout=hf_rollout(tiny_model, "raw"), quiet=True)  # fmt: skip
    with pytest.raises(WeightSyncError, match=r"step 0: .* differ from the learner's"):
        trainer.train()


@pytest.mark.ray
@pytest.mark.parametrize("nproc", [1, 2])
def test_a_one_worker_ray_pool_pipelines_within_max_lag(nproc, tmp_path):
    """Rank 0 drives the pool (at 2 learner processes too); rollouts are one version old, never more."""
    from test_train_distributed import TINY_CLI

    from reasoner.cli import main

    out = tmp_path / "pool"
    assert main(["train", "dler", *TINY_CLI, "trainer.max_steps=3", "rollout.workers=1", "ray.num_cpus=0.5",
                 "ray.max_lag=1", *ASYNC, f"trainer.output_dir={out}", "--nproc", str(nproc)]) == 0  # fmt: skip
    steps = [r for r in _metrics(out) if "reward" in r]
    assert [r["async/staleness_max"] for r in steps] == [0.0, 1.0, 1.0]
    # the tiny random model earns no reward, so dynamic sampling masks every token: no weights to log
    assert all(r.get("sampling/importance_sampling_ratio/max", 0.0) <= 3.0 for r in steps)
