"""``reasoner probe fit`` then ``reasoner decode --strategy adaptive:majority`` on a real tiny model (a copy of
tiny-random-llama, so the probe lands next to the model as by default): a hand-written eval run gives the pass
rates; the probe is read back from the model directory; hidden states come from transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from evals.benchmarks import load_problems
from evals.rows import CONFIG_FILE, SAMPLES_FILE, Row, SampleRecord
from evals.sweep import EvalConfig
from reasoner.cli import main
from reasoner.strategies.difficulty import PROBE_FILE, LinearProbe
from reasoner.types import TokenCount


def _run_dir(tmp_path: Path, model: str) -> Path:
    """An eval run over 12 multistep test problems whose pass rate falls with the level (8 samples each)."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = EvalConfig(model=model, limit=12, strategies=["majority:k=8"], budgets=[64])
    (run / CONFIG_FILE).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    lines = []
    for p in load_problems("multistep", "test", limit=12):
        right = 8 - 2 * p.meta["level"]  # level 1: 6/8 ... level 4: 0/8
        samples = tuple(
            SampleRecord(tokens=5, finish="stop", answer="1", correct=j < right) for j in range(8)
        )
        row = Row(problem_id=p.id, strategy="majority:k=8", budget=64, seed=0, answer="1", gold=p.answer,
                  tokens=TokenCount(generated=40), wall_s=0.1, samples=samples, correct=right > 4)  # fmt: skip
        lines.append(row.to_line())
    (run / SAMPLES_FILE).write_text("".join(lines))
    return run


@pytest.fixture
def model_copy(tmp_path):
    from reasoner.models import resolve

    dst = tmp_path / "model"
    shutil.copytree(resolve("tiny-random-llama"), dst)
    return dst


def test_fit_then_decode_adaptive_majority(tmp_path, model_copy, capsys):
    question = "Start with 7. Step A: add 5. What is the result?"
    decode = ["decode", question, "--model", str(model_copy), "--engine", "hf", "--max-tokens", "8",
              "--strategy", "adaptive:majority", "--param", "mean=3", "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as missing:
        main(decode)
    assert missing.value.code == 2
    err = capsys.readouterr().err
    assert str(model_copy / PROBE_FILE) in err and "reasoner probe fit" in err

    run = _run_dir(tmp_path, str(model_copy))
    assert (
        main(["probe", "fit", str(run), "--layers", "1,-1", "--alphas", "0.1,1", "--val-fraction", "0.25"])
        == 0
    )
    probe = LinearProbe.load(model_copy / PROBE_FILE)
    assert (
        probe.layer in (1, -1) and probe.meta["problems"] == 12 and probe.meta["strategy"] == "majority:k=8"
    )
    assert probe.meta["mean_pass_rate"] == pytest.approx(sum(8 - 2 * (1 + i % 4) for i in range(12)) / 96)
    assert len(probe.weights) == 64 and "arXiv 2509.12886" in probe.meta["paper"]
    capsys.readouterr()

    assert main(decode) == 0
    out = json.loads(capsys.readouterr().out)
    assert (
        out["strategy"] == "adaptive:majority" and len(out["completions"]) == 3
    )  # one question: round(mean)
    assert out["tokens"]["generated"] == sum(c["num_tokens"] for c in out["completions"])


def test_fit_errors_are_one_line(tmp_path, model_copy, capsys):
    run = _run_dir(tmp_path, str(model_copy))
    with pytest.raises(SystemExit):
        main(["probe", "fit", str(run), "--strategy", "nope"])
    assert "--strategy 'nope' is not in the run; its strategies: majority:k=8" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["probe", "fit", str(tmp_path / "none")])
    assert "is not an eval run (no config.yaml)" in capsys.readouterr().err
