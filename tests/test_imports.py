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


def third_party_imports() -> set[str]:
    """The top-level names of everything outside the package that its modules import."""
    names: set[str] = set()
    for path in (ROOT / "hyperlr").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - {"hyperlr", "__future__"}


# One interpreter imports every third-party library the package uses (torch alone takes seconds
# to import), then forks a child per module of the package, which imports that module alone:
# each child starts with none of the package's modules loaded, as a fresh interpreter would.
IMPORT_EACH_ALONE = """
import importlib, os, sys, traceback
for name in sys.argv[2].split(","):
    try:
        importlib.import_module(name)
    except Exception:
        pass  # an optional library that is not installed: the module's own import will say so
assert not [m for m in sys.modules if m == "hyperlr" or m.startswith("hyperlr.")]
failed = []
for module in sys.argv[1].split(","):
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            sys.stderr.write(f"== {module}\\n{traceback.format_exc()[-2000:]}")
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        failed.append(module)
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_alone():
    """Every module of the package imports with none of the others loaded before it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "agg"}
    third_party = ",".join(sorted(third_party_imports()))
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, ",".join(MODULES), third_party],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, "modules that fail to import alone:\n" + result.stderr


def test_a_module_that_fails_alone_is_reported(tmp_path):
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("import json\n")
    # Works only when `good` happens to be imported first: the kind of failure this catches.
    (package / "bad.py").write_text("import sys\nsys.modules['planted.good'].loads\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, "planted.good,planted.bad", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "== planted.bad" in result.stderr and "planted.good" not in result.stderr.split("==")[0]
    assert "== planted.good" not in result.stderr
