"""Reward functions: hand-computed values for each formula, TRL plumbing, validation, registry, layering."""

from __future__ import annotations

import ast
import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from reasoner.verify import DEFAULT_TIMEOUT_S
from rewards import REWARDS, RewardFunction

RIGHT, WRONG = r"The answer is \boxed{4}.", r"The answer is \boxed{5}."
REQUIRED = {
    "truncation": {"max_length": 10},
    "difficulty_truncation": {"max_length": 10, "min_length": 4},
    "soft_overlong": {"max_length": 10, "cache_length": 4},
    "cosine": {"max_length": 10},
    "l1_exact": {"target_length": 5},
    "l1_max": {"target_length": 5},
}


def make(name: str, **kwargs) -> RewardFunction:
    return REWARDS[name](**{**REQUIRED.get(name, {}), **kwargs})


def batch(correct: list[bool], lengths: list[int], groups: list[str] | None = None, **columns) -> dict:
    """A TRL-style call: answer "4" for every row; RIGHT/WRONG completions; token ids of the given lengths."""
    groups = groups or ["p"] * len(correct)
    return {
        "prompts": [f"question {g}" for g in groups],
        "completions": [RIGHT if ok else WRONG for ok in correct],
        "completion_ids": [[11] * n for n in lengths],
        "answer": ["4"] * len(correct),
        "problem_id": groups,
        **columns,
    }


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def cos_fn(t: float, big_t: float, r0: float, r_end: float) -> float:
    return r_end + 0.5 * (r0 - r_end) * (1 + math.cos(math.pi * t / big_t))


# (reward, kwargs, correct flags, lengths in tokens, group ids or None, expected rewards)
TABLE = [
    ("accuracy", {}, [True, False], [3, 3], None, [1.0, 0.0]),
    ("accuracy", {"correct_reward": 2.0, "incorrect_reward": -1.0}, [True, False], [3, 3], None, [2.0, -1.0]),
    # DLER truncation, L = 10: correct and shorter than 10 -> 1; 10 tokens = hit the cap -> 0
    ("truncation", {}, [True, True, True, False], [3, 9, 10, 2], None, [1.0, 1.0, 0.0, 0.0]),
    # Difficulty-aware, L_max 10, L_min 4: pass rate 0.5 in group a -> cap round(10 - 6 * 0.5) = 7;
    # group b all correct -> p = 1 -> cap 4
    ("difficulty_truncation", {}, [True, False, True, True], [6, 2, 3, 4], ["a", "a", "b", "b"],
     [1.0, 0.0, 1.0, 0.0]),
    # DAPO soft overlong, L_max 10, L_cache 4: 0 up to 6, (6 - L) / 4 on (6, 10], -1 beyond
    ("soft_overlong", {}, [True, False, True, True], [6, 7, 10, 11], None, [0.0, -0.25, -1.0, -1.0]),
    # Cosine, T = 10, paper defaults: correct 2 -> 1, wrong -10 -> 0, exceed -10
    ("cosine", {}, [True, True, False, False, True], [0, 5, 0, 5, 10], None,
     [2.0, cos_fn(5, 10, 2, 1), -10.0, cos_fn(5, 10, -10, 0), -10.0]),
    # L1-Exact, target 5, alpha 0.0003: 1[correct] - alpha * |5 - L|
    ("l1_exact", {}, [True, True, False], [5, 105, 1005], None, [1.0, 1 - 0.03, -0.3]),
    # L1-Max, target 5, alpha 0.0003, delta 0.5: 1[correct] * clip(alpha * (5 - L) + 0.5, 0, 1)
    ("l1_max", {}, [True, True, True, False], [5, 1005, 3005, 5], None, [0.5, 0.5 - 0.3, 0.0, 0.0]),
    ("l1_max", {"alpha": 0.01}, [True], [0], None, [min(1.0, 0.01 * 5 + 0.5)]),
    # Kimi: lengths 2, 4, 6 -> lambda 0.5, 0, -0.5; correct keep lambda, wrong get min(0, lambda); all equal -> 0
    ("kimi", {}, [True, False, True, False], [2, 2, 6, 4], None, [0.5, 0.0, -0.5, 0.0]),
    ("kimi", {}, [True, False], [5, 5], None, [0.0, 0.0]),
    # Arora & Zanette, alpha 0.1: correct lengths 2, 6 -> mean 4, std 2 -> z = -1, +1
    ("arora_zanette", {}, [True, True, False], [2, 6, 4], None, [1 - 0.1 * sig(-1), 1 - 0.1 * sig(1), 0.0]),
    ("arora_zanette", {"alpha": 0.4}, [True, False], [7, 3], None, [1 - 0.4 * 0.5, 0.0]),
    # ShorterBetter, alpha 2, beta 0.001: SOL = shortest correct = 10
    ("shorter_better", {}, [True, True, False], [10, 30, 4], None, [2.0, 2.0 - 0.02, -0.006]),
    # ... no correct sample: SOL = mean length = 20
    ("shorter_better", {}, [False, False], [10, 30], None, [-0.01, -0.01]),
    # GRPO-LEAD, alpha 0.1: correct lengths 2, 6 -> z = -1, +1 -> exp(0.1), exp(-0.1); wrong -> -1
    ("grpo_lead", {}, [True, True, False], [2, 6, 4], None, [math.exp(0.1), math.exp(-0.1), -1.0]),
    ("grpo_lead", {"alpha": 0.5}, [True, True, True], [1, 2, 3], None,
     [math.exp(0.5 / math.sqrt(2 / 3)), 1.0, math.exp(-0.5 / math.sqrt(2 / 3))]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kwargs", "correct", "lengths", "groups", "expected"),
    TABLE,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(TABLE)],
)
def test_hand_computed_values(name, kwargs, correct, lengths, groups, expected):
    got = make(name, **kwargs)(**batch(correct, lengths, groups))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-9)  # eps = 1e-6 in the z-score denominators


def test_format_reward_structure():
    fn = make("format")
    completions = [
        "<think>3 + 1 = 4</think> So \\boxed{4}.",  # well formed
        "3 + 1 = 4</think> \\boxed{4}",  # opening tag in the prompt (R1 template): fine
        "<think>3 + 1 = 4 \\boxed{4}",  # never closed
        "<think>a</think><think>b</think>\\boxed{4}",  # two spans
        "<think>3 + 1 = 4</think> The answer is 4.",  # no box
        "\\boxed{4}",  # no thinking
        "<think>   </think>\\boxed{4}",  # empty thinking
    ]
    assert fn(completions=completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    loose = make("format", require_think=False, require_boxed=False)
    assert loose(completions=["The answer is 4.", "\\boxed{4}", "<think>4", "nothing"]) == [
        1.0,
        1.0,
        0.0,
        0.0,
    ]


def test_conversational_completions_and_reasoning_field():
    fn = make("accuracy")
    completions = [
        [{"role": "assistant", "content": RIGHT}],
        [{"role": "assistant", "content": [{"type": "text", "text": RIGHT}]}],
        [{"role": "assistant", "reasoning_content": "maybe \\boxed{5}", "content": "\\boxed{4}"}],
        [{"role": "assistant", "reasoning_content": "it is \\boxed{4}", "content": "no idea"}],
        [{"role": "assistant", "content": WRONG}],
    ]
    assert fn(prompts=["q"] * 5, completions=completions, answer=["4"] * 5) == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert make("format")(
        completions=[[{"role": "assistant", "reasoning_content": "x", "content": RIGHT}]]
    ) == [1.0]


def test_trl_extras_are_ignored_and_missing_gold_gives_none():
    fn = make("truncation")
    out = fn(**batch([True, True, True], [3, 3, 3]) | {"answer": ["4", None, " "], "trainer_state": object(),
                                                         "log_metric": print, "log_extra": print})  # fmt: skip
    assert out == [1.0, None, None]


def test_group_rewards_skip_rows_without_gold():
    out = make("grpo_lead")(**batch([True, True, True], [2, 6, 4]) | {"answer": ["4", "4", None]})
    assert out[:2] == pytest.approx([math.exp(0.1), math.exp(-0.1)]) and out[2] is None


def test_truncation_reads_a_per_row_cap_column():
    fn = make("truncation", max_length=100)
    assert fn(**batch([True, True, True], [5, 5, 5], max_length=[6, 5, None])) == [1.0, 0.0, 1.0]


def test_difficulty_truncation_prefers_the_pass_rate_column():
    fn = make("difficulty_truncation")  # L_max 10, L_min 4
    out = fn(**batch([True, True], [6, 6], ["a", "b"], pass_rate=[0.0, 1.0]))  # caps 10 and 4
    assert out == [1.0, 0.0]
    mixed = fn(
        **batch([True, False], [6, 6], ["a", "a"], pass_rate=[None, None])
    )  # in-group p = 0.5 -> cap 7
    assert mixed == [1.0, 0.0]


def test_l1_target_from_column_overrides_argument():
    fn = make("l1_exact", target_length=None)
    assert fn(**batch([True, True], [10, 10], target_length=[10, 20])) == pytest.approx([1.0, 1 - 0.003])
    with pytest.raises(ValueError, match="target_length"):
        fn(**batch([True], [10]))


@pytest.mark.parametrize("how", ["column", "num_generations", "prompt-runs"])
def test_groups_from_column_blocks_or_prompt_runs(how):
    call = batch([True, True, True, True], [2, 6, 2, 6], ["a", "a", "b", "b"])
    kwargs = {}
    if how != "column":
        call.pop("problem_id")
    if how == "num_generations":
        kwargs["num_generations"] = 2
        call["prompts"] = ["same prompt"] * 4
    out = make("grpo_lead", **kwargs)(**call)
    assert out == pytest.approx([math.exp(0.1), math.exp(-0.1)] * 2)


def test_num_generations_must_divide_the_batch():
    call = batch([True] * 3, [1, 2, 3])
    call.pop("problem_id")
    with pytest.raises(ValueError, match="num_generations"):
        make("kimi", num_generations=2)(**call)


def test_length_rewards_need_completion_ids():
    with pytest.raises(ValueError, match="completion_ids"):
        make("cosine")(prompts=["q"], completions=[RIGHT], answer=["4"])


def test_graded_rewards_name_the_missing_answer_column():
    with pytest.raises(ValueError, match="'answer'"):
        make("accuracy")(prompts=["q"], completions=[RIGHT], completion_ids=[[1]])
    assert make("accuracy", answer_column="solution")(completions=[RIGHT], solution=["4"]) == [1.0]


def test_graded_rewards_count_only_marked_answers_by_default():
    """``mode="strict"`` (the reward default): an unmarked number earns nothing, nor does a digit in a word;
    ``mode="lenient"`` grades the unmarked answer as evaluation does."""
    from rewards import Accuracy

    unmarked, in_a_word = "So she has 4 apples left", "AZYUK4A"
    assert Accuracy().mode == "strict"
    assert Accuracy()(completions=[unmarked, in_a_word, RIGHT], answer=["4"] * 3) == [0.0, 0.0, 1.0]
    assert Accuracy(mode="lenient")(completions=[unmarked, in_a_word, RIGHT], answer=["4"] * 3) == [
        1.0,
        0.0,
        1.0,
    ]
    with pytest.raises(ValidationError, match=r"for Accuracy\nmode\n  Input should be 'lenient' or 'strict'"):
        Accuracy(mode="loose")


INVALID = [
    ("truncation", {"max_length": 0}, "max_length"),
    ("truncation", {"max_length": 2.5}, "max_length"),
    ("truncation", {"timeout": 0}, "timeout"),
    ("accuracy", {"correct_reward": float("nan")}, "correct_reward"),
    ("accuracy", {"answer_column": ""}, "answer_column"),
    ("difficulty_truncation", {"min_length": 20}, "min_length"),
    ("soft_overlong", {"cache_length": -1}, "cache_length"),
    ("soft_overlong", {"cache_length": 11}, "cache_length"),
    ("cosine", {"max_length": -5}, "max_length"),
    ("cosine", {"wrong_at_zero": "low"}, "wrong_at_zero"),
    ("l1_exact", {"alpha": -1.0}, "alpha"),
    ("l1_exact", {"target_length": 0}, "target_length"),
    ("l1_max", {"delta": math.inf}, "delta"),
    ("kimi", {"num_generations": 0}, "num_generations"),
    ("arora_zanette", {"alpha": 1.0}, "alpha"),
    ("shorter_better", {"beta": -0.1}, "beta"),
    ("grpo_lead", {"alpha": -0.5}, "alpha"),
    ("format", {"require_think": "yes"}, "require_think"),
    ("truncation", {"max_length": True}, "max_length"),
    ("accuracy", {"timeout": math.inf}, "timeout"),
    ("truncation", {"max_len": 10}, "max_len"),
]


@pytest.mark.parametrize(("name", "kwargs", "param"), INVALID, ids=[f"{n}-{p}" for n, _, p in INVALID])
def test_invalid_parameters_are_named(name, kwargs, param):
    """A pydantic error naming the reward class and the parameter (a field, or in a cross-field rule's text)."""
    with pytest.raises(ValidationError, match=rf"validation error for {REWARDS[name].__name__}\n") as err:
        make(name, **kwargs)
    (error,) = err.value.errors()
    assert error["loc"] == (param,) or (error["loc"] == () and param in error["msg"])


def test_parameters_are_typed_fields_with_docstrings_and_the_verifier_timeout():
    """REWARDS maps names to classes; a class's fields are its parameters (described, with defaults), and a graded
    reward's default timeout is the verifier's."""
    from rewards import GradedReward

    for name, cls in REWARDS.items():
        assert cls.name == name and isinstance(cls, type) and issubclass(cls, RewardFunction)
        for field, info in cls.model_fields.items():
            assert info.description, f"{name}.{field} has no docstring"
        if issubclass(cls, GradedReward):
            assert cls.model_fields["timeout"].default == DEFAULT_TIMEOUT_S
            assert make(name).timeout == DEFAULT_TIMEOUT_S
    with pytest.raises(ValidationError, match="frozen"):
        make("accuracy").correct_reward = 2.0


def test_registry_is_complete_named_and_picklable():
    expected = {
        "accuracy", "format", "truncation", "difficulty_truncation", "soft_overlong", "cosine", "kimi",
        "l1_exact", "l1_max", "arora_zanette", "shorter_better", "grpo_lead",
    }  # fmt: skip
    assert set(REWARDS) == expected
    call = batch([True, False, True, True], [3, 6, 4, 8], ["a", "a", "b", "b"])
    for name in REWARDS:
        fn = make(name)
        assert isinstance(fn, RewardFunction) and fn.__name__ == name
        clone = pickle.loads(pickle.dumps(fn))
        assert clone == fn and clone(**call) == fn(**call)
        assert "arxiv" in type(fn).__doc__.lower()
        assert type(fn).model_validate(fn.model_dump()) == fn  # what --print-config shows loads back


def test_rewards_import_only_l1_modules_from_reasoner():
    root = Path(__file__).resolve().parents[2] / "rewards"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("reasoner"):
                    assert name in ("reasoner.types", "reasoner.verify", "reasoner.length_caps"), (
                        f"{path.name} imports {name}"
                    )
                assert not name.startswith(("evals", "trl", "torch", "vllm", "ray")), (
                    f"{path.name} imports {name}"
                )


def test_importing_rewards_is_light():
    code = "import sys, rewards; print(sorted(m for m in ('math_verify', 'sympy', 'torch', 'trl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
