"""``arith``: arithmetic and algebra problems generated offline with reasoning-gym, levels 1-5.

reasoning-gym (Stojanovski et al. 2025, arXiv 2505.24760, https://arxiv.org/abs/2505.24760) generates the
problems deterministically for a seed; each level maps to one of its generators with difficulty knobs
(``ARITH_LEVELS``). Every gold answer is re-checked exactly with rational arithmetic, because reasoning-gym's
``basic_arithmetic`` floor-divides; problems that fail the check are skipped.
"""

from __future__ import annotations

import ast
import operator
import zlib
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from reasoner.organism.problems import check_levels
from reasoner.types import Problem

__all__ = ["ARITH_LEVELS", "generate_arith"]

_NO_NEG = dict(allow_negation=False)  # no "-( ... )" groups (negative numbers still occur)
ARITH_LEVELS: dict[int, tuple[str, dict[str, Any]]] = {
    1: ("chain_sum", dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1)),
    2: ("chain_sum", dict(min_terms=3, max_terms=4, min_digits=1, max_digits=2)),
    3: (
        "basic_arithmetic",
        dict(min_terms=2, max_terms=3, max_digits=2, operators=("+", "-", "*"), **_NO_NEG),
    ),
    4: ("simple_equations", dict(min_terms=2, max_terms=3, min_value=1, max_value=20)),
    5: ("basic_arithmetic", dict(min_terms=3, max_terms=5, min_digits=2, max_digits=3, **_NO_NEG)),
}
"""Level -> (reasoning-gym generator, its config knobs). 1: a +- b with single digits; 2: chains of 3-4
terms up to 2 digits; 3: +, -, * with precedence and parentheses; 4: linear equations in one variable;
5: 3-5 terms up to 3 digits with exact division."""

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _exact(node: ast.AST, env: Mapping[str, Fraction]) -> Fraction:
    """Exact rational value of an arithmetic AST (numbers, + - * /, unary sign, names from ``env``)."""
    match node:
        case ast.Expression(body=body):
            return _exact(body, env)
        case ast.Constant(value=int() as value):
            return Fraction(value)
        case ast.Name(id=name) if name in env:
            return env[name]
        case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
            inner = _exact(operand, env)
            return -inner if isinstance(op, ast.USub) else inner
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPS:
            return _OPS[type(op)](_exact(left, env), _exact(right, env))
    raise ValueError(f"unsupported expression: {ast.dump(node)}")


def _arith_gold_ok(item: Mapping[str, Any]) -> bool:
    """Re-check a generated gold exactly (reasoning-gym's ``basic_arithmetic`` floor-divides)."""
    meta = item["metadata"]
    try:
        value = Fraction(int(item["answer"]))
        if "expression" in meta:
            return _exact(ast.parse(meta["expression"], mode="eval"), {}) == value
        lhs, rhs = (ast.parse(side.strip(), mode="eval") for side in meta["equation"].split("="))
        env = {meta["variable"]: value}
        return _exact(lhs, env) == _exact(rhs, env)
    except (KeyError, ValueError, SyntaxError, ZeroDivisionError):
        return False


def _arith_level(level: int, count: int, seed: int, split: str) -> list[Problem]:
    """The first ``count`` problems of one level whose gold re-checks; ids name the generator index."""
    import reasoning_gym  # ~2 s import (it loads all its generators); only when arith is used

    generator, knobs = ARITH_LEVELS[level]
    base_seed = zlib.crc32(f"arith/{split}/{seed}/{level}".encode())  # independent stream per level
    dataset = reasoning_gym.create_dataset(generator, seed=base_seed, size=2 * count + 20, **knobs)
    problems: list[Problem] = []
    for idx in range(len(dataset)):
        if len(problems) == count:
            break
        item = dataset[idx]
        if not _arith_gold_ok(item):
            continue
        detail = {k: item["metadata"][k] for k in ("expression", "equation") if k in item["metadata"]}
        meta = dict(benchmark="arith", split=split, level=level, generator=generator, seed=seed, index=idx)
        pid = f"arith-{split}-s{seed}-L{level}-{idx}"
        problems.append(Problem(pid, item["question"], item["answer"], meta | detail))
    if len(problems) < count:
        raise RuntimeError(
            f"arith level {level}: only {len(problems)} of {count} problems passed the gold check"
        )
    return problems


def generate_arith(
    n: int = 50, seed: int = 0, levels: Sequence[int] = (1, 2, 3, 4, 5), split: str = "test"
) -> list[Problem]:
    """``n`` problems cycling through ``levels`` (problem i has level ``levels[i % len(levels)]``).

    Deterministic in (n, seed, levels, split); a larger ``n`` extends a smaller one, and ids
    (``arith-<split>-s<seed>-L<level>-<index>``) do not depend on ``n``. Different splits draw from
    different seed streams, so ``train`` and ``test`` do not share problems by construction.
    """
    levels = check_levels(n, levels, tuple(ARITH_LEVELS))
    per_level = {
        lvl: _arith_level(lvl, len(range(i, n, len(levels))), seed, split) for i, lvl in enumerate(levels)
    }
    return [per_level[levels[i % len(levels)]][i // len(levels)] for i in range(n)]
