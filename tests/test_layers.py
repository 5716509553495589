"""The package's layers, read off its imports (every import statement, also those inside functions):
each layer imports only the layers below it, and no modules import each other in a cycle.

    engine  ←  evaluation  ←  course  ←  widgets, audit

``gradcam_helpers/__init__.py`` (the flat public API) names modules as strings and imports them on
first use; it is the one module above every layer.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gradcam_helpers

PACKAGE = Path(gradcam_helpers.__file__).resolve().parent

#: layer of each top-level part of the package (a module or a subpackage), bottom first
LAYERS = {"engine": 0, "evaluation": 1, "course": 2, "widgets": 3, "audit": 3}


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` (module ``name``) imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # the deepest module of the package that the dotted name refers to
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                add(full if full in modules else origin)
    found.discard(name)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module name → the modules of the same package it imports."""
    files = {module_name(p, root, package): p for p in root.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, name, modules) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_of(module: str, package: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]], package: str) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports a layer above its own."""
    bad = []
    for importer, targets in graph.items():
        own = layer_of(importer, package)
        if own is None:  # the package's own __init__ (the lazy public API)
            continue
        for target in targets:
            other = layer_of(target, package)
            if other is None or other > own:
                bad.append((importer, target))
    return sorted(bad)


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}
    assert parts == set(LAYERS)


def test_no_import_cycles():
    assert find_cycle(import_graph(PACKAGE, "gradcam_helpers")) is None


def test_no_layer_imports_a_layer_above_it():
    assert upward_imports(import_graph(PACKAGE, "gradcam_helpers"), "gradcam_helpers") == []


def test_the_checks_catch_a_late_import_cycle_and_an_upward_import(tmp_path):
    root = tmp_path / "pkg"
    for folder in ("engine", "course"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    # engine.a ⇄ engine.b, the second import hidden inside a function; engine.c imports course.d
    (root / "engine" / "a.py").write_text("from . import b\n")
    (root / "engine" / "b.py").write_text("def f():\n    from .a import g\n")
    (root / "engine" / "c.py").write_text("from ..course.d import h\n")
    (root / "course" / "d.py").write_text("h = 1\n")
    graph = import_graph(root, "pkg")
    assert graph["pkg.engine.a"] == {"pkg.engine.b"} and graph["pkg.engine.b"] == {"pkg.engine.a"}
    assert set(find_cycle(graph)) == {"pkg.engine.a", "pkg.engine.b"}
    assert upward_imports(graph, "pkg") == [("pkg.engine.c", "pkg.course.d")]


@pytest.mark.parametrize("name", sorted(gradcam_helpers.__all__))
def test_the_flat_public_api_still_resolves(name):
    assert getattr(gradcam_helpers, name) is not None
