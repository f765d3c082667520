"""The package's shape: no import cycles between files, few loose modules, imports point inward.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a
type-only or deferred import still ties the two files together, and a cycle that works
today only because of the order modules happen to load in breaks on the next refactor.
"""
from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).resolve().parent
# At most this many modules directly under workbench/ (``__init__.py`` not counted).
MAX_LOOSE_MODULES = 3
# The core never reaches out to the faces or the service that wires them together.
INNER = ("engine", "models", "domain", "eval", "adapters", "backends")
OUTER = ("ui", "cli", "api", "service")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The deepest module of the package that ``name`` names (a module or an attribute of one)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The absolute module a ``from ... import`` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")[:len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module of the package) for every import in ``module``'s file."""
    return file_imports(MODULES[module], module)


def file_imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [_resolve(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path)
            # ``from workbench.x import y``: y may be a submodule, else it is a name in x.
            targets = [_resolve(f"{source}.{alias.name}") for alias in node.names]
        else:
            continue
        for target in targets:
            if target is not None and target != module:
                yield node.lineno, target


def _graph() -> dict[str, set[str]]:
    return {m: {t for _, t in imports(m)} for m in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of ``graph``, each sorted, in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through the component's first module, for the failure message."""
    start, members = component[0], set(component)
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return component


def _where(source: str, target: str) -> str:
    lines = sorted(line for line, t in imports(source) if t == target)
    return f"{MODULES[source].relative_to(PACKAGE.parent)}:{lines[0]}"


def test_no_import_cycle_between_files() -> None:
    graph = _graph()
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    described = []
    for component in cycles:
        cycle = _cycle_in(component, graph)
        hops = ", ".join(f"{a} -> {b} ({_where(a, b)})" for a, b in itertools.pairwise(cycle))
        described.append(f"{{{', '.join(component)}}}: {hops}")
    assert not cycles, "import cycles (break them by moving what both need):\n" + "\n".join(described)


def test_the_cycle_finder_sees_type_only_and_deferred_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [c for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
    assert _cycle_in(["a", "b", "c"], graph) == ["a", "b", "c", "a"]
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import workbench.engine.slots as slots\n"
        "from workbench.eval import suite\n"  # a submodule
        "from workbench.engine import Engine\n"  # a name in the package's __init__
        "from . import config\n"  # relative, from workbench/probe.py
        "if TYPE_CHECKING:\n"
        "    from workbench.eval.options import SuiteOptions\n"
        "def later() -> None:\n"
        "    from workbench.errors import InputError\n"
        "import json\n", encoding="utf-8")
    assert sorted(t for _, t in file_imports(source, "workbench.probe")) == [
        "workbench.config", "workbench.engine", "workbench.engine.slots", "workbench.errors",
        "workbench.eval.options", "workbench.eval.suite"]


def test_few_loose_modules_at_the_package_root() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE_MODULES, (
        f"workbench/ has {len(loose)} loose modules ({', '.join(loose)}); at most "
        f"{MAX_LOOSE_MODULES}: put the new one in the subpackage it belongs to")


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == f"workbench.{p}" or module.startswith(f"workbench.{p}.") for p in packages)


def test_inner_layers_never_import_the_faces() -> None:
    wrong = [f"{_where(m, t)} imports {t}" for m in MODULES if _within(m, INNER)
             for t in sorted({t for _, t in imports(m)}) if _within(t, OUTER)]
    assert not wrong, f"{', '.join(INNER)} must not import {', '.join(OUTER)}:\n" + "\n".join(wrong)


def test_no_import_cycle_between_subpackages() -> None:
    """Subpackages depend one way (faces -> service -> inner layers): no two of them import
    each other, even through a third."""
    def package(module: str) -> str:
        return module.split(".")[1] if module.count(".") else module

    graph: dict[str, set[str]] = {}
    for source, targets in _graph().items():
        graph.setdefault(package(source), set()).update(
            package(t) for t in targets if package(t) != package(source))
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"subpackages importing each other: {cycles}"
