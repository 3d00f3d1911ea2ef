"""Shared fixtures: the tiny fp32 model and one warm engine of each kind per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REASONER_DATA_DIR", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    """Wire the organism aliases (``overthinker``, ``overthinker-init``) into ``reasoner.models``, as the CLI does."""
    from reasoner.wiring import wire

    wire()


def pytest_collection_modifyitems(config, items):
    """GPU tests skip cleanly on machines without CUDA."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model() -> str:
    from reasoner.models import resolve

    return resolve("tiny-random-qwen2")


@pytest.fixture(scope="session")
def hf_engine(tiny_model):
    from reasoner.engines.hf import HFEngine

    return HFEngine(tiny_model, dtype="float32")


@pytest.fixture(scope="session")
def vllm_engine(tiny_model):
    from reasoner.engines import vllm_available

    ok, why = vllm_available()
    if not ok:
        pytest.skip(why)
    from reasoner.engines.vllm import VLLMEngine

    engine = VLLMEngine(tiny_model, dtype="float32", max_model_len=2048)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def engines(hf_engine, vllm_engine):
    return {"hf": hf_engine, "vllm": vllm_engine}
