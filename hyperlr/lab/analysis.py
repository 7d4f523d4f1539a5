"""From stored runs to the paper's tables: seed-averaged curves, SLCD, Diff and power fits.

The experiment chapters hand the tidy frame of :func:`hyperlr.lab.results.runs_to_frame` to
:func:`seed_curves`, which averages over seeds into the same long shape as the authors'
published curves (:func:`hyperlr.lab.paper.load_paper_curves`): one row per scheduler, budget and
epoch with the seed mean, minimum and maximum. The table functions work on that shape, so the
book computes its own tables exactly as it recomputes the paper's.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import diff, power_fit, slcd

__all__ = [
    "budget_pairs",
    "final_values",
    "identical_prefixes",
    "power_fit_table",
    "seed_curves",
    "slcd_table",
]


def seed_curves(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Average a metric's per-epoch curve over seeds, per scheduler setting and budget.

    Args:
        runs: the tidy frame of :func:`hyperlr.lab.results.runs_to_frame` (one row per run and
            epoch); runs differing only in ``seed`` are averaged.
        metric: a per-epoch column, e.g. ``"val_loss"``, ``"val_accuracy"`` or ``"val_mae"``.

    Returns:
        One row per ``scheduler``, ``budget`` and ``epoch`` (schedulers in the order of
        ``runs``) with the seeds' ``mean``, ``std`` (sample), ``min``, ``max`` and their number
        ``n_seeds``.

    Raises:
        ValueError: an unknown metric, or a scheduler code with several settings.
    """
    if metric not in runs.columns:
        raise ValueError(f"metric: no column {metric!r} in the runs; columns: {list(runs.columns)}")
    settings = runs.groupby("scheduler")["scheduler_overrides"].nunique()
    if (settings > 1).any():
        raise ValueError(
            "runs: each scheduler code must have one setting to average over seeds; "
            f"several for {', '.join(settings[settings > 1].index)} (select one first)"
        )
    keys = ["scheduler", "epochs", "epoch"]
    grouped = runs.groupby(keys, sort=False)[metric]
    curves = grouped.agg(["mean", "std", "min", "max", "count"]).reset_index()
    return curves.rename(columns={"epochs": "budget", "count": "n_seeds"})


def budget_pairs(budgets) -> list[tuple[int, int]]:
    """Every (shorter, longer) pair of budgets, in the paper's order: (50, 100), (50, 150)..."""
    return list(combinations(sorted(set(int(b) for b in budgets)), 2))


def _curve(curves: pd.DataFrame, scheduler: str, budget: int) -> np.ndarray:
    rows = curves[(curves["scheduler"] == scheduler) & (curves["budget"] == budget)]
    return rows.sort_values("epoch")["mean"].to_numpy()


def slcd_table(curves: pd.DataFrame, method: str = "linear") -> pd.DataFrame:
    """SLCD between the seed-mean curves of every pair of budgets, per scheduler.

    Rows are schedulers (in the order they appear), columns the budget pairs labelled
    ``"N_i–N_j"``, plus their ``mean``. See :func:`hyperlr.metrics.slcd` for ``method``.
    """
    schedulers = list(dict.fromkeys(curves["scheduler"]))
    pairs = budget_pairs(curves["budget"])
    table = pd.DataFrame(
        {
            f"{short}–{long}": [
                slcd(_curve(curves, s, short), _curve(curves, s, long), method) for s in schedulers
            ]
            for short, long in pairs
        },
        index=pd.Index(schedulers, name="scheduler"),
    )
    table["mean"] = table.mean(axis=1)
    return table


def final_values(curves: pd.DataFrame) -> pd.DataFrame:
    r"""Each scheduler's value at the last epoch of each budget, over seeds.

    Columns: ``scheduler``, ``budget``, the seeds' ``mean``, ``std``, ``min``, ``max``,
    ``n_seeds``, and ``ci95``, the half-width of the 95 % confidence interval of the mean,
    :math:`t_{0.975,\,n-1}\, s / \sqrt{n}` (``NaN`` for a single seed).
    """
    last = curves[curves["epoch"] == curves["budget"]]
    finals = last[["scheduler", "budget", "mean", "std", "min", "max", "n_seeds"]].reset_index(
        drop=True
    )
    n = finals["n_seeds"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.975, n - 1)
        finals["ci95"] = np.where(n > 1, t * finals["std"].to_numpy() / np.sqrt(n), np.nan)
    return finals


def power_fit_table(curves: pd.DataFrame, kind: str = "loss") -> pd.DataFrame:
    """Per scheduler: the final value at each budget, Diff (mean, std) and the power fit.

    Args:
        curves: from :func:`seed_curves`.
        kind: ``"loss"`` (Diff in percent of the loss) or ``"accuracy"`` (Diff as the gain),
            as in :func:`hyperlr.metrics.diff`.

    Returns:
        Rows per scheduler; columns ``N=<budget>`` (final seed means), ``Diff mean``,
        ``Diff std``, and the fit of ``final = exp(A) * N**B``: ``A``, ``B``, ``R²``,
        ``adj. R²`` and the slope's ``p`` (these last seven only with three budgets or more).
    """
    finals = final_values(curves)
    rows = {}
    for scheduler, group in finals.groupby("scheduler", sort=False):
        group = group.sort_values("budget")
        values = group["mean"].to_numpy()
        row = {f"N={b}": v for b, v in zip(group["budget"], values, strict=True)}
        # Diff's standard deviation and the fit's p-value need at least three budgets.
        if len(values) >= 3:
            change = diff(values, kind=kind)
            row.update({"Diff mean": change.mean, "Diff std": change.std})
            fit = power_fit(group["budget"], values)
            row.update(
                {"A": fit.a, "B": fit.b, "R²": fit.r2, "adj. R²": fit.adj_r2, "p": fit.p_value}
            )
        rows[scheduler] = row
    order = list(dict.fromkeys(curves["scheduler"]))
    return pd.DataFrame.from_dict(rows, orient="index").loc[order].rename_axis("scheduler")


def identical_prefixes(runs: pd.DataFrame, scheduler: str, metric: str) -> bool:
    """Whether, seed by seed, every budget's curve repeats the shorter budgets' exactly.

    True for a schedule that ignores the budget (N, E) trained repeatably: its longer runs
    retrace the shorter ones epoch for epoch. Such a schedule still gets a non-zero SLCD, since
    the smoothing leaves the last points of the shorter curve raw but smooths the same epochs of
    the longer one; this tells that floor apart from a genuine difference.
    """
    chosen = runs[runs["scheduler"] == scheduler]
    if chosen.empty:
        raise ValueError(f"scheduler: no runs of {scheduler!r}")
    for _, seed_runs in chosen.groupby("seed"):
        curves = [g.sort_values("epoch")[metric].to_numpy() for _, g in seed_runs.groupby("epochs")]
        longest = max(curves, key=len)
        if not all(np.array_equal(c, longest[: len(c)], equal_nan=True) for c in curves):
            return False
    return True
