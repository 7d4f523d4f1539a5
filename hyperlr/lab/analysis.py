"""From stored runs to the paper's tables: seed-averaged curves, SLCD, Diff and power fits.

The experiment chapters hand the tidy frame of :func:`hyperlr.lab.results.runs_to_frame` to
:func:`seed_curves`, which averages over seeds into the same long shape as the authors'
published curves (:func:`hyperlr.lab.paper.load_paper_curves`): one row per scheduler, budget and
epoch with the seed mean, minimum and maximum. The table functions work on that shape, so the
book computes its own tables exactly as it recomputes the paper's.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import LOG_SLCD_START, diff, power_fit, slcd

__all__ = [
    "best_against_runner_up",
    "budget_pairs",
    "final_values",
    "identical_prefixes",
    "normalized_rank",
    "paired_comparison",
    "power_fit_table",
    "seed_centre",
    "seed_curves",
    "seed_finals",
    "sign_flip_p",
    "slcd_floor",
    "slcd_form",
    "slcd_table",
    "study_slcd",
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
    forward, inverse = _transform(kind)
    rows = []
    for (scheduler, budget), group in last.groupby(["scheduler", "epochs"], sort=False):
        values = group[metric].to_numpy(dtype=float)
        bad = ~_usable(values, kind, diverged_below)
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


#: The paper's longest budget: its log SLCD starts at epoch ``LOG_SLCD_START`` of 50-200 epochs.
PAPER_LONGEST_BUDGET = 200


def slcd_form(budgets, kind: str) -> tuple[str, int]:
    r"""The SLCD form and start epoch of a study: one rule for every chapter.

    The paper integrates the log form from epoch :math:`e_0 = 10` of budgets 50 to 200 (the
    accuracy of the image task in the linear form). A study whose longest budget is
    :math:`N_{\max}` starts at the same fraction of it,

    .. math:: e_0 = \max\bigl(1, \operatorname{round}(10\, N_{\max} / 200)\bigr),

    and uses the log form for a loss where its shortest curve has at least
    :math:`\max(e_0 + 1, 3)` epochs (the linear form otherwise, and always for an accuracy).

    Args:
        budgets: the study's budgets (epochs).
        kind: ``"loss"`` or ``"accuracy"``.

    Returns:
        ``(method, start)`` for :func:`slcd_table`.

    Raises:
        ValueError: no budgets, or an unknown ``kind``.
    """
    if kind not in ("accuracy", "loss"):
        raise ValueError(f'kind must be "accuracy" or "loss", got {kind!r}')
    budgets = sorted({int(b) for b in budgets})
    if not budgets:
        raise ValueError("budgets: need at least one budget")
    start = max(1, round(LOG_SLCD_START * budgets[-1] / PAPER_LONGEST_BUDGET))
    log_form = kind == "loss" and budgets[0] >= max(start + 1, 3)
    return ("log" if log_form else "linear"), start


def study_slcd(curves: pd.DataFrame, kind: str) -> pd.DataFrame:
    """:func:`slcd_table` of seed-mean curves, in the form and from the epoch of
    :func:`slcd_form`."""
    method, start = slcd_form(curves["budget"], kind)
    return slcd_table(curves, method, start=start)


def _transform(kind: str):
    """The map to the space where a metric is unbounded, and its inverse (log / logit)."""
    if kind == "accuracy":
        epsilon = 1e-6  # keeps a perfect or zero accuracy finite on the logit scale

        def forward(a):
            a = np.clip(np.asarray(a, dtype=float), epsilon, 1 - epsilon)
            return np.log(a / (1 - a))

        def inverse(z):
            return 1 / (1 + np.exp(-z))

        return forward, inverse
    if kind == "loss":
        return (lambda v: np.log(np.asarray(v, dtype=float))), np.exp
    raise ValueError(f'kind must be "accuracy" or "loss", got {kind!r}')


def seed_centre(values, kind: str) -> float:
    r"""The centre of a metric's values over seeds: the one used on every page.

    :math:`g^{-1}\bigl(\frac1n\sum_s g(v_s)\bigr)` with :math:`g = \log` for a loss (the
    geometric mean) and :math:`g = \operatorname{logit}` for an accuracy. ``NaN`` for no values.
    """
    forward, inverse = _transform(kind)
    values = np.asarray(values, dtype=float)
    return float(inverse(forward(values).mean())) if len(values) else float("nan")


def _usable(values: np.ndarray, kind: str, diverged_below: float | None) -> np.ndarray:
    """Mask of the runs that did not diverge (finite, a positive loss, above the threshold)."""
    good = np.isfinite(values)
    if kind == "loss":
        good &= values > 0
    if diverged_below is not None:
        good &= ~(values < diverged_below)
    return good


def sign_flip_p(differences) -> float:
    r"""Exact two-sided p-value of the sign-flip (paired permutation) test of a zero mean.

    Under the null hypothesis each paired difference is as likely to have either sign; the
    p-value is the share of the :math:`2^n` sign patterns whose :math:`|\sum_s \pm d_s|` is at
    least the observed :math:`|\sum_s d_s|`. It needs no normality, but cannot go below
    :math:`2/2^n` (0.25 with three seeds, 0.0625 with five).
    """
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n == 0:
        return float("nan")
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    sums = np.abs(signs @ d)
    return float(np.mean(sums >= abs(d.sum()) - 1e-12 * max(1.0, np.abs(d).sum())))


def paired_comparison(
    runs: pd.DataFrame,
    metric: str,
    first: str,
    second: str,
    *,
    kind: str,
    budget: int | None = None,
    diverged_below: float | None = None,
    level: float = 0.95,
    second_budget: int | None = None,
) -> dict:
    r"""Compare two schedules seed by seed at one budget: the paired difference and its interval.

    Runs of the same seed share the initialisation and the data order, so the difference per seed
    removes what the seeds have in common. With :math:`n` seeds that both schedules ran without
    diverging, the difference per seed is :math:`d_s = \log \ell_{1,s} - \log \ell_{2,s}` for a
    loss (reported as the ratio :math:`e^{\bar d}`) and :math:`d_s = a_{1,s} - a_{2,s}` for an
    accuracy (points of accuracy). The interval is the paired Student :math:`t` interval
    :math:`\bar d \pm t_{(1+\text{level})/2,\,n-1}\, s_d/\sqrt n` with :math:`n - 1` degrees of
    freedom (exact under normal differences; with 3 to 5 seeds nothing else is checkable), and
    beside it the exact sign-flip p-value (:func:`sign_flip_p`), free of that assumption but
    never below :math:`2/2^n`.

    Args:
        runs: the tidy frame of :func:`hyperlr.lab.results.runs_to_frame` with ``scheduler``.
        metric: the per-epoch column compared at the budget's last epoch.
        first, second: the two scheduler codes.
        kind: ``"loss"`` or ``"accuracy"``.
        budget: the budget (epochs); ``None``: the longest both ran.
        diverged_below: an accuracy below this counts as diverged (the pair is dropped).
        level: the interval's confidence level, in (0, 1).
        second_budget: the budget at which ``second`` is read (``None``: ``budget``); with
            ``second`` equal to ``first``, one schedule's change from one budget to another,
            paired over seeds.

    Returns:
        ``difference`` (ratio first / second for a loss, first − second for an accuracy),
        ``low``, ``high`` (``NaN`` with fewer than two pairs), ``n`` (pairs), ``df`` (n − 1),
        ``p_sign_flip`` and ``p_min`` (its smallest possible value, :math:`2/2^n`).

    Raises:
        ValueError: an unknown ``kind`` or metric, a level outside (0, 1), or a schedule absent.
    """
    forward, _ = _transform(kind)
    if metric not in runs.columns:
        raise ValueError(f"metric: no column {metric!r} in the runs; columns: {list(runs.columns)}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    last = runs[runs["epoch"] == runs["epochs"]]
    for code in (first, second):
        if code not in set(last["scheduler"]):
            raise ValueError(f"scheduler: no runs of {code!r}")
    if budget is None:
        budget = min(last.loc[last["scheduler"] == c, "epochs"].max() for c in (first, second))
    second_budget = budget if second_budget is None else second_budget
    values = {
        side: last[(last["scheduler"] == code) & (last["epochs"] == at)]
        .groupby("seed")[metric]
        .first()
        for side, code, at in (("a", first, budget), ("b", second, second_budget))
    }
    pairs = pd.concat(values, axis=1, join="inner").dropna(how="all")
    a, b = pairs["a"].to_numpy(dtype=float), pairs["b"].to_numpy(dtype=float)
    good = _usable(a, kind, diverged_below) & _usable(b, kind, diverged_below)
    a, b = a[good], b[good]
    d = forward(a) - forward(b) if kind == "loss" else a - b
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    half = (
        float(stats.t.ppf((1 + level) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
        if n > 1
        else math.nan
    )
    low, high = mean - half, mean + half
    if kind == "loss":
        mean, low, high = math.exp(mean), math.exp(low), math.exp(high)
    return {
        "budget": int(budget),
        "difference": mean,
        "low": low,
        "high": high,
        "n": n,
        "df": n - 1,
        "p_sign_flip": sign_flip_p(d),
        "p_min": 2.0 / 2**n if n else math.nan,
    }


def normalized_rank(rank: int, k: int) -> float:
    r"""A rank made comparable across studies of different sizes: :math:`(r - 1)/(k - 1)`.

    0 is the best of the :math:`k` schedules, 1 the worst; ``NaN`` for a study of one schedule.
    """
    if not 1 <= rank <= k:
        raise ValueError(f"rank must lie in 1..k = 1..{k}, got {rank!r}")
    return (rank - 1) / (k - 1) if k > 1 else float("nan")


def slcd_floor(slcd: pd.Series) -> tuple[str | None, float]:
    """The SLCD floor: the mean SLCD of a budget-free schedule, N if run, else E.

    Such a schedule's runs retrace each other across budgets, so its SLCD is what the smoothing
    alone gives. A value at or below the floor says nothing about insensitivity to the budget.
    Returns ``(None, nan)`` where neither was run.
    """
    for code in ("N", "E"):
        if code in slcd.index and np.isfinite(slcd[code]):
            return code, float(slcd[code])
    return None, math.nan


def best_against_runner_up(
    runs: pd.DataFrame, metric: str, *, kind: str, diverged_below: float | None = None
) -> dict:
    """The best schedule at the longest budget and the paired comparison with the runner-up.

    Centres come from :func:`seed_finals` (as on every page); the comparison from
    :func:`paired_comparison` (runner-up against best, over the seeds both ran).

    Returns:
        ``best`` (``None`` where every run diverged), ``best_value``, ``runner_up`` (``None``
        with fewer than two schedules left), the comparison's
        keys (``difference``, ``low``, ``high``, ``n``, ``df``, ``p_sign_flip``, ``p_min``),
        ``tied`` (the interval contains no difference) and ``text``: the interval, the method
        and the reading, in words.
    """
    finals = seed_finals(runs, metric, kind=kind, diverged_below=diverged_below)
    longest = finals[finals["budget"] == finals["budget"].max()].set_index("scheduler")
    ranked = longest["centre"].dropna().sort_values(ascending=kind != "accuracy")
    if ranked.empty:  # every run diverged at the longest budget
        return {
            "best": None,
            "best_value": math.nan,
            "runner_up": None,
            "tied": False,
            "text": "(every run diverged at the longest budget)",
        }
    result: dict = {"best": ranked.index[0], "best_value": float(ranked.iloc[0])}
    if len(ranked) < 2:
        return result | {"runner_up": None, "tied": False, "text": "(one schedule only)"}
    compared = paired_comparison(
        runs, metric, ranked.index[1], ranked.index[0], kind=kind,
        budget=int(finals["budget"].max()),
        diverged_below=diverged_below,
    )  # fmt: skip
    none = 1.0 if kind == "loss" else 0.0
    # Told apart only where the interval excludes no difference; no interval (one seed): tied.
    tied = not (compared["low"] > none or compared["high"] < none)
    what = "ratio to the best's loss" if kind == "loss" else "difference in accuracy"
    if compared["n"] < 2:
        text = (
            f"{what} {compared['difference']:.3g} on {compared['n']} shared seed(s), too few for "
            "an interval: not told apart from the best"
        )
        return result | {"runner_up": ranked.index[1], **compared, "tied": tied, "text": text}
    text = (
        f"{what} {compared['difference']:.3g} [{compared['low']:.3g}, {compared['high']:.3g}] "
        f"(paired t-interval over {compared['n']} seeds, {compared['df']} degrees of freedom; "
        f"exact sign-flip p = {compared['p_sign_flip']:.2g}, never below {compared['p_min']:.2g} "
        f"with {compared['n']} seeds): "
        + ("not told apart from the best" if tied else "measurably behind the best")
    )
    return result | {"runner_up": ranked.index[1], **compared, "tied": tied, "text": text}
