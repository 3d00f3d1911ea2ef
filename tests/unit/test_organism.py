"""The overthinking organism's data: multistep problems, traces with re-checks and false corrections."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from reasoner.organism.problems import (
    LEVELS,
    MAX_VALUE,
    OPERANDS,
    Step,
    apply,
    generate_multistep,
    held_out,
    make_problem,
    question_text,
    steps_of,
)
from reasoner.organism.traces import RECHECK, TraceConfig, minimal_trace, write_trace
from reasoner.prompts import THINK_END, THINK_START

EQUATION = re.compile(r"(-?\d+) ([+*-]) (\d+) = (-?\d+)")


def test_problems_are_deterministic_and_extend():
    small = generate_multistep(12, seed=3, split="train")
    large = generate_multistep(40, seed=3, split="train")
    assert large[:12] == small
    assert generate_multistep(12, seed=4, split="train") != small


@pytest.mark.parametrize("level", LEVELS)
def test_level_sets_operations_and_values_stay_in_range(level):
    for p in generate_multistep(60, seed=0, levels=[level]):
        steps = steps_of(p)
        assert len(steps) == level + 1 and p.meta["level"] == level
        assert all(0 <= s.result <= MAX_VALUE and s.operand in OPERANDS for s in steps)
        assert p.answer == str(steps[-1].result)
        assert p.question == question_text(p.meta["start"], steps)


def test_train_and_test_never_share_a_question():
    train = generate_multistep(3000, seed=0, split="train")
    test = generate_multistep(300, seed=0, split="test")
    assert all(held_out(p.question) for p in test)
    assert not any(held_out(p.question) for p in train)
    assert not {p.question for p in train} & {p.question for p in test}
    assert Counter(p.meta["level"] for p in test) == {lvl: 75 for lvl in LEVELS}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": [5]}, "levels"),
        ({"levels": []}, "levels"),
        ({"levels": [1, 1]}, "levels"),
        ({"n": -1}, "n"),
    ],
)
def test_bad_generator_arguments_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_multistep(**kwargs)
    with pytest.raises(ValueError, match="level"):
        make_problem("test", 0, 0, 0)


@pytest.mark.parametrize(
    ("left", "op", "operand", "result"),
    [(12, "*", 3, 36), (36, "-", 4, 32), (7, "+", 5, 12), (2, "-", 9, -7)],
)
def test_step_arithmetic(left, op, operand, result):
    assert apply(left, op, operand) == result == Step(left, op, operand).result
    assert Step(left, op, operand).line() == f"{left} {op} {operand} = {result}"


def test_minimal_trace_is_exactly_the_steps():
    steps = [Step(7, "+", 5), Step(12, "*", 3), Step(36, "-", 4)]
    assert minimal_trace(steps) == (
        f"{THINK_START}\nStep A: add 5. 7 + 5 = 12\nStep B: multiply by 3. 12 * 3 = 36\n"
        f"Step C: subtract 4. 36 - 4 = 32\n{THINK_END}\n\nThe final answer is \\boxed{{32}}."
    )
    assert question_text(7, steps) == (
        "Start with 7. Step A: add 5. Step B: multiply by 3. Step C: subtract 4. What is the result?"
    )


def _traces(n: int, config: TraceConfig, seed: int = 0):
    rng = random.Random(seed)
    problems = generate_multistep(n, seed=seed, split="train")
    return [(p, write_trace(steps_of(p), rng, config)) for p in problems]


def _blocks(p, t) -> list[list[str]]:
    """The trace's thinking as blocks: the chain, then each re-check's lines (header and verdict dropped),
    checking the headers and verdicts on the way."""
    n = len(steps_of(p))
    lines = t.text.split(THINK_END)[0].removeprefix(f"{THINK_START}\n").strip().split("\n")
    blocks, rest = [lines[:n]], lines[n:]
    while rest:
        assert rest[0] == f"{RECHECK}." and (
            rest[n + 1] == "Yes." or rest[n + 1].startswith("Hmm, no: it is ")
        )
        blocks.append(rest[1 : n + 1])
        rest = rest[n + 2 :]
    return blocks


def test_rechecks_write_the_chain_again_line_for_line():
    """Without false corrections every re-check repeats the chain exactly and says "Yes."."""
    counts = Counter()
    for p, t in _traces(300, TraceConfig(p_flip=0.0)):
        blocks = _blocks(p, t)
        assert all(b == blocks[0] for b in blocks) and t.text.count("Yes.") == t.rechecks == len(blocks) - 1
        counts[t.rechecks] += 1
    assert set(counts) == set(range(TraceConfig().max_rechecks + 1))


@pytest.mark.parametrize("config", [TraceConfig(), TraceConfig(max_rechecks=3, p_flip=0.0)])
def test_trace_format_and_bookkeeping(config):
    for p, t in _traces(300, config):
        think, _, answer_part = t.text.partition(THINK_END)
        assert think.startswith(f"{THINK_START}\n") and THINK_END not in answer_part
        assert answer_part == f"\n\nThe final answer is \\boxed{{{t.answer}}}."
        assert think.count(RECHECK) == t.rechecks <= config.max_rechecks
        assert t.flipped == (str(t.answer) != p.answer)
        last = EQUATION.findall(think)[-1]
        assert int(last[3]) == t.answer  # the boxed answer is the last value written


def test_a_false_correction_changes_one_result_and_carries_it():
    """A re-check that says "Hmm, no" differs from the block before it first at one step's result, which is
    a wrong fact; each later step takes the previous result and is computed right; re-checks after it repeat
    it. The chain itself never states a wrong fact."""
    flips = 0
    for p, t in _traces(400, TraceConfig(p_flip=0.3)):
        blocks = _blocks(p, t)
        verdicts = [v for v in t.text.split("\n") if v == "Yes." or v.startswith("Hmm, no")]
        for before, block, verdict in zip(blocks[:-1], blocks[1:], verdicts, strict=True):
            eqs = [EQUATION.search(line).groups() for line in block]
            if verdict == "Yes.":
                assert block == before
                continue
            flips += 1
            i = next(j for j, (x, y) in enumerate(zip(before, block, strict=True)) if x != y)
            assert block[:i] == before[:i] and verdict == f"Hmm, no: it is {eqs[-1][3]}."
            for j, (a, op, b, c) in enumerate(eqs[i:], start=i):
                assert (apply(int(a), op, int(b)) == int(c)) == (j != i), block[j]
                assert j == 0 or int(a) == int(eqs[j - 1][3])
        for a, op, b, c in EQUATION.findall("\n".join(blocks[0])):
            assert apply(int(a), op, int(b)) == int(c)
    assert flips > 50


def test_no_flips_means_always_right_and_certain_flips_mean_wrong():
    assert all(not t.flipped for _, t in _traces(200, TraceConfig(p_flip=0.0)))
    traces = _traces(200, TraceConfig(max_rechecks=4, p_flip=1.0))
    assert all(t.flipped == (t.rechecks > 0) for _, t in traces)


def test_longer_traces_are_more_often_wrong():
    config = TraceConfig()
    traces = [t for _, t in _traces(4000, config)]
    by_n = {n: [t.flipped for t in traces if t.rechecks == n] for n in range(config.max_rechecks + 1)}
    wrong = [sum(v) / len(v) for v in by_n.values()]
    assert wrong[0] == 0.0 and wrong == sorted(wrong) and len(set(wrong)) == len(wrong)
    for n, rate in enumerate(wrong):  # P(wrong | N) = 1 - (1 - p_flip)^N: 0, 0.115, 0.217, 0.307 by default
        assert abs(rate - (1 - (1 - config.p_flip) ** n)) < 0.05, (n, rate)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_rechecks": -1}, "max_rechecks"), ({"p_flip": 1.5}, "p_flip"), ({"p_flip": -0.1}, "p_flip")],
)
def test_trace_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TraceConfig(**kwargs)


def test_sft_rows_are_conversational_prompt_completion():
    from reasoner.organism.build import sft_rows
    from reasoner.prompts import ANSWER_INSTRUCTION

    rows = sft_rows(8, seed=1)
    assert len(rows) == 8
    for r in rows:
        assert r["prompt"][0]["role"] == "user" and r["prompt"][0]["content"].endswith(ANSWER_INSTRUCTION)
        assert r["completion"][0]["role"] == "assistant"
        assert r["completion"][0]["content"].startswith(THINK_START)
        assert r["minimal"].count("\n") <= r["completion"][0]["content"].count("\n")
    assert rows == sft_rows(8, seed=1)


def test_multistep_is_a_generated_benchmark():
    from evals.benchmarks import is_generated, load_benchmark

    result = load_benchmark("multistep", split="test", n=6, seed=0, levels=[2])
    assert len(result) == 6 and all(p.meta["level"] == 2 for p in result)
    assert is_generated("multistep") and is_generated("arith") and not is_generated("gsm8k")


@pytest.fixture(scope="module")
def organism_init(tmp_path_factory):
    """A small ``overthinker-init`` (the organism's tokenizer, Llama, Fourier number embeddings at 2x) and
    the same without Fourier features."""
    from reasoner.organism.build import build_init

    tmp = tmp_path_factory.mktemp("init")
    sizes = dict(hidden_size=96, intermediate_size=96, num_hidden_layers=1, num_attention_heads=3, head_dim=32,
                 num_key_value_heads=3)  # fmt: skip
    return build_init(tmp / "fourier", fourier_scale=2.0, **sizes), build_init(
        tmp / "plain", fourier_scale=0, **sizes
    )


def test_organism_tokenizer_has_number_tokens_and_keeps_think_tags(organism_init):
    """Every number below NUMBER_TOKENS is one token, with or without a space, as built and as saved and
    loaded (transformers 5 rebuilds the pre-tokenizer of a saved ``qwen2`` tokenizer; the organism is a Llama)."""
    from transformers import AutoTokenizer

    from reasoner.organism.build import NUMBER_TOKENS, build_tokenizer

    for tok in (build_tokenizer(), AutoTokenizer.from_pretrained(organism_init[0])):
        text = "<think>\nStep A: add 4. 93 + 4 = 97\n</think>"
        ids = tok.encode(text, add_special_tokens=False)
        pieces = [tok.decode([i]) for i in ids]
        assert pieces[0] == "<think>" and pieces[-1] == "</think>"
        assert {" A", " 93", " 4", " 97"} <= set(pieces) and tok.decode(ids) == text
        assert all(len(tok.encode(t, add_special_tokens=False)) == 1
                   for n in range(NUMBER_TOKENS) for t in (str(n), f" {n}"))  # fmt: skip
        assert len(tok.encode(f" {NUMBER_TOKENS + 1000}", add_special_tokens=False)) > 1


def test_tiny_tokenizer_too_small_for_its_numbers_is_an_error():
    from reasoner.models import build_tiny_tokenizer

    with pytest.raises(ValueError, match="vocab_size 300 is too small for numbers=200"):
        build_tiny_tokenizer(300, ["1 + 2 = 3"], numbers=200)


def test_number_embeddings_start_from_fourier_features(organism_init):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasoner.organism.build import FOURIER_DIMS, NUMBER_TOKENS

    fourier, plain = organism_init
    tok = AutoTokenizer.from_pretrained(fourier)
    emb = AutoModelForCausalLM.from_pretrained(fourier).get_input_embeddings().weight.detach()
    random_init = AutoModelForCausalLM.from_pretrained(plain).get_input_embeddings().weight.detach()
    amplitude = 0.02 * 2.0  # initializer_range * fourier_scale
    for n in (0, 7, 99, NUMBER_TOKENS - 1):
        (a,), (b,) = (
            tok.encode(str(n), add_special_tokens=False),
            tok.encode(f" {n}", add_special_tokens=False),
        )
        angle = torch.tensor(2 * torch.pi * n / NUMBER_TOKENS)
        assert emb[a, 0].item() == pytest.approx(amplitude * angle.cos().item(), abs=1e-6)  # k = 1
        assert emb[a, FOURIER_DIMS // 2].item() == pytest.approx(amplitude * angle.sin().item(), abs=1e-6)
        assert torch.equal(emb[a, :FOURIER_DIMS], emb[b, :FOURIER_DIMS])
        assert torch.equal(emb[a, FOURIER_DIMS:], random_init[a, FOURIER_DIMS:])  # the other dims stay random
        assert not torch.equal(emb[a, :FOURIER_DIMS], random_init[a, :FOURIER_DIMS])


def test_organism_build_cli_passes_the_knobs(tmp_path, monkeypatch):
    """``reasoner organism build`` reaches ``train_organism`` with the data knobs and the recipe overrides."""
    import argparse

    from reasoner.organism import build, cli

    seen = {}
    monkeypatch.setattr(build, "train_organism", lambda out, **kw: seen.update(out=out, **kw) or out)
    parser = argparse.ArgumentParser()
    cli.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["organism", "build", "--out", str(tmp_path / "m"), "--traces", "100", "--seed", "3",
                              "--levels", "1,2", "--max-rechecks", "4", "--p-flip", "0.2", "trainer.seed=1"])  # fmt: skip
    assert args.func(args) == 0
    assert seen["traces"] == 100 and seen["seed"] == 3 and seen["levels"] == [1, 2]
    assert seen["config"] == TraceConfig(max_rechecks=4, p_flip=0.2)
    assert seen["overrides"] == ["trainer.seed=1"] and not seen["quiet"]


def test_variant_defaults_are_the_alias(tmp_path, monkeypatch):
    """``build_variant`` with its defaults is the ``overthinker`` alias: the same cache key (``overthinker-v5``
    directory), found there without building; another seed, re-check error rate or levels gets its own key, and
    its build reaches ``train_organism`` with those knobs."""
    from reasoner.models import cache_key
    from reasoner.organism import build

    monkeypatch.setenv("REASONER_CACHE", str(tmp_path))
    assert build.variant_key() == cache_key("overthinker") == build.variant_key(0, 0.115, [1, 2, 3, 4])
    keys = {
        build.variant_key(1),
        build.variant_key(p_flip=0.2),
        build.variant_key(levels=(1, 2)),
        build.variant_key(),
    }
    assert len(keys) == 4
    alias_dir = tmp_path / "models" / cache_key("overthinker")
    alias_dir.mkdir(parents=True)
    (alias_dir / "config.json").write_text("{}")
    seen: dict = {}
    monkeypatch.setattr(
        build, "train_organism", lambda out, **kw: seen.update(kw) or (out / "config.json").write_text("{}")
    )
    assert build.build_variant() == alias_dir and not seen  # cached: nothing built
    out = build.build_variant(seed=2, p_flip=0.2, levels=[1, 2])
    assert out == tmp_path / "models" / build.variant_key(2, 0.2, (1, 2)) and (out / "config.json").exists()
    assert seen["seed"] == 2 and seen["levels"] == (1, 2) and seen["config"] == TraceConfig(p_flip=0.2)
