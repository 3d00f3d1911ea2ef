"""Prompt hidden states: the features a difficulty probe reads (Zhu et al. 2025, "The LLM Already Knows",
https://arxiv.org/abs/2509.12886: the question's difficulty as the model perceives it is linearly readable
from the hidden state at the end of the prompt, before any token is generated).

``prompt_features(model, prompts, layers)`` runs one transformers forward pass per prompt (token ids, as the
strategies render them) with ``output_hidden_states=True`` and returns, for each requested layer, the hidden
state of the prompt's last token: an array ``[len(layers), len(prompts), hidden_size]``. Layer 0 is the
embeddings, layer L (= ``num_hidden_layers``) the last block's output; negative indices count from the end
(-1 = last). One prompt per pass: no padding, so each prompt's positions are exactly those generation uses.

This works next to any generation engine (vLLM does not return hidden states): the model is loaded here once
per (path, dtype) in fp32 on a CPU (bf16 on a GPU with ``dtype="auto"``) and kept for the process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)


@lru_cache(maxsize=2)
def _load(model: str, dtype: str) -> tuple[Any, str]:
    import torch
    from transformers import AutoModelForCausalLM

    from reasoner.engines.base import engine_dtype

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = engine_dtype(dtype, device)
    torch_dtype = name if name == "auto" else getattr(torch, name)
    log.info("hidden states: loading %s (%s, %s)", model, torch_dtype, device)
    net = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(device).eval()  # type: ignore[arg-type]
    return net, device


def num_layers(model: str, dtype: str = "auto") -> int:
    """Hidden-state layers a forward pass returns: ``num_hidden_layers + 1`` (the embeddings are layer 0)."""
    net, _ = _load(model, dtype)
    return int(net.config.num_hidden_layers) + 1


def prompt_features(
    model: str, prompts: Sequence[Sequence[int]], layers: Sequence[int], *, dtype: str = "auto"
) -> Any:
    """Last-prompt-token hidden states of ``model`` (a local directory or Hub id) for each prompt (token ids)
    at each of ``layers``: a float64 numpy array ``[len(layers), len(prompts), hidden_size]``."""
    import numpy as np
    import torch

    net, device = _load(model, dtype)
    total = int(net.config.num_hidden_layers) + 1
    for layer in layers:
        if not -total <= layer < total:
            raise ValueError(f"layer must be in [{-total}, {total - 1}] for {model}, got {layer}")
    if not prompts:
        return np.zeros((len(layers), 0, int(net.config.hidden_size)))
    rows = []
    with torch.inference_mode():
        for ids in prompts:
            if not ids:
                raise ValueError("prompt_features: an empty prompt has no last token")
            out = net(torch.tensor([list(ids)], device=device), output_hidden_states=True)
            rows.append(torch.stack([out.hidden_states[layer][0, -1] for layer in layers]).float().cpu())
    return torch.stack(rows, dim=1).double().numpy()
