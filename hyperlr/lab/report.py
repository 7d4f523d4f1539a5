"""What a chapter glued, shown in the notebook itself: for a rerun outside the book.

The experiment chapters glue their figures and numbers with ``display=False`` so that the book
shows each once, where the prose places it (``{glue:figure}``, ``{glue:text}``). A notebook run
by Jupyter or papermill does not resolve those roles: its markdown shows the raw roles and no
figure. :func:`glue` records what it glues in the kernel, and :func:`show_glued`, called by a
chapter's last cell (tagged ``remove-cell``, which the book build drops), displays every recorded
figure and one table of the recorded numbers and sentences, so that a rerun's notebook carries
its own results.
"""

from __future__ import annotations

import numbers
from typing import Any

from . import require

require(("IPython", "matplotlib", "myst_nb"), "book")

import pandas as pd  # noqa: E402
from IPython.display import Markdown, display  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from myst_nb import glue as _myst_glue  # noqa: E402

__all__ = ["glue", "glued", "glued_values", "show_glued"]

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
