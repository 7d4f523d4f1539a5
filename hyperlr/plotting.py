"""One plotting style for every figure of the book.

Nothing here runs at import time: call :func:`set_style` explicitly at the top of a chapter.
"""

from __future__ import annotations

import matplotlib as mpl
import seaborn as sns

#: Colours used for each scheduler code across the whole book, so a schedule keeps its colour
#: from chapter to chapter.
SCHEDULER_COLORS: dict[str, str] = {
    "N": "#7f7f7f",
    "P": "#1f77b4",
    "C": "#ff7f0e",
    "E": "#8c564b",
    "L": "#17becf",
    "S": "#bcbd22",
    "OC": "#e377c2",
    "CY": "#9467bd",
    "H": "#2ca02c",
    "EH": "#d62728",
    "WH": "#98df8a",
    "WEH": "#ff9896",
    "WC": "#ffbb78",
    "WSD": "#393b79",
}


def set_style(context: str = "notebook") -> None:
    """Apply the book's plotting style (seaborn theme, readable at book width)."""
    sns.set_theme(context=context, style="whitegrid", palette="deep")
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.2),
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "axes.titleweight": "bold",
            "legend.frameon": False,
        }
    )


def budget_palette(budgets) -> dict[int, tuple[float, float, float]]:
    """Map each epoch budget to a colour of one sequential palette (short = light, long = dark)."""
    budgets = sorted(budgets)
    colors = sns.color_palette("viridis_r", n_colors=max(len(budgets), 1))
    return dict(zip(budgets, colors, strict=True))
