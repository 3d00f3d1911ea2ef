"""Data-parallel training at 2 learner processes (CPU gloo) means the same as at 1 on the same global batch.

Each recipe trains 2 optimizer steps twice: ``--nproc 1`` with ``per_device_train_batch_size`` 16 and
``--nproc 2`` with 8, both through ``reasoner.train.launch.launch_local`` (torch's elastic launcher, what
``torchrun`` runs). The rollouts come from a scripted engine (``FakeEngine``) whose answers, lengths and
entropies vary with the prompt and the sample index, so rewards, advantages, dynamic sampling's refills,
D3S's selections and the pass-rate tracker all have something to do (the tiny random model itself almost
never stops before the cap, which would make every length reward equal and every advantage zero). The learner
is the real tiny Qwen2 model. Compared: the problems, completions, rewards, advantages and loss masks of both
steps (exactly, advantages to 1e-6) and the final weights (to 1e-5).

The optimizer is SGD: Adam's first steps move every weight by about ``lr * sign(grad)``, so a gradient that
is zero up to float rounding (summed in another order across ranks) flips a whole ``lr``-sized step, which
would test Adam's sign, not our semantics. With SGD a rounding-level gradient difference stays rounding-level.
The scripted engine's logprobs are not the model's, so the weight-sync check is off here (it has its own test).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import torch

RECIPES = ["grpo", "dler", "dler_da", "d3s", "kimi", "prune"]
GLOBAL_ROWS = 16
COMMON = [
    "model.name=tiny-random-qwen2",
    "data.n=24",
    "data.levels=[1]",
    "trainer.max_steps=2",
    "trainer.num_generations=4",
    "trainer.max_completion_length=24",
    "trainer.save_strategy=no",
    "trainer.optim=sgd",
    "trainer.learning_rate=0.5",
    "rollout.sync_check_rows=0",
    "advantages.dynamic_sampling.max_rounds=2",
]
PER_RECIPE = {  # 6 problems for dler_da and prune: step 2 revisits prompts (caps tighten, pruning skips)
    "d3s": ["advantages.d3s.sample_k=2", "advantages.d3s.rho_start=0.5"],
    "dler_da": ["data.n=6", "rewards.0.params.max_length=14", "rewards.0.params.min_length=4"],
    "prune": ["data.n=6", "difficulty.prune.min_seen=1"],
}


def _digest(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest(), 16)


class ArithScript:
    """Scripted answers for the arith prompts: a quarter of the questions always get the same (correct, short)
    answer (a zero-variance group for dynamic sampling to drop); the others vary in correctness, length and
    per-token entropy with the sample index. ``constant_on_rank``: every prompt generated on that rank gets a
    constant group (ranks then need different refills). ``stall``: (rank, call, seconds): on that rank, sleep
    when the script starts its call-th prompt."""

    def __init__(self, problems, constant_on_rank: int | None = None, stall=None):
        self.gold = {p.question: p.answer for p in problems}
        self.constant_on_rank, self.stall = constant_on_rank, stall
        self.calls = 0

    def __call__(self, text: str, j: int):
        from reasoner.engines.fake import Trace

        question = next(q for q in self.gold if q in text)
        gold, rank = self.gold[question], int(os.environ.get("RANK", "0"))
        if self.stall and rank == self.stall[0] and j == 0:
            self.calls += 1
            if self.calls == self.stall[1]:
                time.sleep(self.stall[2])
        h = _digest(question, j)
        if _digest(question) % 4 == 0 or rank == self.constant_on_rank:
            return Trace(f"\\boxed{{{gold}}}", entropies=[0.5] * 8)
        wrong = (h >> 8) % 3 == 0
        answer = str(int(gold) + 1) if wrong else gold
        text = "so " * (h % 9) + f"\\boxed{{{answer}}}"
        return Trace(text, entropies=[((h >> (4 * i)) % 16) / 8 for i in range(32)])


class Recorder:
    """A TrainerCallback that snapshots the global batch of every step (problems, completions, rewards,
    advantages, loss mask)."""

    def __init__(self):
        from transformers import TrainerCallback

        self.trainer, self.steps = None, []
        outer = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                t = outer.trainer
                batch, processed = t.last_batch, t.last_processed
                outer.steps.append({
                    "problems": [g.problem.id for g in batch.groups],
                    "completions": [[list(c.token_ids) for c in g.completions] for g in batch.groups],
                    "rewards": batch.rewards.tolist(),
                    "keep": batch.keep.tolist(),
                    "advantages": processed.advantages.tolist(),
                    "loss_mask": processed.loss_mask.tolist(),
                    "stats": {k: None if v != v else v for k, v in batch.stats.items()},  # NaN != NaN
                    "tracker": dict(t.difficulty.tracker.rates),
                })  # fmt: skip

        self.callback = _Callback()


def StopAfter(step: int):  # noqa: N802 - a TrainerCallback instance (transformers imported lazily)
    from transformers import TrainerCallback

    class _Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_training_stop = True

    return _Stop()


def KillAfterSave(step: int):  # noqa: N802 - a TrainerCallback instance (transformers imported lazily)
    """SIGKILL this process once the checkpoint of ``step`` is saved: a crash between steps."""
    import signal

    from transformers import TrainerCallback

    class _Kill(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step >= step:
                os.kill(os.getpid(), signal.SIGKILL)

    return _Kill()


def train_worker(
    recipe: str, per_device: int, out: str, script_options: dict, extra: list[str], resume: bool = False,
    stop_after: int | None = None, kill_after: int | None = None,
) -> dict:  # fmt: skip
    """One learner process: train ``recipe`` on the scripted engine; return its step snapshots and weights.
    ``stop_after``: end the run after that step (its checkpoint saved), as a crash between steps would;
    ``kill_after``: SIGKILL the process once that step's checkpoint is saved."""
    from transformers import AutoTokenizer

    from reasoner.engines.fake import FakeEngine
    from reasoner.models import resolve
    from reasoner.train.cli import build_rewards, recipe_problems, resolved_recipe
    from reasoner.train.rollout import EngineRollout
    from reasoner.train.trainer import build_trainer

    overrides = [*COMMON, *PER_RECIPE.get(recipe, []), *extra,
                 f"trainer.per_device_train_batch_size={per_device}", f"trainer.output_dir={out}"]  # fmt: skip
    config = resolved_recipe(recipe, overrides)
    problems = recipe_problems(config.data)
    tokenizer = AutoTokenizer.from_pretrained(resolve(config.model.name))
    rollout = EngineRollout(FakeEngine(ArithScript(problems, **script_options), tokenizer))
    recorder = Recorder()
    callbacks = [recorder.callback] if stop_after is None else [recorder.callback, StopAfter(stop_after)]
    if kill_after is not None:
        callbacks.append(KillAfterSave(kill_after))
    trainer = build_trainer(config, reward_funcs=build_rewards(config.rewards), problems=problems,
                            rollout=rollout, callbacks=callbacks, quiet=True)  # fmt: skip
    recorder.trainer = trainer
    initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    return {
        "steps": recorder.steps,
        "weights": {k: v.detach().cpu().clone() for k, v in final.items()},
        "moved": max(float((final[k] - initial[k]).abs().max()) for k in initial),
        "rank": trainer.comm.rank,
        "world": trainer.comm.world,
    }


def train_all(recipes: list[str], per_device: int, out: str) -> dict[str, dict]:
    """One learner process training every recipe in turn (one launch per world size keeps the suite fast)."""
    return {r: train_worker(r, per_device, f"{out}/{r}", {}, []) for r in recipes}


def _run(nproc: int, recipe: str, tmp_path: Path, script_options=None, extra=()) -> list[dict]:
    from reasoner.train.launch import launch_local

    out = tmp_path / f"{recipe}-{nproc}"
    args = (recipe, GLOBAL_ROWS // nproc, str(out), script_options or {}, list(extra))
    return launch_local(train_worker, args, nproc=nproc)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every recipe at 1 process (16 rows per device) and at 2 processes (8 rows per device)."""
    from reasoner.train.launch import launch_local

    out = tmp_path_factory.mktemp("data-parallel")
    [single] = launch_local(train_all, (RECIPES, GLOBAL_ROWS, str(out / "one")), nproc=1)
    ranks = launch_local(train_all, (RECIPES, GLOBAL_ROWS // 2, str(out / "two")), nproc=2)
    return single, ranks


def _assert_same_steps(one: list[dict], two: list[dict]) -> None:
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        for key in ("problems", "completions", "rewards", "keep", "loss_mask", "stats", "tracker"):
            assert a[key] == b[key], key
        assert torch.allclose(torch.tensor(a["advantages"]), torch.tensor(b["advantages"]), atol=1e-6)


@pytest.mark.parametrize("recipe", RECIPES)
def test_two_processes_train_like_one(recipe, runs):
    single, ranks = runs[0][recipe], [r[recipe] for r in runs[1]]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["world"] == 2
    assert any(any(a != 0 for a in s["advantages"]) for s in single["steps"]), "no learning signal at all"
    assert single["moved"] > 1e-3, "the weights did not move: the comparison would be vacuous"
    for rank in ranks:
        _assert_same_steps(single["steps"], rank["steps"])
    gap = max(float((single["weights"][k] - ranks[0]["weights"][k]).abs().max()) for k in single["weights"])
    between_ranks = max(
        float((ranks[0]["weights"][k] - ranks[1]["weights"][k]).abs().max()) for k in single["weights"]
    )
    print(f"{recipe}: weights moved {single['moved']:.3g}, |1 proc - 2 procs| max {gap:.3g}")
    assert between_ranks == 0.0
    assert gap <= 1e-5


def test_ranks_needing_different_refills_stay_in_step(tmp_path):
    """Every group generated on rank 0 is constant: a per-rank dynamic sampler would refill on rank 0 only
    and hang in the next collective. Decided globally, both ranks refill the same rounds and agree."""
    ranks = _run(2, "dler", tmp_path, {"constant_on_rank": 0})
    a, b = ranks[0]["steps"], ranks[1]["steps"]
    assert len(a) == len(b) == 2
    assert a == b
    assert all(s["stats"]["refill_rounds"] >= 1 for s in a)
    assert not all(all(s["keep"]) for s in a), "rank 0's constant groups should stay masked"


def test_a_stalled_rank_times_out_with_an_error_naming_rank_and_step(tmp_path):
    from reasoner.train.collective import RankFailedError

    with pytest.raises(RankFailedError) as err:
        # grpo: 4 prompts a step, 2 per rank; rank 1's third prompt is the first of step 1
        _run(2, "grpo", tmp_path, {"stall": (1, 3, 30.0)}, extra=["trainer.ddp_timeout=4"])
    text = str(err.value)
    assert "rank 0 of 2: exchanging completions at step 1 failed" in text, text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "0"], "--nproc must be >= 1, got 0"),
        (["--nproc", "2", "trainer.per_device_train_batch_size=6"],
         "trainer.per_device_train_batch_size=6 x steps_per_generation=1 = 6 rows per process is not a whole "
         "number of groups of trainer.num_generations=4"),
        (["--nproc", "2", "trainer.loss_type=bnpo"], "trainer.loss_type='bnpo' normalises the loss by each"),
        *[pytest.param([*nproc, "trainer.ddp_backend=nccl"], "trainer.ddp_backend='nccl' needs CUDA GPUs",
                       marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"))
          for nproc in ([], ["--nproc", "2"])],
    ],
)  # fmt: skip
def test_bad_data_parallel_input_is_one_line_naming_the_field(args, message, capsys):
    from reasoner.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "grpo", "model.name=tiny-random-qwen2", "rollout.engine=hf", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()  # argparse's own errors come after its usage lines
    assert message in err[-1] and err[-1].startswith("reasoner train: error:") and "Traceback" not in err, err


def test_fsdp2_shards_are_gathered_whole_for_the_weight_sync():
    from reasoner.train.launch import launch_local

    assert launch_local(fsdp2_gather, (), nproc=2) == [True, True]


def fsdp2_gather() -> bool:
    """A model sharded with FSDP2 (``fully_shard`` on a CPU mesh): ``merged_weights`` yields the full tensors."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from reasoner.train.sync import merged_weights

    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 3))
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for layer in model:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    assert all(hasattr(v, "full_tensor") for v in model.state_dict().values()), "not sharded"
    with merged_weights(model) as weights:
        return dict(weights).keys() == reference.keys() and all(
            torch.equal(w, reference[k]) for k, w in weights
        )


def test_resume_at_two_processes_continues_with_the_same_data_weights_and_tracker(tmp_path):
    """dler_da at 2 processes: 2 steps straight vs a run stopped after step 1 (as by a crash), then resumed with
    the same config for step 2 (6 problems, so the second step revisits prompts and the DA caps depend on the
    tracker saved with checkpoint-1). Same batch, advantages, tracker and final weights."""
    from reasoner.train.launch import launch_local

    save = ["trainer.save_strategy=steps", "trainer.save_steps=1"]
    straight = launch_local(train_worker, ("dler_da", 8, str(tmp_path / "a"), {}, save), nproc=2)
    launch_local(train_worker, ("dler_da", 8, str(tmp_path / "b"), {}, save, False, 1), nproc=2)
    assert (tmp_path / "b" / "checkpoint-1" / "reasoner_state.json").exists()
    resumed = launch_local(train_worker, ("dler_da", 8, str(tmp_path / "b"), {}, save, True), nproc=2)
    for a, b in zip(straight, resumed, strict=True):
        assert len(b["steps"]) == 1, "the resumed run should train step 2 only"
        assert a["steps"][1] == b["steps"][0]
        assert max(float((a["weights"][k] - b["weights"][k]).abs().max()) for k in a["weights"]) <= 1e-6


TINY_CLI = ["model.name=tiny-random-qwen2", "rollout.engine=hf", "data.n=8", "data.levels=[1]",
            "trainer.max_steps=2", "trainer.per_device_train_batch_size=4", "trainer.num_generations=4",
            "trainer.max_completion_length=12", "trainer.save_strategy=no"]  # fmt: skip


def _metric_steps(out: Path) -> list[int]:
    import json

    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _comm_seconds(out: Path) -> list[float]:
    import json

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["time/comm"] for r in records if "time/comm" in r]


@pytest.mark.parametrize("launcher", ["--nproc", "torchrun"])
def test_the_cli_trains_at_two_processes_under_each_local_launcher(launcher, tmp_path):
    """``reasoner train --nproc 2`` and ``torchrun --nproc_per_node 2 -m reasoner.cli train``: one process
    group (time is spent exchanging), rank 0 alone writes one metrics line per step."""
    import subprocess
    import sys

    out = tmp_path / launcher.strip("-")
    train = ["train", "dler", *TINY_CLI, f"trainer.output_dir={out}"]
    if launcher == "torchrun":
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "reasoner.cli", *train]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "reasoner.cli", *train, "--nproc", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _metric_steps(out) == [1, 2, 2]  # two steps and TRL's end-of-training summary, written once
    assert all(s > 0 for s in _comm_seconds(out)), "the processes did not form one group"


@pytest.mark.ray
def test_nproc_with_a_ray_address_places_the_ranks_with_ray(tmp_path):
    import ray

    from reasoner.cli import main

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False)
    try:
        out = tmp_path / "ray-ranks"
        assert main(["train", "dler", *TINY_CLI, "ray.address=auto", f"trainer.output_dir={out}",
                     "--nproc", "2"]) == 0  # fmt: skip
    finally:
        if started:
            ray.shutdown()
    assert _metric_steps(out)[:2] == [1, 2]  # rank 0 alone wrote the metrics, one line per step


@pytest.mark.ray
def test_rank_zero_drives_the_ray_rollout_pool_for_all_ranks(tmp_path):
    from reasoner.cli import main

    out = tmp_path / "pool"
    assert main(["train", "dler", *TINY_CLI, "rollout.workers=1", "ray.num_cpus=0.5",
                 f"trainer.output_dir={out}", "--nproc", "2"]) == 0  # fmt: skip
    assert _metric_steps(out)[:2] == [1, 2]
