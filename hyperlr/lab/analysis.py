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

from ..metrics import LOG_SLCD_START, diff, power_fit, slcd

__all__ = [
    "budget_pairs",
    "final_values",
    "seed_finals",
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


def slcd_table(
    curves: pd.DataFrame, method: str = "linear", *, start: int = LOG_SLCD_START
) -> pd.DataFrame:
    """SLCD between the seed-mean curves of every pair of budgets, per scheduler.

    Rows are schedulers (in the order they appear), columns the budget pairs labelled
    ``"N_i–N_j"``, plus their ``mean``. See :func:`hyperlr.metrics.slcd` for ``method`` and
    ``start`` (the log form's first epoch).
    """
    schedulers = list(dict.fromkeys(curves["scheduler"]))
    pairs = budget_pairs(curves["budget"])
    table = pd.DataFrame(
        {
            f"{short}–{long}": [
                slcd(_curve(curves, s, short), _curve(curves, s, long), method, start=start)
                for s in schedulers
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


def seed_finals(
    runs: pd.DataFrame, metric: str, *, kind: str, diverged_below: float | None = None
) -> pd.DataFrame:
    r"""Final values over seeds per scheduler and budget, with intervals fit for the quantity.

    A t-interval on the raw values can leave the range a metric lives in (an accuracy above 1, a
    loss below 0 on a log axis) and one diverged seed can blow it up. Here diverged runs are
    counted apart, and the interval is Student's :math:`t` in a space where the metric is
    unbounded, mapped back: for a loss :math:`\ell`, on :math:`\log \ell` (the centre is the
    geometric mean); for an accuracy :math:`a`, on :math:`\operatorname{logit} a =
    \log\frac{a}{1-a}`. With :math:`z_s` the transformed final value of seed :math:`s`,

    .. math:: \text{centre} = g^{-1}(\bar z), \quad
        [\text{low}, \text{high}] = g^{-1}\bigl(\bar z \mp t_{0.975,\,n-1}\, s_z/\sqrt n\bigr).

    Args:
        runs: the tidy frame of :func:`hyperlr.lab.results.runs_to_frame`.
        metric: a per-epoch column, e.g. ``"val_accuracy"`` or ``"val_loss"``.
        kind: ``"accuracy"`` (values in (0, 1)) or ``"loss"`` (values above 0).
        diverged_below: for an accuracy, a final value below this counts as diverged (e.g. twice
            chance); a non-finite value always does.

    Returns:
        One row per ``scheduler`` and ``budget``: ``centre``, ``low``, ``high`` (``NaN`` with
        fewer than two usable seeds), ``n_seeds`` (usable) and ``n_diverged``.

    Raises:
        ValueError: an unknown ``kind`` or metric.
    """
    if kind not in ("accuracy", "loss"):
        raise ValueError(f'kind must be "accuracy" or "loss", got {kind!r}')
    if metric not in runs.columns:
        raise ValueError(f"metric: no column {metric!r} in the runs; columns: {list(runs.columns)}")
    last = runs[runs["epoch"] == runs["epochs"]]
    if kind == "accuracy":
        epsilon = 1e-6  # keeps a perfect or zero accuracy finite on the logit scale

        def forward(a):
            a = np.clip(a, epsilon, 1 - epsilon)
            return np.log(a / (1 - a))

        def inverse(z):
            return 1 / (1 + np.exp(-z))
    else:
        forward, inverse = np.log, np.exp
    rows = []
    for (scheduler, budget), group in last.groupby(["scheduler", "epochs"], sort=False):
        values = group[metric].to_numpy(dtype=float)
        bad = ~np.isfinite(values) | ((values <= 0) if kind == "loss" else False)
        if diverged_below is not None:
            bad |= values < diverged_below
        z = forward(values[~bad])
        n = len(z)
        half = stats.t.ppf(0.975, n - 1) * z.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        centre = z.mean() if n else np.nan
        rows.append(
            {
                "scheduler": scheduler,
                "budget": int(budget),
                "centre": inverse(centre),
                "low": inverse(centre - half),
                "high": inverse(centre + half),
                "n_seeds": n,
                "n_diverged": int(bad.sum()),
            }
        )
    order = {code: i for i, code in enumerate(dict.fromkeys(runs["scheduler"]))}
    table = pd.DataFrame(rows)
    return table.sort_values(
        ["scheduler", "budget"], key=lambda c: c.map(order) if c.name == "scheduler" else c
    ).reset_index(drop=True)


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
