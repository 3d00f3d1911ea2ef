"""``prepare_output_dir``: the resolved recipe is saved beside the checkpoints; --resume needs a checkpoint."""

from __future__ import annotations

import pytest
import yaml

from reasoner.config import ConfigError, load_recipe
from reasoner.train.trainer import prepare_output_dir
from rewards import REWARDS


def test_saves_the_resolved_recipe(tmp_path):
    config = load_recipe("dler", ["trainer.max_steps=7"], rewards=REWARDS)
    out = prepare_output_dir(str(tmp_path / "run"), config, resume=None)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert out == tmp_path / "run" and out.is_dir()
    assert saved["trainer"]["max_steps"] == 7
    assert saved == config.model_dump(mode="json")


def test_resume_without_a_checkpoint_names_the_directory(tmp_path):
    config = load_recipe("dler", rewards=REWARDS)
    with pytest.raises(ConfigError, match=r"--resume: no checkpoint-\* directory in .*empty"):
        prepare_output_dir(str(tmp_path / "empty"), config, resume=True)


def test_resume_finds_the_latest_checkpoint(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    config = load_recipe("dler", rewards=REWARDS)
    assert prepare_output_dir(str(tmp_path), config, resume=True) == tmp_path
