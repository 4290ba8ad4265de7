"""The package's layers point one way: no import cycle, no private name across subpackages."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "skcalc"


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: pathlib.Path):
    """(imported module, imported names, at module level?) for every import in a file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, [a.name for a in node.names], id(node) in top
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], id(node) in top


def _graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: set() for m in modules}
    for m, p in modules.items():
        for mod, names, _ in _imports(p):
            if not mod.startswith("skcalc"):
                continue
            targets = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in modules] or [mod]
            for t in targets:
                while t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in modules and t != m:
                    graph[m].add(t)
    return graph


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_modules():
    graph = _graph()
    # A package's __init__ re-exports its modules; edges into an __init__ from its own
    # submodules are the only allowed back-edges (Python resolves them by submodule).
    def edges(m):
        return {t for t in graph[m] if not (m.startswith(t + ".") and t != "skcalc")}

    state: dict = {}
    stack: list = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in edges(m):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_private_name_imported_across_subpackages():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        me = _module_name(path)
        for mod, names, _ in _imports(path):
            if not mod.startswith("skcalc") or _subpackage(mod) == _subpackage(me):
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    offenders.append(f"{me}: from {mod} import {n}")
    assert not offenders, "\n".join(offenders)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n in _graph() if not n.endswith("__main__"))
    code = f"import importlib\nfor n in {names!r}:\n    importlib.import_module(n)\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
