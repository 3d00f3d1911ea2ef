"""`reasoner eval`'s flags are generated from EvalConfig's fields: names, help, choices, and how flags, a
--config file and the defaults combine."""

from __future__ import annotations

import argparse

import pytest
from pydantic import BaseModel, ConfigDict, Field

from evals.cli import add_config_flags, overrides, resolve_config
from evals.sweep import EvalConfig
from reasoner.cli import build_parser


def _eval_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["eval"]


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["eval", *argv])


def test_every_field_is_a_flag_with_its_docstring_and_default():
    flags = {a.dest: a for a in _eval_parser()._actions}
    for name, field in EvalConfig.model_fields.items():
        action = flags[name]
        assert action.default is None, name  # an unset flag leaves the --config value
        first_words = " ".join(field.description.replace("``", "").split()[:3])
        assert first_words in action.help and "Default: " in action.help, name
    assert flags["n"].option_strings == ["-n", "--k"]
    assert flags["batch_size"].option_strings == ["--batch-size"]
    assert flags["grader"].choices == ("lenient", "strict")
    assert flags["engine"].choices == ("auto", "vllm", "hf")
    assert "multistep" in flags["benchmark"].choices and flags["budgets"].nargs == "+"
    assert "Default: 64 128 384" in flags["budgets"].help


def test_flags_become_typed_overrides():
    args = _args("-n", "4", "--budgets", "128,64", "256", "--seeds", "0", "1", "--limit", "all",
                 "--top-p", "0.9", "--strategies", "greedy", "short-m@k:m=2", "--data-dir", "/d")  # fmt: skip
    assert overrides(args, EvalConfig) == {
        "n": "4", "budgets": ["128", "64", "256"], "seeds": ["0", "1"], "limit": "all", "top_p": "0.9",
        "strategies": ["greedy", "short-m@k:m=2"], "data_dir": "/d",
    }  # fmt: skip
    config, _ = resolve_config(args)
    assert (config.n, config.budgets, config.seeds, config.limit, config.top_p) == (4, [64, 128, 256], [0, 1],
                                                                                   None, 0.9)  # fmt: skip
    assert config.strategies == ["greedy", "short-m@k:k=4,m=2"] and config.data_dir == "/d"


def test_unset_flags_keep_the_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: tiny-random-qwen2\nbudgets: [32]\nn: 3\nstrategies: [majority]\n")
    config, out = resolve_config(_args("--config", str(path), "--budgets", "16"))
    assert (config.model, config.budgets, config.n, config.strategies) == ("tiny-random-qwen2", [16], 3,
                                                                          ["majority:k=3"])  # fmt: skip
    assert out.name == "run" and config.temperature == EvalConfig().temperature


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--budgets", "64", "x"], "budgets.1: Input should be a valid integer"),
        (["--top-p", "2"], "top_p: Input should be less than or equal to 1"),
        (["--strategies", "majority:kk=1"], "unknown parameter 'kk'"),
    ],
)
def test_bad_flag_values_name_the_field(argv, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(_args(*argv))


def test_choices_are_checked_by_argparse(capsys):
    with pytest.raises(SystemExit):
        _args("--grader", "loose")
    assert "invalid choice: 'loose'" in capsys.readouterr().err


class Small(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    top_k: int | None = Field(None, ge=1)
    """Keep the k best (None: all)."""
    sizes: list[float] = [0.5]
    """Sizes in GB."""


def test_add_config_flags_is_generic():
    p = argparse.ArgumentParser()
    add_config_flags(p, Small)
    args = p.parse_args(["--top-k", "3", "--sizes", "1,2", "3"])
    assert Small.model_validate(overrides(args, Small)) == Small(top_k=3, sizes=[1, 2, 3])
    assert "Keep the k best (None: all). Default: None" in p.format_help()
    assert "Sizes in GB. Default: 0.5" in p.format_help()
    assert overrides(p.parse_args([]), Small) == {}
