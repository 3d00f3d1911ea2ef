"""The layering of ../shared/DESIGN.md section 1, checked on the source: imports point downward only, counting
imports inside functions (a lazy import is still an arrow), and no module imports itself back in a cycle.

Layers: L0 types/config/sections/overrides/argtypes/clitools; L1 models, prompts, verify, advantages, offpolicy, length_caps,
weights, and ``rewards/`` (which may import only L0-L1); L2 engines; L3 strategies; L4 train, organism, distill,
and ``evals/`` (never train/dist); L5 dist; L6 the composition root (``reasoner/cli.py``, the subcommand CLI
modules and ``reasoner/wiring.py``), which may import anything.

There is no debt: any upward arrow or cycle fails. An import names the module it loads (``from a.b import c``
is an arrow to ``a.b``; a package is its ``__init__``). ``pytest tests/unit/test_layers.py -s`` prints the
package-level import graph (``test_print_the_import_graph``).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping, Set
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reasoner", "rewards", "evals")
ROOTS = ("reasoner.cli", "evals.cli", "reasoner.train.cli", "reasoner.train.merge_cli", "reasoner.distill.cli",
         "reasoner.organism.cli", "reasoner.wiring", "reasoner.probe.cli")  # fmt: skip
"""The composition root: modules that wire names to objects (L6)."""
LAYERS = (
    (
        0,
        (
            "reasoner",
            "reasoner.types",
            "reasoner.config",
            "reasoner.overrides",
            "reasoner.sections",
            "reasoner.argtypes",
            "reasoner.clitools",
            "reasoner.speculation",
        ),
    ),  # fmt: skip
    (
        1,
        (
            "reasoner.models",
            "reasoner.prompts",
            "reasoner.verify",
            "reasoner.advantages",
            "reasoner.offpolicy",
            "reasoner.length_caps",
            "reasoner.weights",
            "rewards",
        ),
    ),  # fmt: skip
    (2, ("reasoner.engines",)),
    (3, ("reasoner.strategies",)),
    (4, ("reasoner.train", "reasoner.organism", "reasoner.distill", "evals", "reasoner.probe")),
    (5, ("reasoner.dist",)),
)
FORBIDDEN = {"evals": ("reasoner.train", "reasoner.dist")}
"""Packages a module may not import even where the layer number allows it (DESIGN: evals never train/dist);
the composition root (ROOTS) is exempt."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module in ROOTS:
        return 6
    best = (-1, -1)  # (prefix length, layer): the longest matching prefix decides
    for number, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), number)
    if best[1] < 0:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return best[1]


@functools.cache
def imports() -> dict[str, frozenset[str]]:
    """Every module of PACKAGES -> the modules of PACKAGES it imports anywhere in its body (parsed once)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
            targets = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets.add(node.module)
            graph[name] = frozenset(t for t in targets if t.split(".")[0] in PACKAGES and t != name)
    return graph


def upward(graph: Mapping[str, Set[str]]) -> set[tuple[str, str]]:
    """(importer, imported package or module) for every arrow that points up or into a forbidden package."""
    found = set()
    for module, targets in graph.items():
        for target in targets:
            forbidden = () if module in ROOTS else FORBIDDEN.get(module.split(".")[0], ())
            banned = next((f for f in forbidden if target == f or target.startswith(f + ".")), None)
            if banned is not None:
                found.add((module, banned))
            elif layer(target) > layer(module):
                found.add((module, target))
    return found


def cycles(graph: Mapping[str, Set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan), targets resolved to known modules."""
    known = set(graph)

    def resolve(target: str) -> str:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        return target

    edges = {m: {resolve(t) for t in ts} - {m} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v] & known:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while not component or v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    for module in imports():
        layer(module)


def test_imports_point_downward():
    found = upward(imports())
    assert found == set(), "upward imports (DESIGN section 1): " + repr(sorted(found))


def test_no_import_cycles():
    found = cycles(imports())
    assert found == set(), "import cycles: " + repr([sorted(c) for c in found])


def _package(module: str) -> str:
    """The package a module belongs to, for the printed graph: ``reasoner.train.cli`` -> ``reasoner.train``;
    top-level modules of ``reasoner`` and the composition root stay themselves."""
    if module in ROOTS or module.count(".") < 2 and module.split(".")[0] == "reasoner":
        return module
    head = ".".join(module.split(".")[:2]) if module.startswith("reasoner.") else module.split(".")[0]
    return head


def package_graph() -> dict[str, set[str]]:
    """``imports()`` collapsed to packages (``_package``), without arrows inside one package."""
    graph: dict[str, set[str]] = {}
    for module, targets in imports().items():
        source = _package(module)
        graph.setdefault(source, set()).update(_package(t) for t in targets)
    return {source: targets - {source} for source, targets in graph.items()}


def test_print_the_import_graph():
    """The package-level import graph, one line per package grouped by layer (``-s`` shows it)."""
    graph = package_graph()
    lines = []
    for number in range(7):
        members = sorted(p for p in graph if layer(p) == number)
        lines.append(f"L{number}:")
        lines += [
            f"  {p} -> {', '.join(sorted(graph[p], key=lambda t: (layer(t), t))) or '(nothing)'}"
            for p in members
        ]
    print("\n".join(lines))
    assert sum(1 for line in lines if line.startswith("  ")) == len(graph)
    assert all(layer(t) <= layer(p) for p, ts in graph.items() for t in ts if p not in ROOTS)


def test_cycles_finds_a_cycle_through_a_package():
    graph = {"a": {"a.b.c"}, "a.b": {"a"}, "d": {"a"}}  # a -> a.b (a.b.c resolves to it) -> a
    assert cycles(graph) == {frozenset({"a", "a.b"})}


@pytest.mark.parametrize(
    ("module", "expected"),
    [("reasoner.types", 0), ("reasoner.verify.pool", 1), ("rewards.length", 1), ("reasoner.engines.vllm", 2),
     ("reasoner.strategies.short_m", 3), ("evals.sweep", 4), ("reasoner.dist.pool", 5), ("evals.cli", 6)],
)  # fmt: skip
def test_layer_table(module, expected):
    assert layer(module) == expected


def test_upward_finds_an_upward_and_a_forbidden_arrow():
    graph = {
        "reasoner.engines.hf": {"reasoner.strategies.base", "reasoner.types"},
        "evals.x": {"reasoner.train.sft"},
    }
    assert upward(graph) == {
        ("reasoner.engines.hf", "reasoner.strategies.base"),
        ("evals.x", "reasoner.train"),
    }


def test_the_checks_find_a_new_upward_arrow_and_a_new_cycle_in_the_real_graph():
    """The real graph plus one synthetic upward arrow (engines -> strategies), then plus one synthetic cycle
    (plots <-> report, which [12] removed): each is found, and nothing else."""
    graph = {m: set(ts) for m, ts in imports().items()}
    graph["reasoner.engines.hf"].add("reasoner.strategies.base")
    assert upward(graph) == {("reasoner.engines.hf", "reasoner.strategies.base")}
    graph = {m: set(ts) for m, ts in imports().items()}
    graph["evals.plots"].add("evals.report")
    assert cycles(graph) == {frozenset({"evals.plots", "evals.report"})}
    assert upward({"evals.cli": {"reasoner.dist"}}) == set()  # the composition root may import anything


DATA_ONLY = ("evals.report", "evals.plots", "evals.console")
"""The report: it depends only on data (``evals.rows``, ``evals.cells``) and metrics, never on how rows are made."""
NOT_FROM_DATA = ("evals.runner", "evals.replay", "evals.sweep", "reasoner.engines", "reasoner.strategies")
VOTE = ("evals.metrics", "reasoner.strategies.voting")
"""The one arrow allowed into the strategies: maj@k uses the majority strategy's vote (one vote path)."""


def reachable(
    graph: Mapping[str, Set[str]], start: str, skip: Set[tuple[str, str]] = frozenset()
) -> set[str]:
    """Every module ``start`` imports, directly or through others (arrows in ``skip`` not followed)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        for target in graph.get(module, ()):
            if (module, target) not in skip and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_report_depends_only_on_data():
    """evals.report, plots and console reach (transitively) none of the runner, the replay proxy, the sweep
    config, the engines or the strategies, apart from metrics' use of the vote."""
    graph = imports()
    for module in DATA_ONLY:
        found = {
            t
            for t in reachable(graph, module, {VOTE})
            for f in NOT_FROM_DATA
            if t == f or t.startswith(f + ".")
        }
        assert found == set(), f"{module} depends on {sorted(found)}"
    assert "reasoner.strategies.voting" in reachable(graph, "evals.report")  # the exception is real
    assert {"evals.runner"} <= reachable(
        {**graph, "evals.cells": {"evals.runner"}}, "evals.plots"
    )  # can fail
