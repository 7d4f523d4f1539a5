"""What the learning-rate maps say: optima, their exponent, and the cost of transferring them.

Input: a map frame (:func:`hyperlr.lab.maps.map_frame`), one row per schedule, budget
:math:`T`, grid index :math:`k` (rate :math:`\\gamma_k = \\gamma_c 2^{k/2}`) and seed, with the
final validation loss. Diverged runs (a loss that is not finite) are counted apart: a rate where
half the seeds or more diverged is never an optimum, and no mean includes a diverged run.

* **Optimum.** With :math:`\\bar L_k` the mean loss over the seeds at index :math:`k` and
  :math:`m = \\arg\\min_k \\bar L_k`, fit :math:`\\bar L = a x^2 + b x + c` in
  :math:`x = \\log\\gamma` through the indices :math:`m-1, m, m+1` (least squares when
  :math:`m \\pm 2` exist too); :math:`\\log\\gamma^* = -b / 2a`, kept inside
  :math:`[x_{m-1}, x_{m+1}]` (the grid minimum itself when :math:`a \\le 0` or :math:`m` is an
  end of the grid).
* **Exponent.** :math:`\\beta` is the least-squares slope of :math:`\\log\\gamma^*(T)` on
  :math:`\\log T`: :math:`\\gamma^* \\propto T^{\\beta}`.
* **Transfer regret** from :math:`T_0` to :math:`T_1 = \\kappa T_0`, per seed :math:`s`:
  :math:`L_s(T_1; k_0) / L_s(T_1; k_1) - 1`, with :math:`k_0, k_1` the grid optima (of the seed
  means) at :math:`T_0` and :math:`T_1`; the **square-root rule** uses
  :math:`k_0 - \\log_2\\kappa` instead of :math:`k_0` (the rate times :math:`\\kappa^{-1/2}`, one
  :math:`\\sqrt2` grid step per doubling).

Intervals resample the seeds with replacement (the same resampled seeds for every rate and
budget, since the runs of one seed share their initialisation) and recompute everything,
grid optima included: percentile intervals of ``n_boot`` resamples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .maps import GRID_CENTRE, grid_rate

__all__ = [
    "exponent_table",
    "fit_optimum",
    "map_summary",
    "optimum_table",
    "regret_table",
    "verdict_maps",
]

_LEVEL = 0.95
#: The grid optimum of a budget without finite losses.
_NONE = -(10**9)


def map_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (schedule, budget, lr): seeds, diverged seeds, and the mean, standard error and a
    95 % Student-t interval over the seeds that did not diverge, of the loss and the metric."""
    from scipy import stats

    rows = []
    for (name, budget, index), group in frame.groupby(["schedule", "budget", "index"]):
        ok = group[~group["diverged"]]
        row = {
            "schedule": name,
            "budget": int(budget),
            "index": int(index),
            "lr": grid_rate(int(index)),
            "seeds": len(group),
            "diverged": int(group["diverged"].sum()),
        }
        for column in ("val_loss", "val_metric"):
            values = ok[column].to_numpy(float)
            mean = float(values.mean()) if len(values) else math.nan
            half = (
                float(
                    stats.t.ppf(0.5 + _LEVEL / 2, len(values) - 1)
                    * values.std(ddof=1)
                    / math.sqrt(len(values))
                )
                if len(values) > 1
                else math.nan
            )
            row[column] = mean
            row[f"{column}_low"] = mean - half
            row[f"{column}_high"] = mean + half
        rows.append(row)
    return pd.DataFrame(rows)


def _means(losses: np.ndarray) -> np.ndarray:
    """Column means over the seeds (rows) of finite losses; ``inf`` where half or more of a
    column is not finite."""
    finite = np.isfinite(losses)
    count = finite.sum(axis=0)
    total = np.where(finite, losses, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = total / count
    return np.where(2 * count > losses.shape[0], means, np.inf)


def fit_optimum(indices: Sequence[int], means: Sequence[float]) -> tuple[float, int]:
    """:math:`\\log\\gamma^*` from the mean losses at consecutive grid indices, and the grid
    minimum's index (see the module's docstring)."""
    indices = np.asarray(indices, int)
    means = np.asarray(means, float)
    if len(indices) == 0 or len(indices) != len(means):
        raise ValueError("indices, means: must be non-empty and of equal length")
    if not np.isfinite(means).any():
        return math.nan, _NONE
    m = int(np.argmin(means))
    x = np.log(GRID_CENTRE) + indices * math.log(2.0) / 2
    best = int(indices[m])
    if m == 0 or m == len(indices) - 1:
        return float(x[m]), best
    window = [j for j in range(m - 2, m + 3) if 0 <= j < len(indices) and np.isfinite(means[j])]
    if len(window) < 3:
        return float(x[m]), best
    a, b, _ = np.polyfit(x[window], means[window], 2)
    if a <= 0:
        return float(x[m]), best
    return float(np.clip(-b / (2 * a), x[m - 1], x[m + 1])), best


def _cube(frame: pd.DataFrame, column: str = "val_loss"):
    """Per schedule: budgets, indices, seeds and the losses ``[budget, seed, index]`` (NaN
    where missing or diverged)."""
    cubes = {}
    for name, group in frame.groupby("schedule"):
        budgets = sorted(group["budget"].unique())
        indices = np.arange(group["index"].min(), group["index"].max() + 1)
        seeds = sorted(group["seed"].unique())
        cube = np.full((len(budgets), len(seeds), len(indices)), np.nan)
        for row in group.itertuples():
            value = getattr(row, column)
            cube[budgets.index(row.budget), seeds.index(row.seed), row.index - indices[0]] = (
                value if not row.diverged else np.nan
            )
        cubes[name] = (budgets, indices, seeds, cube)
    return cubes


def _optima(indices: np.ndarray, cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log-optima and grid optima per budget from a ``[budget, seed, index]`` cube."""
    logs, grid = [], []
    for losses in cube:
        present = ~np.all(np.isnan(losses), axis=0)  # indices run at this budget
        if not present.any():  # a budget not (yet) run for this schedule
            logs.append(math.nan)
            grid.append(_NONE)
            continue
        means = _means(np.where(np.isnan(losses), np.inf, losses))
        log_opt, best = fit_optimum(indices[present], means[present])
        logs.append(log_opt)
        grid.append(best)
    return np.array(logs), np.array(grid)


def _slope(budgets: Sequence[int], logs: np.ndarray) -> float:
    ok = np.isfinite(logs)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(np.asarray(budgets, float)[ok]), logs[ok], 1)[0])


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan
    low, high = np.percentile(values, [100 * (1 - _LEVEL) / 2, 100 * (1 + _LEVEL) / 2])
    return float(low), float(high)


def _resamples(n_seeds: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_seeds, size=(n_boot, n_seeds))


def optimum_table(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (schedule, budget): :math:`\\gamma^*` with its bootstrap interval, the grid optimum
    and whether it lies strictly inside the grid."""
    rows = []
    for name, (budgets, indices, seeds, cube) in _cube(frame).items():
        logs, grid = _optima(indices, cube)
        boots = np.array(
            [_optima(indices, cube[:, draw])[0] for draw in _resamples(len(seeds), n_boot, seed)]
        )
        for i, budget in enumerate(budgets):
            present = indices[~np.all(np.isnan(cube[i]), axis=0)]
            low, high = _interval(boots[:, i])
            rows.append(
                {
                    "schedule": name,
                    "budget": int(budget),
                    "gamma_star": math.exp(logs[i]),
                    "gamma_low": math.exp(low) if math.isfinite(low) else math.nan,
                    "gamma_high": math.exp(high) if math.isfinite(high) else math.nan,
                    "grid_best": grid_rate(int(grid[i])) if grid[i] != _NONE else math.nan,
                    "best_index": int(grid[i]),
                    "inside": bool(len(present) and present.min() < grid[i] < present.max()),
                    "seeds": len(seeds),
                }
            )
    return pd.DataFrame(rows)


def exponent_table(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per schedule: the exponent :math:`\\beta` of :math:`\\gamma^*(T) \\propto T^{\\beta}`
    with its bootstrap interval over seeds."""
    rows = []
    for name, (budgets, indices, seeds, cube) in _cube(frame).items():
        beta = _slope(budgets, _optima(indices, cube)[0])
        boots = np.array(
            [
                _slope(budgets, _optima(indices, cube[:, draw])[0])
                for draw in _resamples(len(seeds), n_boot, seed)
            ]
        )
        low, high = _interval(boots)
        rows.append(
            {
                "schedule": name,
                "beta": beta,
                "beta_low": low,
                "beta_high": high,
                "budgets": len(budgets),
                "seeds": len(seeds),
            }
        )
    return pd.DataFrame(rows)


def _regrets(budgets, indices, cube, factor: int, sqrt_rule: bool) -> tuple[np.ndarray, int]:
    """Per-seed regrets (finite ones) averaged over the short budgets that have a long one
    ``factor`` times longer, and the count of diverged seed-pairs."""
    _, grid = _optima(indices, cube)
    values, diverged = [], 0
    for i, short in enumerate(budgets):
        if short * factor not in budgets:
            continue
        j = budgets.index(short * factor)
        chosen = grid[i] - (int(round(math.log2(factor))) if sqrt_rule else 0)
        if not indices[0] <= chosen <= indices[-1] or not indices[0] <= grid[j] <= indices[-1]:
            values.append(np.full(cube.shape[1], np.nan))
            continue
        ratio = cube[j, :, chosen - indices[0]] / cube[j, :, grid[j] - indices[0]] - 1
        diverged += int(np.sum(np.isnan(ratio)))
        values.append(ratio)
    stacked = np.array(values)
    if not values or not np.isfinite(stacked).any():
        return np.array([]), diverged
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed with no finite regret: NaN
        return np.nanmean(stacked, axis=0), diverged


def regret_table(
    frame: pd.DataFrame, factors: Sequence[int] = (2, 4), n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per schedule and factor :math:`\\kappa`: the transfer regret (the short budget's grid
    optimum used at :math:`\\kappa` times the budget) and the square-root rule's regret, each
    the mean over seeds (of the seeds' regrets averaged over the short budgets that have a
    :math:`\\kappa`-times longer one) with a bootstrap interval; ``diverged``: seed-pairs whose
    transferred run diverged (left out of the means)."""
    rows = []
    for name, (budgets, indices, seeds, cube) in _cube(frame).items():
        for factor in factors:
            row = {"schedule": name, "factor": int(factor)}
            for label, rule in (("regret", False), ("sqrt_regret", True)):
                per_seed, diverged = _regrets(budgets, indices, cube, factor, rule)
                boots = []
                for draw in _resamples(len(seeds), n_boot, seed):
                    b, _ = _regrets(budgets, indices, cube[:, draw], factor, rule)
                    boots.append(float(np.nanmean(b)) if np.isfinite(b).any() else math.nan)
                low, high = _interval(np.array(boots))
                finite = per_seed[np.isfinite(per_seed)] if len(per_seed) else per_seed
                row[label] = float(finite.mean()) if len(finite) else math.nan
                row[f"{label}_low"], row[f"{label}_high"] = low, high
                row[f"{label}_diverged"] = diverged
            rows.append(row)
    return pd.DataFrame(rows)


def verdict_maps(
    frames: Mapping[str, pd.DataFrame], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """For the verdict: per task (``frames`` maps task names to map frames; empty ones are
    skipped) and schedule, the exponent with its interval and the transfer and square-root
    regrets at 2x and 4x with theirs, plus whether every optimum is inside its grid."""
    tables = []
    for task, frame in frames.items():
        if frame.empty:
            continue
        exps = exponent_table(frame, n_boot, seed)
        regrets = regret_table(frame, (2, 4), n_boot, seed)
        wide = regrets.pivot(index="schedule", columns="factor")
        wide.columns = [f"{name}_{factor}x" for name, factor in wide.columns]
        inside = optimum_table(frame, n_boot=1, seed=seed).groupby("schedule")["inside"].all()
        table = exps.merge(wide.reset_index(), on="schedule").merge(
            inside.rename("all_inside").reset_index(), on="schedule"
        )
        table.insert(0, "task", task)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
