"""What a chapter glued, shown in the notebook itself: for a rerun outside the book.

The experiment chapters glue their figures and numbers with ``display=False`` so that the book
shows each once, where the prose places it (``{glue:figure}``, ``{glue:text}``). A notebook run
by Jupyter or papermill does not resolve those roles: its markdown shows the raw roles and no
figure. :func:`glue` records what it glues in the kernel, and :func:`show_glued`, called by a
chapter's last cell (tagged ``remove-cell``, which the book build drops), displays every recorded
figure and one table of the recorded numbers and sentences, so that a rerun's notebook carries
its own results.

:func:`fill_glue` goes further, after the run: it rewrites the executed notebook's markdown so that
each ``{glue:text}`` role shows the value this run glued (formatted as the book formats it) and
each ``{glue:figure}`` directive shows this run's figure with its caption, and it turns the other
MyST roles and admonitions into plain Markdown. From the shell::

    papermill --cwd chapters chapters/05_image_classification.ipynb out.ipynb -p ...
    python -m hyperlr.lab.report out.ipynb            # rewrites out.ipynb in place
"""

from __future__ import annotations

import argparse
import base64
import numbers
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import require

require(("IPython", "matplotlib", "myst_nb", "nbformat"), "book")

import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
from IPython.display import Markdown, display  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from myst_nb import glue as _myst_glue  # noqa: E402
from myst_nb.core.variables import format_plain_text  # noqa: E402
from myst_nb.ext.glue import GLUE_PREFIX  # noqa: E402

__all__ = ["fill_glue", "fill_glue_file", "glue", "glued", "glued_values", "show_glued"]

#: Everything glued in this kernel through :func:`glue`, by name, in the order first glued.
_GLUED: dict[str, Any] = {}


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Glue ``variable`` as ``name`` for the book (``myst_nb.glue``) and record it here.

    Same signature and behaviour as :func:`myst_nb.glue`; gluing a name again replaces the
    recorded value, as the book keeps the last one.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    _GLUED[name] = variable
    _myst_glue(name, variable, display=display)


def glued() -> dict[str, Any]:
    """A copy of the values glued so far through :func:`glue`, by name."""
    return dict(_GLUED)


def _readable(value: Any) -> str:
    """A number with four significant digits (integers whole), anything else as ``str``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def glued_values() -> pd.DataFrame:
    """The glued numbers and texts (not figures, not tables), one row per name.

    Columns: ``value`` (four significant digits for non-integers, the text as glued otherwise).
    """
    rows = {
        name: _readable(value)
        for name, value in _GLUED.items()
        if isinstance(value, (str, numbers.Number))
    }
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)}).rename_axis("glued name")


def show_glued() -> None:
    """Display every figure glued so far, then any other glued object, then the values table.

    Meant for a chapter's last cell, tagged ``remove-cell``: the book drops that cell (it shows
    the glued items where its prose pastes them), while a notebook run by Jupyter or papermill
    keeps its outputs.
    """
    display(Markdown("## What this run glued\n\nThe figures and numbers the prose above pastes."))
    for name, value in _GLUED.items():
        if isinstance(value, Figure):
            display(Markdown(f"**{name}**"))
            display(value)
    for name, value in _GLUED.items():
        if not isinstance(value, (Figure, str, numbers.Number)):
            display(Markdown(f"**{name}**"))
            display(value)
    with pd.option_context("display.max_rows", None, "display.max_colwidth", None):
        display(glued_values())


# --- Filling an executed notebook's markdown with what it glued --------------------------------

_GLUE_TEXT = re.compile(r"\{glue:text\}`(?P<key>[^`]+)`")
# A fenced directive (``` or :::) with its argument, its :option: lines and its body.
_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<argument>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_OPTION = re.compile(r"^:[\w-]+:.*$\n?", re.MULTILINE)
_ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<content>[^`]+)`")
_TARGET = re.compile(r"^\([\w:.-]+\)=[ \t]*\n", re.MULTILINE)
_EQUATION_LABEL = re.compile(r"(\$\$)[ \t]*\([\w:.-]+\)[ \t]*$", re.MULTILINE)


def _glued_outputs(notebook: nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    """Each glued name's mime bundle (prefix removed), from the notebook's code-cell outputs."""
    found: dict[str, dict[str, Any]] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if not scrapbook or "name" not in scrapbook:
                continue
            found[scrapbook["name"]] = {
                key.removeprefix(GLUE_PREFIX): value for key, value in output["data"].items()
            }
    return found


def _plain_role(role: str, content: str) -> str:
    """A MyST role outside Sphinx: the text a reader needs, without the markup."""
    text, _, label = content.partition(" <")
    if role.startswith("cite"):
        return "[" + "; ".join(key.strip() for key in content.split(",")) + "]"
    if role == "math":
        return f"${content}$"
    if role == "eq":
        return f"equation ({content})"
    if label and label.endswith(">"):
        return text.replace("{number}", "").strip() or label[:-1]
    return f"*{content}*" if role in ("ref", "numref", "doc") else content


class _Filler:
    """Rewrites one markdown cell at a time; counts the names the run did not glue."""

    def __init__(self, glued: dict[str, dict[str, Any]]) -> None:
        self.glued = glued
        self.missing: list[str] = []

    def text(self, match: re.Match[str]) -> str:
        key, _, spec = match["key"].rpartition(":")
        if not key:  # no format spec: the role's text is the name
            key, spec = spec, "s"
        data = self.glued.get(key)
        if data is None or "text/plain" not in data:
            self.missing.append(key)
            return f"[{key}: not glued by this run]"
        return format_plain_text(data["text/plain"], spec)

    def directive(self, match: re.Match[str], cell: nbformat.NotebookNode) -> str:
        name, argument = match["name"], match["argument"].strip()
        body = _OPTION.sub("", match["body"]).strip()
        if name == "glue:figure":
            caption = f"\n\n*{body}*" if body else ""
            return self.figure(argument, cell) + caption + "\n"
        if name == "math":
            return f"$$\n{body}\n$$\n"
        title = argument or name.capitalize()
        quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
        return f"> **{title}**\n>\n{quoted}\n"

    def figure(self, key: str, cell: nbformat.NotebookNode) -> str:
        data = self.glued.get(key)
        if data is None:
            self.missing.append(key)
            return f"[{key}: not glued by this run]"
        if "image/png" in data:
            png = data["image/png"]
            if isinstance(png, bytes):
                png = base64.b64encode(png).decode("ascii")
            cell.setdefault("attachments", {})[f"{key}.png"] = {"image/png": png}
            return f"![{key}](attachment:{key}.png)"
        if "text/html" in data:
            return "".join(data["text/html"])
        return "```\n" + "".join(data.get("text/plain", "")) + "\n```"

    def cell(self, cell: nbformat.NotebookNode) -> None:
        source = _DIRECTIVE.sub(lambda m: self.directive(m, cell), cell.source)
        source = _GLUE_TEXT.sub(self.text, source)
        source = _ROLE.sub(lambda m: _plain_role(m["role"], m["content"]), source)
        source = _EQUATION_LABEL.sub(r"\1", _TARGET.sub("", source))
        cell.source = source


def fill_glue(notebook: nbformat.NotebookNode) -> list[str]:
    """Rewrite ``notebook``'s markdown cells in place with the values its outputs glued.

    ``{glue:text}`name:spec``` becomes the glued text/plain value, formatted with ``spec`` as
    the book formats it; a ``{glue:figure}`` directive becomes the glued image (a cell
    attachment) followed by its caption in italics; admonitions become block quotes, other roles
    their plain text, and ``(label)=`` targets disappear. Returns the names the markdown pastes
    but the run did not glue (each shown in the text as ``[name: not glued by this run]``).

    Raises ``ValueError`` when the notebook glued nothing: it has not been executed.
    """
    glued = _glued_outputs(notebook)
    if not glued:
        raise ValueError(
            "notebook: it has no glued outputs; run it first (papermill or Jupyter), then fill it"
        )
    filler = _Filler(glued)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            filler.cell(cell)
    return filler.missing


def fill_glue_file(path: str | Path, output: str | Path | None = None) -> list[str]:
    """:func:`fill_glue` on the file ``path``, written to ``output`` (default: ``path``)."""
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"path must be an existing .ipynb file, got {str(path)!r}")
    notebook = nbformat.read(path, as_version=4)
    missing = fill_glue(notebook)
    nbformat.write(notebook, Path(output) if output is not None else path)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hyperlr.lab.report",
        description="Fill an executed chapter's markdown with the numbers and figures it glued.",
    )
    parser.add_argument("notebook", help="an executed notebook, e.g. papermill's output")
    parser.add_argument("-o", "--output", help="write here instead of rewriting the notebook")
    args = parser.parse_args(argv)
    try:
        missing = fill_glue_file(args.notebook, args.output)
    except ValueError as error:
        parser.error(str(error))
    target = args.output or args.notebook
    print(f"filled {target}", end="")
    print(f"; not glued by this run: {', '.join(sorted(set(missing)))}" if missing else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
