r"""What theory says about the paper's claims and about the book's own tasks.

:func:`paper_setting` runs :func:`hyperlr.theory.transfer` at the paper's budgets (tuning at
50 epochs, budgets 50, 100, 200, the paper's search grids) in the convex bound and in both
regimes of the noisy quadratic model, and :func:`theory_curves` the per-epoch loss of every
schedule with its short-tuned settings. :func:`theory_rows` turns them into one computed
sentence per claim of :data:`hyperlr.lab.verdict.CLAIMS`, and :func:`sqrt_rule_statement` says in
which model the square-root rule serves as well as H or EH. :func:`book_tasks` reads each
committed study's budgets, steps per epoch and upper bound from its runs' configurations, and
:func:`predicted_exponents` gives the exponent :math:`\beta` of :math:`\gamma^*(T)\propto T^\beta`
each task should show in each model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import power_fit, slcd
from ..theory import (
    MODELS,
    REFERENCE_LR,
    SQRT_RULE,
    TransferResult,
    convex_bound,
    nqm_curve,
    schedule_free_nqm_loss,
    schedule_lrs,
    transfer,
)
from .sizes import data_shape

__all__ = [
    "PAPER_BUDGETS",
    "SCHEDULES",
    "book_tasks",
    "predicted_exponents",
    "paper_setting",
    "sqrt_rule_statement",
    "theory_curves",
    "theory_rows",
]

#: The schedules the book trains, then the square-root rule applied to C, L and WSD.
SCHEDULES = ("N", "P", "L", "C", "E", "H", "EH", "WSD", "SF", "C+sqrt", "L+sqrt", "WSD+sqrt")
#: The paper's tuning budget and its double and quadruple, epochs.
PAPER_BUDGETS = (50, 100, 200)
#: Optimizer steps per epoch of the theory's "paper setting" (a choice: the models have no
#: data set; the chapter shows what changing it does).
STEPS_PER_EPOCH = 10
_CLAIM_SCHEDULES = ("P", "C", "H", "EH")


def paper_setting(
    model: str, steps_per_epoch: int | None = None, budgets: tuple[int, ...] | None = None
) -> TransferResult:
    """The transfer protocol of :data:`SCHEDULES` in ``model`` (``"convex"``, ``"easy"``,
    ``"hard"``), tuned at the first of ``budgets`` (:data:`PAPER_BUDGETS` by default) with
    :data:`STEPS_PER_EPOCH` by default; cached per process."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return _paper_setting(model, steps_per_epoch or STEPS_PER_EPOCH, budgets or PAPER_BUDGETS)


@lru_cache(maxsize=8)
def _paper_setting(model: str, steps_per_epoch: int, budgets: tuple[int, ...]) -> TransferResult:
    return transfer(
        SCHEDULES, model, tune_budget=budgets[0], budgets=budgets, steps_per_epoch=steps_per_epoch
    )


def _curve(model: str, name: str, budget: int, rate: float, settings: dict, steps: int):
    base = name.removesuffix(SQRT_RULE)
    shape = schedule_lrs(base, budget, steps, **settings) / REFERENCE_LR
    if base == "SF":
        if model == "convex":  # the averaged iterate's bound after each epoch
            t = steps * np.arange(1, budget + 1)
            return 1 / (2 * rate * t) + rate / 2
        return np.array(
            [schedule_free_nqm_loss(rate, steps * e, model) for e in range(1, budget + 1)]
        )
    if model == "convex":  # the bound on the last iterate after each epoch
        return np.array([convex_bound(rate * shape[: steps * e]) for e in range(1, budget + 1)])
    return nqm_curve(rate * shape, model, every=steps)


def theory_curves(
    model: str,
    schedules: Sequence[str] = _CLAIM_SCHEDULES,
    steps_per_epoch: int | None = None,
    budgets: tuple[int, ...] | None = None,
) -> pd.DataFrame:
    """Per-epoch loss (bound or expected loss) of each schedule at each budget, with the rate
    and settings tuned at the first budget (:data:`STEPS_PER_EPOCH` and :data:`PAPER_BUDGETS`
    by default): columns ``scheduler``, ``budget``, ``epoch``, ``loss``."""
    steps_per_epoch = steps_per_epoch or STEPS_PER_EPOCH
    budgets = budgets or PAPER_BUDGETS
    result = paper_setting(model, steps_per_epoch, budgets)
    frames = []
    for name in schedules:
        for budget in budgets:
            row = result.row(name, budget)
            loss = _curve(model, name, budget, row.rate, row.settings, steps_per_epoch)
            frames.append(
                pd.DataFrame(
                    {
                        "scheduler": name,
                        "budget": budget,
                        "epoch": np.arange(1, budget + 1),
                        "loss": loss,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _mean_slcd(curves: pd.DataFrame) -> pd.Series:
    out = {}
    for name, group in curves.groupby("scheduler", sort=False):
        budgets = sorted(set(group["budget"]))
        by_budget = {b: group[group["budget"] == b]["loss"].to_numpy() for b in budgets}
        pairs = [(a, b) for i, a in enumerate(budgets) for b in budgets[i + 1 :]]
        start = max(1, budgets[0] // 5)  # the paper's epoch 10 of 50, on other time scales
        out[name] = float(
            np.mean([slcd(by_budget[a], by_budget[b], "log", start=start) for a, b in pairs])
        )
    return pd.Series(out)


def _names(codes: Sequence[str]) -> str:
    return ", ".join(codes) if codes else "none"


def _model_label(model: str) -> str:
    return {"convex": "convex bound", "easy": "NQM easy", "hard": "NQM hard"}[model]


def sqrt_rule_statement(models: Sequence[str] = MODELS) -> pd.DataFrame:
    """Per model: the gap to the envelope at the longest budget of the better of H and EH and
    of the best square-root-rule schedule, and whether the rule serves as well (its gap no
    more than one percentage point above the hyperbolic one), with a sentence."""
    rows = []
    for model in models:
        result = paper_setting(model)
        longest = max(r.budget for r in result.rows)
        gaps = {r.schedule: r.gap for r in result.rows if r.budget == longest}
        hyperbolic = min(("H", "EH"), key=gaps.get)
        rules = [name for name in gaps if name.endswith(SQRT_RULE)]
        rule = min(rules, key=gaps.get)
        serves = gaps[rule] <= gaps[hyperbolic] + 0.01
        k = longest // result.tune_budget
        sentence = (
            f"{_model_label(model)}: at {k}x the tuning budget the square-root rule's best "
            f"({rule}) is {gaps[rule]:.1%} above the envelope, {hyperbolic} {gaps[hyperbolic]:.1%}"
            f": the rule serves {'as well or better' if serves else 'worse'}"
        )
        rows.append(
            {
                "model": model,
                "hyperbolic": hyperbolic,
                "hyperbolic_gap": gaps[hyperbolic],
                "sqrt_rule": rule,
                "sqrt_rule_gap": gaps[rule],
                "serves_as_well": bool(serves),
                "statement": sentence,
            }
        )
    return pd.DataFrame(rows)


def theory_rows(models: Sequence[str] = MODELS) -> pd.DataFrame:
    """One computed "what theory says" sentence per claim of the verdict, over ``models``.

    Each claim is read in each model from the short-tuned settings of :func:`paper_setting`:
    the mean log-SLCD of the per-epoch curves of P, C, H, EH (claims 1 and 2), whether the
    final loss falls at every budget step (3), the R² of a power law through the final losses
    (4), the transfer regret at the longest budget (5). Columns: ``claim``, ``theory`` (the
    sentence, one clause per model) and ``supports`` (models in which the theory agrees with the
    claim).
    """
    from .verdict import CLAIMS  # noqa: PLC0415 (the verdict imports the whole laboratory)

    claims = list(CLAIMS)
    texts: dict[str, list[str]] = {c: [] for c in claims}
    support: dict[str, list[str]] = {c: [] for c in claims}
    for model in models:
        label = _model_label(model)
        result = paper_setting(model)
        curves = theory_curves(model)
        slcds = _mean_slcd(curves)
        below = [c for c in ("H", "EH") if slcds[c] < min(slcds["P"], slcds["C"])]
        texts[claims[0]].append(
            f"{label}: SLCD " + ", ".join(f"{c} {slcds[c]:.3f}" for c in slcds.index)
        )
        if len(below) == 2:
            support[claims[0]].append(model)
        smallest = slcds.idxmin()
        texts[claims[1]].append(f"{label}: smallest {smallest}")
        if smallest == "EH":
            support[claims[1]].append(model)
        finals = {
            name: [result.row(name, b).loss for b in PAPER_BUDGETS] for name in _CLAIM_SCHEDULES
        }
        steady = [c for c, v in finals.items() if np.all(np.diff(v) < 0)]
        texts[claims[2]].append(f"{label}: improve at every step {_names(steady)}")
        if {"H", "EH"} <= set(steady):
            support[claims[2]].append(model)
        r2 = {c: power_fit(PAPER_BUDGETS, v).r2 for c, v in finals.items()}
        r2 = {c: v for c, v in r2.items() if not math.isnan(v)}
        best = max(r2, key=r2.get)
        texts[claims[3]].append(f"{label}: highest R² {best} ({r2[best]:.4f})")
        if best == "EH":
            support[claims[3]].append(model)
        longest = PAPER_BUDGETS[-1]
        regret = {r.schedule: r.regret for r in result.rows if r.budget == longest}
        others = {c: v for c, v in regret.items() if c not in ("H", "EH") and "+" not in c}
        texts[claims[4]].append(
            f"{label}: regret at {longest // PAPER_BUDGETS[0]}x H {regret['H']:.1%}, "
            f"EH {regret['EH']:.1%}, others {min(others.values()):.1%} to "
            f"{max(others.values()):.1%}"
        )
        if max(regret["H"], regret["EH"]) <= min(others.values()):
            support[claims[4]].append(model)
    return pd.DataFrame(
        {
            "claim": claims,
            "theory": ["; ".join(texts[c]) for c in claims],
            "supports": [_names(support[c]) for c in claims],
        }
    )


# -------------------------------------------------------------------- the book's own tasks


def book_tasks(results_root: str | Path | None = None) -> pd.DataFrame:
    """Each committed study of the verdict: budgets, steps per epoch and hyperbolic upper bound,
    read from its runs' configurations. Steps per epoch are
    :math:`\\lceil n_{train} / \\text{batch}\\rceil` (the loader keeps the last partial batch),
    with :math:`n_{train}` the run's ``train_subset`` or, where it is the whole split, the data
    set's size. Studies without committed runs are left out."""
    from .verdict import STUDIES  # noqa: PLC0415

    root = Path(results_root) if results_root else Path(__file__).resolve().parents[2] / "results"
    rows = []
    for study in STUDIES:
        folder = root / study.folder
        if not folder.is_dir():
            continue
        configs = [json.loads(p.read_text())["config"] for p in sorted(folder.glob("*.json"))]
        configs = [
            c
            for c in configs
            if (study.dataset is None or c["dataset"] == study.dataset)
            and (study.model is None or c["model"] == study.model)
        ]
        if not configs:
            continue
        first = configs[0]
        # From the run's settings alone: the book never reads a data set to describe a study.
        n_train = data_shape(
            first["dataset"],
            train_subset=first["train_subset"],
            val_subset=first.get("val_subset"),
            **first.get("data_options", {}),
        ).n_train
        bounds = [
            c["scheduler_overrides"].get("upper_bound")
            for c in configs
            if c["scheduler"] in ("H", "EH")
        ]
        bounds = [b for b in bounds if b is not None]
        rows.append(
            {
                "task": study.name,
                "budgets": tuple(sorted({c["epochs"] for c in configs})),
                "n_train": int(n_train),
                "batch_size": int(first["batch_size"]),
                "steps_per_epoch": math.ceil(n_train / first["batch_size"]),
                "upper_bound": max(bounds) if bounds else None,
            }
        )
    return pd.DataFrame(rows)


def predicted_exponents(
    tasks: pd.DataFrame,
    schedules: Sequence[str] = ("N", "P", "C", "E", "H", "EH", "WSD", "SF"),
    models: Sequence[str] = MODELS,
) -> pd.DataFrame:
    r"""The exponent :math:`\beta` of :math:`\gamma^*(T) \propto T^\beta` that each task of
    :func:`book_tasks` should show, per schedule and model: the registry defaults (H and EH with
    the task's upper bound, else 1.25 times its longest budget), the task's budgets and steps
    per epoch, the optimal base rate at every budget, a least-squares slope on logarithms."""
    rows = []
    for task in tasks.itertuples():
        upper = task.upper_bound or round(1.25 * max(task.budgets))
        fixed = {"H": {"upper_bound": upper}, "EH": {"upper_bound": upper}}
        grids = {name: {} for name in schedules}
        for model in models:
            result = transfer(
                list(schedules),
                model,
                tune_budget=min(task.budgets),
                budgets=task.budgets,
                steps_per_epoch=task.steps_per_epoch,
                grids=grids,
                fixed=fixed,
            )
            for name in schedules:
                rows.append(
                    {
                        "task": task.task,
                        "model": model,
                        "scheduler": name,
                        "exponent": result.exponents[name],
                    }
                )
    return pd.DataFrame(rows)
