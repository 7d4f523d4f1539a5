"""Execute chapters and keep only the outputs that nbval checks.

Chapters are stored without outputs (the book build and the tests produce them), except for
cells whose first line is ``# NBVAL_CHECK_OUTPUT``: their text output is the reference that
``pytest --nbval-lax`` compares against, so it must be stored. Run this after editing a chapter:

    python tools/refresh_checked_outputs.py chapters/03_using_hyperlr.ipynb
    python tools/refresh_checked_outputs.py --strip-only chapters/*.ipynb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARKER)


def strip(notebook) -> None:
    """Remove every output but those of checked cells, and the other cells' execution counts.

    Checked cells keep their execution counts: nbval refuses a reference cell that has outputs
    but was never run.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if not is_checked(cell):
            cell.execution_count = None
            cell.outputs = []
    notebook.metadata.pop("widgets", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--strip-only", action="store_true", help="do not execute")
    args = parser.parse_args()
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        if not args.strip_only:
            resources = {"metadata": {"path": str(path.parent)}}
            NotebookClient(notebook, timeout=900, resources=resources).execute()
        strip(notebook)
        nbformat.write(notebook, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
