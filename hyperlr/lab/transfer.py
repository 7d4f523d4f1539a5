"""The transfer test: how much does a schedule lose at the long budget by keeping the settings
tuned at the short one?

The paper's workflow (:func:`hyperlr.lab.tune.protocol`) tunes every competitor at a short
budget :math:`N_s` and reruns the winner at longer budgets. The transfer test measures that
workflow directly. For each competitor it also tunes at the longest budget :math:`N_l`, with the
same trial count, tuning seeds and sampler seed (so both studies try the same candidate points,
:class:`~hyperlr.lab.tune.SharedCandidateSampler`, and differ only in the budget that ranks
them), then trains both winners at :math:`N_l` on the same seeds. The **transfer regret** of a
competitor is the long-budget result of the settings tuned short minus that of the settings tuned
long, oriented so that a positive regret is what tuning short cost:

.. math::

    R_{\\text{acc}} = \\overline{a_{\\text{long-tuned}} - a_{\\text{short-tuned}}},
    \\qquad
    R_{\\text{loss}} = \\exp\\Bigl(\\overline{\\log \\ell_{\\text{short-tuned}}
    - \\log \\ell_{\\text{long-tuned}}}\\Bigr),

the mean over seeds of paired differences (the two arms share a seed's initialisation and data
order), for a loss in log space, so that :math:`R_{\\text{loss}}` is the factor by which the
short-tuned loss exceeds the long-tuned one (1: no regret). The 95 % interval is Student's
:math:`t` over the paired differences; a seed on which either arm diverged is counted apart and
left out of the mean.

Both studies are ordinary :func:`~hyperlr.lab.tune.tune` studies in the same storage, so they
resume like any other, and every run goes through the results store: a long-study trial that
repeats a stage-2 run of the protocol trains nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from scipy import stats

from .analysis import seed_centre
from .sweep import run_sweep
from .train import RunResult
from .tune import COMPETITORS, best_settings, stage2_configs, tune

__all__ = ["TransferResult", "transfer_regret", "transfer_test"]

#: The two arms of the test: where the settings were tuned.
ARMS = ("short", "long")

_COMPLETE = (optuna.trial.TrialState.COMPLETE,)


@dataclass(frozen=True)
class TransferResult:
    """What :func:`transfer_test` returns for one task.

    Attributes:
        winners: one row per competitor and arm (``tuned_at``: ``"short"`` or ``"long"``) with
            the study's name, budget, best ``lr``, schedule ``settings`` and ``objective``.
        trials: every finished trial of both studies: ``competitor``, ``tuned_at``, ``number``,
            ``lr``, ``settings`` and ``objective``.
        runs: every long-budget run of both arms (a run serves both arms when the two studies
            chose the same settings).
        keys: per ``(competitor, arm)``, the keys of that arm's long-budget runs, one per seed.
        long_budget: the budget both arms are compared at.
    """

    winners: pd.DataFrame
    trials: pd.DataFrame
    runs: list[RunResult]
    keys: dict[tuple[str, str], list[str]]
    long_budget: int


def transfer_test(
    competitors: Sequence[str],
    *,
    tune_budget: int,
    long_budget: int,
    n_trials: int,
    tune_seeds: Sequence[int],
    seeds: Sequence[int],
    results_dir: str | os.PathLike[str],
    storage: str | None = None,
    workers: int = 1,
    time_scale: float = 1.0,
    **template: Any,
) -> TransferResult:
    """Tune every competitor at ``tune_budget`` and at ``long_budget``; train both winners long.

    Args:
        competitors: keys of :data:`hyperlr.lab.tune.COMPETITORS`.
        tune_budget: the short budget of the protocol's stage 1 (its study is reused).
        long_budget: the budget of the second study and of the comparison; larger than
            ``tune_budget``.
        n_trials, tune_seeds, results_dir, storage, workers, time_scale: as in
            :func:`hyperlr.lab.tune.tune`, the same for both studies.
        seeds: the seeds both winners are trained on at ``long_budget``.
        **template: the other run settings (``dataset`` and e.g. subsets, model options).

    Raises:
        ValueError: unknown competitors, a long budget not above the short one, or anything
            :func:`~hyperlr.lab.tune.tune` rejects, before any trial runs.
    """
    unknown = [name for name in competitors if name not in COMPETITORS]
    if unknown:
        raise ValueError(
            f"competitors: unknown {', '.join(map(repr, unknown))}; known: {', '.join(COMPETITORS)}"
        )
    for name, value in {"tune_budget": tune_budget, "long_budget": long_budget}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if long_budget <= tune_budget:
        raise ValueError(
            f"long_budget must exceed tune_budget ({tune_budget}), got {long_budget!r}"
        )
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    rows, trials, configs, keys = [], [], [], {}
    for name in competitors:
        code, optimizer = COMPETITORS[name]
        settings = {**template, "optimizer": optimizer}
        for arm, budget in zip(ARMS, (tune_budget, long_budget), strict=True):
            study = tune(
                code,
                budget=budget,
                seeds=tune_seeds,
                n_trials=n_trials,
                results_dir=results_dir,
                storage=storage,
                workers=workers,
                time_scale=time_scale,
                **settings,
            )
            lr, overrides = best_settings(study)
            rows.append(
                {
                    "competitor": name,
                    "tuned_at": arm,
                    "budget": budget,
                    "study": study.study_name,
                    "lr": lr,
                    "settings": overrides,
                    "objective": study.best_value,
                }
            )
            trials += [
                {
                    "competitor": name,
                    "tuned_at": arm,
                    "number": trial.number,
                    "lr": trial.params["lr"],
                    "settings": dict(trial.user_attrs.get("scheduler_overrides", {})),
                    "objective": trial.value,
                }
                for trial in study.get_trials(deepcopy=False, states=_COMPLETE)
            ]
            arm_configs = stage2_configs(
                {code: study}, budgets=[long_budget], seeds=list(seeds), **settings
            )
            keys[(name, arm)] = [config.key for config in arm_configs]
            configs += arm_configs
    unique = list({config.key: config for config in configs}.values())
    runs = run_sweep(unique, results_dir, progress=False, workers=workers)
    winners = pd.DataFrame(rows).set_index(["competitor", "tuned_at"])
    return TransferResult(winners, pd.DataFrame(trials), runs, keys, long_budget)


def transfer_regret(
    result: TransferResult, metric: str, *, diverged_below: float | None = None
) -> pd.DataFrame:
    """Each competitor's transfer regret at the long budget, with its 95 % interval.

    Args:
        result: from :func:`transfer_test`.
        metric: a final-epoch metric of the runs: ``"val_accuracy"`` (regret: the accuracy
            lost, long-tuned minus short-tuned) or a loss such as ``"val_loss"`` (regret: the
            factor short-tuned / long-tuned, averaged in log space); see the module docstring.
        diverged_below: for an accuracy, a final value below this counts as diverged (e.g.
            twice chance); a non-finite value always does.

    Returns:
        One row per competitor: the centres of both arms (``short-tuned``, ``long-tuned``, over
        the seeds where neither diverged; :func:`~hyperlr.lab.analysis.seed_centre`, as in
        every final-value table of the book), ``regret``,
        ``ci_low``, ``ci_high`` (``NaN`` with fewer than two usable seeds), ``seeds`` (usable),
        ``diverged`` (seeds left out) and ``same settings`` (both studies chose the same point).

    Raises:
        ValueError: a metric the runs do not record.
    """
    accuracy = "accuracy" in metric
    by_key = {run.config.key: run for run in result.runs}
    first = next(iter(by_key.values()))
    if metric not in first.final:
        raise ValueError(f"metric: the runs record {sorted(first.final)}, not {metric!r}")
    rows = {}
    for name in dict.fromkeys(competitor for competitor, _ in result.keys):
        short, long = ([by_key[key] for key in result.keys[(name, arm)]] for arm in ARMS)
        pairs, diverged = [], 0
        for short_run, long_run in zip(short, long, strict=True):
            values = (short_run.final[metric], long_run.final[metric])
            bad = [
                not math.isfinite(v) or (diverged_below is not None and v < diverged_below)
                for v in values
            ]
            if any(bad):
                diverged += 1
            else:
                pairs.append(values)
        values = np.array(pairs, dtype=float).reshape(-1, 2)
        if accuracy:
            differences = values[:, 1] - values[:, 0]
        else:
            differences = np.log(values[:, 0]) - np.log(values[:, 1])
        n = len(differences)
        mean = differences.mean() if n else math.nan
        half = (
            stats.t.ppf(0.975, n - 1) * differences.std(ddof=1) / math.sqrt(n)
            if n > 1
            else math.nan
        )
        low, high = mean - half, mean + half
        if not accuracy:
            mean, low, high = math.exp(mean), math.exp(low), math.exp(high)
        # Arm centres as every page states final values (seed_finals): the geometric mean for a
        # loss, the mean in logit space for an accuracy, so one run set gives one number.
        kind = "accuracy" if accuracy else "loss"
        rows[name] = {
            "short-tuned": seed_centre(values[:, 0], kind),
            "long-tuned": seed_centre(values[:, 1], kind),
            "regret": mean,
            "ci_low": low,
            "ci_high": high,
            "seeds": n,
            "diverged": diverged,
            "same settings": result.keys[(name, "short")] == result.keys[(name, "long")],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("competitor")
