"""One plotting style for every figure of the book.

Nothing here runs at import time: call :func:`set_style` explicitly at the top of a chapter.
"""

from __future__ import annotations

from . import require

require(("matplotlib", "seaborn"), "book")

import matplotlib as mpl  # noqa: E402 (after the extra check)
import matplotlib.pyplot as plt  # noqa: E402 (after the extra check)
import numpy as np  # noqa: E402 (after the extra check)
import pandas as pd  # noqa: E402 (after the extra check)
import seaborn as sns  # noqa: E402 (after the extra check)
from matplotlib.figure import Figure  # noqa: E402 (after the extra check)

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
    "SF": "#637939",
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


def _log_tick_label(value: float, _position: float | None = None) -> str:
    """A log-axis tick as a plain number (``0.5``, ``20``) between 1e-3 and 1e4, else as
    ``a×10^k`` (``2×10⁻⁵``), so that ticks between powers of ten read without exponents."""
    if value <= 0:
        return ""
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    exponent = int(np.floor(np.log10(value)))
    mantissa = value / 10.0**exponent
    head = "" if np.isclose(mantissa, 1.0) else f"{mantissa:g}×"
    return f"${head}10^{{{exponent}}}$"


class _LogSteps(mpl.ticker.Locator):
    """Log-axis ticks at the coarsest of 1, (1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 4, 5, 6, 8)
    or 1-9 times each power of ten that puts at least four ticks inside the view."""

    STEPS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2, 3, 4, 5, 6, 8))

    def __call__(self):
        vmin, vmax = sorted(self.axis.get_view_interval())
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        vmin = max(vmin, np.finfo(float).tiny)
        vmax = max(vmax, vmin)
        powers = 10.0 ** np.arange(np.floor(np.log10(vmin)), np.ceil(np.log10(vmax)) + 1)
        ticks = np.array([])
        for subs in (*self.STEPS, tuple(range(1, 10))):
            ticks = np.unique(np.outer(powers, subs).ravel())
            inside = ticks[(ticks >= vmin * (1 - 1e-9)) & (ticks <= vmax * (1 + 1e-9))]
            if len(inside) >= 4:
                break
        return ticks


def log_ticks(axis) -> None:
    """A log scale labelled at 1, 2, 5 (or finer) times each power of ten, as plain numbers
    where they are short, so that a range narrower than a decade still shows four labels."""
    axis.axes.set_yscale("log") if axis.axis_name == "y" else axis.axes.set_xscale("log")
    axis.set_major_locator(_LogSteps())
    axis.set_major_formatter(mpl.ticker.FuncFormatter(_log_tick_label))
    axis.set_minor_locator(mpl.ticker.NullLocator())


def _panel_grid(count: int, columns: int, panel: tuple[float, float], margin: float):
    """A grid of ``count`` panels in ``columns`` columns with shared axes, each ``panel``
    inches wide and high, plus ``margin`` inches of height for the figure's labels."""
    rows = -(-count // columns)
    return plt.subplots(
        rows,
        columns,
        figsize=(panel[0] * columns, panel[1] * rows + margin),
        sharex=True,
        sharey=True,
        squeeze=False,
    )


def _drop_spare_panels(axes, count: int, xlabel: str) -> None:
    """Remove the panels past the first ``count``; the lowest panel left in each column
    carries the x-axis labels, also where the panel below it was removed."""
    used = np.arange(axes.size).reshape(axes.shape) < count
    for ax in axes.flat[count:]:
        ax.remove()
    for column in range(axes.shape[1]):
        kept = axes[used[:, column], column]
        if len(kept):
            kept[-1].xaxis.set_tick_params(labelbottom=True)
            kept[-1].set_xlabel(xlabel)


def budget_palette(budgets) -> dict[int, tuple[float, float, float]]:
    """Map each epoch budget to a colour of one sequential palette (short = light, long = dark)."""
    budgets = sorted(budgets)
    colors = sns.color_palette("viridis_r", n_colors=max(len(budgets), 1))
    return dict(zip(budgets, colors, strict=True))


def plot_budget_curves(
    curves: pd.DataFrame,
    ylabel: str,
    *,
    log_y: bool = False,
    columns: int = 4,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """One panel per scheduler with the seed-mean curve of every budget overlaid.

    ``curves`` is the long frame of :func:`hyperlr.lab.analysis.seed_curves` (or of the authors'
    curves): columns ``scheduler``, ``budget``, ``epoch``, ``mean``, ``min``, ``max``. The band
    around each curve spans the seeds' minimum and maximum. ``ylim`` frames the shared y-axis
    (e.g. to keep one schedule's warm-up epoch from squeezing every other curve).
    """
    schedulers = list(dict.fromkeys(curves["scheduler"]))
    palette = budget_palette(curves["budget"].unique())
    fig, axes = _panel_grid(len(schedulers), columns, (2.6, 2.3), 0.4)
    for ax, scheduler in zip(axes.flat, schedulers, strict=False):
        for budget, group in curves[curves["scheduler"] == scheduler].groupby("budget"):
            color = palette[budget]
            ax.plot(group["epoch"], group["mean"], color=color, lw=1.3, label=f"N = {budget}")
            ax.fill_between(group["epoch"], group["min"], group["max"], color=color, alpha=0.15)
        ax.set_title(scheduler)
        if log_y:
            log_ticks(ax.yaxis)
    if ylim is not None:
        axes.flat[0].set_ylim(*ylim)
    _drop_spare_panels(axes, len(schedulers), "epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    axes.flat[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def _clip_bars(ax, budgets, low, high, color) -> None:
    """Mark the ends of error bars that run past the panel's y-limits with a triangle at the
    edge, pointing outwards, so that a clipped interval is visibly longer than drawn."""
    bottom, top = ax.get_ylim()
    for budget, lo, hi in zip(budgets, low, high, strict=True):
        if hi > top:
            ax.plot(budget, top, "^", color=color, ms=5, clip_on=False)
        if lo < bottom:
            ax.plot(budget, bottom, "v", color=color, ms=5, clip_on=False)


def _final_panels(finals: pd.DataFrame, ylabel: str, log_y: bool, columns: int = 4) -> Figure:
    """Small multiples of :func:`plot_final_vs_budget`: one panel per scheduler on a shared
    y-axis framed by the centres (not the widest interval); bars running past it are clipped
    and marked with a triangle at the edge."""
    from ..metrics import power_fit

    schedulers = list(dict.fromkeys(finals["scheduler"]))
    if not schedulers or not np.isfinite(finals["mean"].to_numpy(dtype=float)).any():
        # Every run diverged (a tiny rerun can): say so instead of drawing nothing.
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no finite final values to draw", ha="center", va="center")
        ax.set_axis_off()
        return fig
    budgets = np.sort(finals["budget"].unique())
    fig, axes = _panel_grid(len(schedulers), columns, (2.4, 2.1), 0.5)
    centres = finals["mean"].to_numpy()
    lo, hi = np.nanmin(centres), np.nanmax(centres)
    if log_y:
        pad = (hi / lo) ** 0.15 if hi > lo else 1.5
        limits = (lo / pad, hi * pad)
    else:
        pad = 0.15 * (hi - lo) if hi > lo else 0.05 * abs(hi) or 0.05
        limits = (lo - pad, hi + pad)
    grid = np.geomspace(budgets[0], budgets[-1], 50)
    for ax, scheduler in zip(axes.flat, schedulers, strict=False):
        for other, group in finals.groupby("scheduler", sort=False):
            if other != scheduler:
                group = group.sort_values("budget")
                ax.plot(group["budget"], group["mean"], color="0.85", lw=0.8, zorder=0)
        group = finals[finals["scheduler"] == scheduler].sort_values("budget")
        color = SCHEDULER_COLORS.get(scheduler)
        ax.errorbar(
            group["budget"],
            group["mean"],
            yerr=[group["mean"] - group["min"], group["max"] - group["mean"]],
            fmt="o",
            ms=4,
            capsize=2,
            lw=0.8,
            color=color,
        )
        if len(group) >= 3:
            ax.plot(grid, power_fit(group["budget"], group["mean"]).predict(grid), color=color)
        ax.set_title(scheduler)
        ax.set_xscale("log")
    for ax in axes.flat[: len(schedulers)]:
        if log_y:
            log_ticks(ax.yaxis)
        ax.set_ylim(*limits)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    for ax, scheduler in zip(axes.flat, schedulers, strict=False):
        group = finals[finals["scheduler"] == scheduler]
        _clip_bars(ax, group["budget"], group["min"], group["max"], SCHEDULER_COLORS.get(scheduler))
    _drop_spare_panels(axes, len(schedulers), "budget N")
    fig.supylabel(ylabel, fontsize="medium")  # one label: a long one cannot collide across rows
    fig.tight_layout()
    return fig


def plot_final_vs_budget(
    curves: pd.DataFrame,
    ylabel: str,
    *,
    log_y: bool = False,
    interval: str = "range",
    panels: bool = False,
) -> Figure:
    """Final seed-mean value against the budget per scheduler, with its power-law fit.

    Error bars span the seeds' range (``interval="range"``) or the 95 % confidence interval of
    the mean (``interval="ci95"``); lines are :func:`hyperlr.metrics.power_fit` fits, drawn on
    log-log axes where they are straight. ``curves`` may instead be the frame of
    :func:`hyperlr.lab.analysis.seed_finals` (``interval="seed_finals"``): points at its
    ``centre``, bars from ``low`` to ``high``. ``panels=True`` draws one panel per scheduler
    (the others in grey behind it), framed by the centres: an interval wider than the frame is
    clipped and marked with a triangle, so one wide interval cannot flatten the rest.
    """
    if interval not in ("range", "ci95", "seed_finals"):
        raise ValueError(f'interval must be "range", "ci95" or "seed_finals", got {interval!r}')
    from ..metrics import power_fit
    from .analysis import final_values

    if interval == "seed_finals":
        finals = curves.rename(columns={"centre": "mean", "low": "min", "high": "max"})
    else:
        finals = final_values(curves)
    if panels:
        if interval == "ci95":
            finals = finals.assign(
                min=finals["mean"] - finals["ci95"], max=finals["mean"] + finals["ci95"]
            )
        return _final_panels(finals[np.isfinite(finals["mean"])], ylabel, log_y)
    fig, ax = plt.subplots()
    budgets = np.sort(finals["budget"].unique())
    # Budgets where every seed diverged have no centre: no point, and no part in the fit.
    finals = finals[np.isfinite(finals["mean"])]
    grid = np.geomspace(budgets[0], budgets[-1], 50)
    for scheduler, group in finals.groupby("scheduler", sort=False):
        group = group.sort_values("budget")
        color = SCHEDULER_COLORS.get(scheduler)
        ax.errorbar(
            group["budget"],
            group["mean"],
            yerr=group["ci95"]
            if interval == "ci95"
            else [group["mean"] - group["min"], group["max"] - group["mean"]],
            fmt="o",
            ms=4,
            capsize=2,
            lw=0.8,
            color=color,
            label=scheduler,
        )
        if len(group) >= 3:
            ax.plot(grid, power_fit(group["budget"], group["mean"]).predict(grid), color=color)
    ax.set_xscale("log")
    if log_y:
        log_ticks(ax.yaxis)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    ax.set(xlabel="budget N (epochs)", ylabel=ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncols=2)
    fig.tight_layout()
    return fig


def plot_forecasts(runs, data, ylabel: str, *, windows: int = 2) -> Figure:
    """Forecasts stored with forecasting runs, against the truth, for a few validation windows.

    Args:
        runs: :class:`hyperlr.lab.train.RunResult` objects of forecasting runs on ``data`` (their
            ``forecasts`` field holds the predictions); each is drawn in its scheduler's colour.
        data: the runs' :class:`hyperlr.lab.series.SeriesData`, for the history and the truth.
        ylabel: the series' name and unit (values are shown in the series' own units).
        windows: how many of the stored windows to draw, one panel each.
    """
    positions = runs[0].forecasts["val_index"][:windows]
    fig, axes = plt.subplots(
        1, len(positions), figsize=(4.5 * len(positions), 3.2), sharey=True, squeeze=False
    )
    for ax, position in zip(axes[0], positions, strict=True):
        history = data.denormalise(data.x_val[position, :, 0].numpy())
        truth = data.denormalise(data.y_val[position, :, 0].numpy())
        past = np.arange(-len(history), 0)
        future = np.arange(len(truth))
        ax.plot(past, history, color="0.5", label="history")
        ax.plot(future, truth, color="black", lw=2, label="truth")
        for run in runs:
            k = run.forecasts["val_index"].index(position)
            prediction = data.denormalise(np.asarray(run.forecasts["prediction"][k]))
            code = run.config.scheduler
            ax.plot(future, prediction, "--", color=SCHEDULER_COLORS.get(code), label=code)
        ax.set_xlabel("time step (0 = first predicted step)")
    axes[0, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_slcd_against_floor(
    means: dict[str, pd.Series], titles: dict[str, str] | None = None, *, floor: str = "N"
) -> Figure:
    """Mean SLCD per scheduler as bars, one panel per entry of ``means``, against a floor.

    The floor is the SLCD of ``floor``, a schedule that ignores the budget: its curves retrace
    each other, so its SLCD is what the metric's smoothing alone produces (dashed line).
    ``titles`` labels the panels (default: the keys of ``means``).
    """
    fig, axes = plt.subplots(1, len(means), figsize=(3.8 * len(means), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes.flat, means.items(), strict=True):
        colors = [SCHEDULER_COLORS.get(code, "grey") for code in values.index]
        ax.bar(values.index, values, color=colors)
        if floor in values.index:
            ax.axhline(values[floor], color="black", ls="--", lw=1, label=f"floor: {floor}")
            ax.legend(fontsize="small", loc="upper left")
        ax.set(title=(titles or {}).get(name, name), ylabel="mean SLCD")
        ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    return fig
