"""The package as a real wheel: built from the sources, installed without ``-e`` into a fresh virtual environment,
and run from a directory outside the checkout, recipes included (``reasoner/recipes`` is package data).

The new environment reuses the installed dependencies through a ``.pth`` line naming this interpreter's
site-packages, written after the wheel is installed (so pip never sees, nor touches, the editable install
there). A ``.pth`` line only extends ``sys.path``: the editable install's own finder is not loaded, and the
test checks that ``reasoner`` is imported from the new environment.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "reasoner", "rewards", "evals", "recipes")
"""What the wheel is built from (copied, so the build writes nothing into the checkout)."""


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path):
    src = tmp_path / "src"
    for name in SOURCES:
        source, target = ROOT / name, src / name
        if source.is_dir():
            shutil.copytree(
                source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "wheels", str(src)],
        cwd=tmp_path)  # fmt: skip
    (wheel,) = (tmp_path / "wheels").glob("reasoner_toolkit-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
         str(wheel)], cwd=tmp_path)  # fmt: skip
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path
    )
    (Path(purelib.strip()) / "reuse_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = run([str(python), "-c", "import reasoner, rewards; print(reasoner.__file__); print(rewards.__file__)"],
                cwd=elsewhere, env=env).split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv) for p in where), where
    recipe = run([str(venv / "bin" / "reasoner"), "train", "dler", "--print-config"], cwd=elsewhere, env=env)
    assert "name: dler" in recipe and "- name: truncation" in recipe and "max_length: 96" in recipe
    assert "timeout: 5.0" in recipe  # a reward default, from the reward class
    help_text = run([str(venv / "bin" / "reasoner"), "eval", "--help"], cwd=elsewhere, env=env)
    assert "--config" in help_text
    print(f"wheel: {wheel.name}\nreasoner, rewards imported from: {where}")
    print(
        "reasoner train dler --print-config (first lines):\n" + "\n".join(recipe.splitlines()[:3]) + "\n..."
    )
    lines = recipe.splitlines()
    print(
        "\n".join(lines[lines.index("rewards:") : lines.index("advantages:")])
    )  # with the reward's defaults
    print("reasoner eval --help (first lines):\n" + "\n".join(help_text.splitlines()[:2]))
