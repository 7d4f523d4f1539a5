"""Every module imports on its own, and the package's modules import each other without a cycle.

A cycle between two modules can hide for a long time: it works while one of them happens to be
imported first, or while one side imports the other inside a function. So each module is
imported alone in a fresh interpreter, and the graph of the package's own imports -- those at
the top of a module and those inside its functions alike, ``TYPE_CHECKING`` blocks aside -- is
checked to be acyclic.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "hyperlr").rglob("*.py")
)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports at run time, anywhere in its code."""
    path = ROOT / Path(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module if path.is_dir() else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            # `from . import x` and `from .pkg import module` import modules too.
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source.read_text()))
    return {name for name in found if name in MODULES and name != module}


def test_the_module_list_is_complete():
    assert {"hyperlr", "hyperlr.schedulers", "hyperlr.lab", "hyperlr.lab.data"} <= set(MODULES)


def test_the_package_imports_have_no_cycle():
    graph = {module: imports_of(module) for module in MODULES}
    # A package's __init__ runs before its modules; an edge from a module to its own package
    # is not a cycle of module code, so only edges between modules (and into other packages)
    # are followed.
    graph = {
        module: {t for t in targets if not module.startswith(t + ".")}
        for module, targets in graph.items()
    }
    state: dict[str, str] = {}
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target)
        path.pop()
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            walk(module)


def test_a_planted_cycle_is_found(tmp_path, monkeypatch):
    """The graph sees an import inside a function (the form the data <-> operator cycle had)."""
    assert "hyperlr.lab.splits" in imports_of("hyperlr.lab.operator")
    assert "hyperlr.lab.data" not in imports_of("hyperlr.lab.operator")
    fake = tmp_path / "hyperlr" / "lab"
    fake.mkdir(parents=True)
    (fake / "operator.py").write_text("def f():\n    from .data import data_dir\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imports_of("hyperlr.lab.operator") == {"hyperlr.lab.data"}


def test_each_module_imports_alone():
    """``python -c "import <module>"`` for every module, several interpreters at a time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "agg"}

    def import_alone(module: str) -> tuple[str, subprocess.CompletedProcess]:
        command = [sys.executable, "-c", f"import {module}"]
        return module, subprocess.run(
            command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=600
        )

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        done = list(pool.map(import_alone, MODULES))
    failed = {module: result.stderr[-2000:] for module, result in done if result.returncode}
    assert not failed, "modules that fail to import alone:\n" + "\n".join(
        f"== {module}\n{error}" for module, error in failed.items()
    )
