"""Write (or check) each chapter's install cell from the repository named in _config.yml.

A chapter opened from its launch button on Colab has no hyperlr. Its first code cell, tagged
``remove-cell`` (the book does not show it), clones the repository that ``_config.yml`` names,
installs it with the ``book`` extra and moves to its chapters folder, so the chapter's imports,
committed results and relative paths work. Where hyperlr is importable (the book build, Binder,
a local clone) the cell does nothing. ``_config.yml`` stays the one place naming the
repository: rerun this after changing it, and ``--check`` (used by the tests) fails when a
chapter disagrees.

    python tools/install_cells.py            # write the cells
    python tools/install_cells.py --check    # exit 1, listing the chapters that differ
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CELL_ID = "install-hyperlr"
TAGS = ["remove-cell", CELL_ID]

TEMPLATE = """\
# On Colab, or wherever hyperlr is missing: clone the book's repository, install it with the
# book's extra and work from its chapters folder (results/ and relative paths then resolve).
# Where hyperlr is installed (the book build, Binder, a local clone) this does nothing.
# Written by tools/install_cells.py from the repository in _config.yml; do not edit here.
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

if importlib.util.find_spec("hyperlr") is None:
    clone = Path.home() / {name}
    if not clone.exists():
        repository = {url}
        command = ["git", "clone", "--depth", "1", "--branch", {branch}, repository, str(clone)]
        subprocess.run(command, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"{{clone}}[book]"], check=True)
    importlib.invalidate_caches()
    os.chdir(clone / {chapters})"""


def repository(config: Path = ROOT / "_config.yml") -> dict[str, str]:
    """The repository's URL, branch and book folder, as _config.yml gives them."""
    settings = yaml.safe_load(config.read_text())["repository"]
    url = str(settings["url"]).rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"repository.url in {config} must be an https URL, got {url!r}")
    return {
        "url": url,
        "branch": str(settings.get("branch") or "main"),
        "path": str(settings.get("path_to_book") or ""),
    }


def install_source(repo: dict[str, str]) -> str:
    """The install cell's code for ``repo`` (see :func:`repository`)."""
    chapters = "/".join(part for part in (repo["path"].strip("/"), "chapters") if part)
    name = repo["url"].rsplit("/", 1)[-1].removesuffix(".git")
    quoted = {"name": name, "branch": repo["branch"], "url": repo["url"], "chapters": chapters}
    return TEMPLATE.format(**{key: json.dumps(value) for key, value in quoted.items()})


def install_cell(repo: dict[str, str]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(install_source(repo), id=CELL_ID)
    cell.metadata["tags"] = list(TAGS)
    return cell


def is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and CELL_ID in cell.metadata.get("tags", [])


def with_install_cell(notebook, repo: dict[str, str]) -> bool:
    """Put the install cell before the first code cell; True if the notebook changed."""
    wanted = install_cell(repo)
    present = [i for i, cell in enumerate(notebook.cells) if is_install_cell(cell)]
    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    if present == [first_code] and notebook.cells[first_code].source == wanted.source:
        return False
    notebook.cells = [c for c in notebook.cells if not is_install_cell(c)]
    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    notebook.cells.insert(first_code, wanted)
    return True


def chapters() -> list[Path]:
    return sorted((ROOT / "chapters").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report chapters that differ")
    args = parser.parse_args(argv)
    repo = repository()
    stale = []
    for path in chapters():
        notebook = nbformat.read(path, as_version=4)
        if with_install_cell(notebook, repo):
            stale.append(path.name)
            if not args.check:
                nbformat.write(notebook, path)
    if args.check and stale:
        print("install cells differ from _config.yml in: " + ", ".join(stale), file=sys.stderr)
        print("run: python tools/install_cells.py", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote the install cell of {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
