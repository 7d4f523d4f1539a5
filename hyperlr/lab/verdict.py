"""The book's verdict: every experiment's committed results, read through one registry.

:data:`STUDIES` lists each experiment whose runs the book commits: its results folder (under
``results/``), the data set selected in it, the metric and, for the tuned protocol, the
arguments it was run with. :func:`load_evidence` turns each into the quantities the paper's
claims are about (SLCD, final values with intervals, power fits, the transfer regret, the scale
against the paper); a study whose folder is absent is skipped with a note, so an experiment
added later (e.g. operator learning, folder ``operator_learning``) joins the verdict as soon as
its results are committed. :func:`claims_table` confronts the paper's claims with that evidence
and with the paper's own (:mod:`hyperlr.lab.paper`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .analysis import power_fit_table, seed_curves, seed_finals, slcd_table
from .paper import (
    PaperCurvesUnavailableError,
    load_paper_curves,
    published_power_fit_r2,
    published_slcd,
)
from .results import ResultsStore, runs_to_frame
from .scale import scale_table
from .transfer import transfer_regret, transfer_test
from .tune import protocol

__all__ = [
    "CLAIMS",
    "STUDIES",
    "Study",
    "StudyEvidence",
    "claims_table",
    "load_evidence",
    "paper_evidence",
]

#: The schedules whose curves depend on the budget, as the paper compares them.
PAPER_SCHEDULES = ("P", "C", "H", "EH")
#: Schedules that ignore the budget: their SLCD is the metric's floor.
BUDGET_FREE = ("N", "E", "SF")
#: A final accuracy below this counts as diverged (twice chance for ten classes).
DIVERGED_ACCURACY = 0.2


@dataclass(frozen=True)
class Study:
    """One experiment of the book whose results are committed.

    Attributes:
        name: short label, e.g. ``"image"``.
        chapter: the MyST label of its chapter, e.g. ``"chap-image"``.
        folder: its results folder under the results root.
        dataset: the data set selected in the folder (``None``: all runs).
        metric: the per-epoch column judged, e.g. ``"val_accuracy"``.
        kind: ``"accuracy"`` or ``"loss"``.
        paper_model: the paper's model for the same task (``"CNN"``, ``"LSTM"``, ``"DeepONet"``),
            ``None`` where the paper has none.
        tuned: the arguments of :func:`hyperlr.lab.tune.protocol` the study was run with (the
            run settings under ``"settings"``); ``None`` for a study at default settings.
        model: the model selected in the folder (``None``: all), for folders holding several.
    """

    name: str
    chapter: str
    folder: str
    dataset: str | None
    metric: str
    kind: str
    paper_model: str | None
    tuned: Mapping[str, Any] | None = None
    model: str | None = None


_PROTOCOL = {
    "competitors": ["N", "P", "C", "E", "H", "EH", "WSD", "SF"],
    "tune_budget": 5,
    "n_trials": 6,
    "tune_seeds": [89],
    "budgets": [5, 10, 15, 20],
    "seeds": [89, 231, 928],
    "time_scale": 0.1,
    "workers": 2,
}

#: Every experiment chapter's committed study, in the book's order (chapter 7's with the
#: defaults of its parameters cell).
STUDIES: tuple[Study, ...] = (
    Study(
        "image", "chap-image", "image_classification", "fashion_mnist", "val_accuracy",
        "accuracy", "CNN",
    ),
    Study(
        "oscillator", "chap-sequence", "sequence_forecasting", "oscillator", "val_loss", "loss",
        "LSTM",
    ),
    Study(
        "sunspots", "chap-sequence", "sequence_forecasting", "sunspots", "val_loss", "loss", None
    ),
    Study(
        "operator (DeepONet)", "chap-operator", "operator_learning", None, "val_loss", "loss",
        "DeepONet", model="deeponet",
    ),
    Study(
        "operator (TraONet)", "chap-operator", "operator_learning", None, "val_loss", "loss",
        "TraONet", model="traonet",
    ),
    Study(
        "tuned image", "chap-protocol", "tune_short_train_long", "fashion_mnist",
        "val_accuracy", "accuracy", "CNN",
        {**_PROTOCOL, "settings": {
            "train_subset": 2000, "val_subset": 1000, "model_options": {"channels": 16},
        }},
    ),
    Study(
        "tuned oscillator", "chap-protocol", "tune_short_train_long", "oscillator", "val_loss",
        "loss", "LSTM",
        {**_PROTOCOL, "settings": {
            "train_subset": 512, "val_subset": 256, "batch_size": 64,
            "model_options": {"hidden_size": 32, "num_layers": 2},
        }},
    ),
)  # fmt: skip


@dataclass
class StudyEvidence:
    """What one study's runs say, in the quantities of the paper's claims.

    Attributes:
        study: the registry entry.
        runs: its runs (one setting per schedule; ``scheduler`` holds ``SF`` for
            schedule-free AdamW), from :func:`~hyperlr.lab.results.runs_to_frame`.
        finals: :func:`~hyperlr.lab.analysis.seed_finals` of the metric.
        slcd: mean SLCD per schedule (linear for an accuracy, log for a loss).
        fits: :func:`~hyperlr.lab.analysis.power_fit_table` of the metric.
        scale: :func:`~hyperlr.lab.scale.scale_table`, ``None`` where the paper has no such
            experiment.
        regret: :func:`~hyperlr.lab.transfer.transfer_regret` for a tuned study, else ``None``.
        notes: what could not be computed, and why.
    """

    study: Study
    runs: pd.DataFrame
    finals: pd.DataFrame
    slcd: pd.Series
    fits: pd.DataFrame
    scale: pd.DataFrame | None
    regret: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)

    @property
    def budgets(self) -> list[int]:
        return sorted(set(self.finals["budget"]))

    def longest(self) -> pd.DataFrame:
        """Final values at the longest budget, best first."""
        table = self.finals[self.finals["budget"] == max(self.budgets)].set_index("scheduler")
        return table.sort_values("centre", ascending=self.study.kind != "accuracy")


def _label_schedule_free(frame: pd.DataFrame) -> pd.DataFrame:
    schedule_free = frame["optimizer"] == "schedulefree_adamw"
    return frame.assign(scheduler=frame["scheduler"].where(~schedule_free, "SF"))


def _one_setting_per_schedule(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep, per schedule, the setting run at the most budgets and seeds (the study's own)."""
    setting = ["lr_init", "scheduler_overrides", "optimizer"]
    counts = frame.groupby(["scheduler", *setting], dropna=False)["key"].nunique()
    chosen = counts.groupby(level="scheduler").idxmax()
    keep = pd.MultiIndex.from_tuples(chosen.tolist(), names=counts.index.names)
    index = pd.MultiIndex.from_frame(frame[["scheduler", *setting]])
    return frame[index.isin(keep)]


def _study_runs(study: Study, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if study.tuned is None:
        frame = ResultsStore(folder).frame()
        if study.dataset is not None:
            frame = frame[frame["dataset"] == study.dataset]
        if study.model is not None:
            frame = frame[frame["model"] == study.model]
        return _one_setting_per_schedule(_label_schedule_free(frame)), None
    arguments = {k: v for k, v in study.tuned.items() if k != "settings"}
    settings = {"dataset": study.dataset, "device": "auto", **study.tuned["settings"]}
    result = protocol(results_dir=folder, **arguments, **settings)
    frame = runs_to_frame(result.runs)
    frame["scheduler"] = frame["key"].map(result.competitor_of)
    transfer_arguments = {k: v for k, v in arguments.items() if k not in ("budgets",)} | {
        "long_budget": max(arguments["budgets"])
    }
    transfer = transfer_test(results_dir=folder, **transfer_arguments, **settings)
    diverged = DIVERGED_ACCURACY if study.kind == "accuracy" else None
    return frame, transfer_regret(transfer, study.metric, diverged_below=diverged)


def load_evidence(
    results_root: str | os.PathLike[str], studies: Sequence[Study] = STUDIES
) -> tuple[list[StudyEvidence], list[str]]:
    """Each study's evidence from the committed runs under ``results_root``.

    Returns:
        The evidence of every study found, and one note per study skipped (folder absent or
        empty).
    """
    evidence, skipped = [], []
    for study in studies:
        folder = Path(results_root) / study.folder
        if not folder.is_dir() or not any(folder.glob("*.json")):
            skipped.append(f"{study.name}: no committed results in results/{study.folder}")
            continue
        runs, regret = _study_runs(study, folder)
        if runs.empty:
            what = " ".join(filter(None, (study.dataset, study.model))) or "any kind"
            skipped.append(f"{study.name}: no runs of {what} in results/{study.folder}")
            continue
        notes = []
        curves = seed_curves(runs, study.metric)
        diverged = DIVERGED_ACCURACY if study.kind == "accuracy" else None
        finals = seed_finals(runs, study.metric, kind=study.kind, diverged_below=diverged)
        budgets = sorted(set(runs["epochs"]))
        # The paper's log form for losses, from epoch 10 of its 50-200 epochs scaled with the
        # budgets; the linear form for accuracies, or where the shortest curve is too short.
        start = max(1, round(10 * max(budgets) / 200))
        log_form = study.kind == "loss" and min(budgets) >= max(start + 1, 3)
        slcd = slcd_table(curves, "log" if log_form else "linear", start=start)["mean"]
        fits = power_fit_table(curves, kind=study.kind)
        try:
            scale = scale_table(runs)
        except ValueError as error:
            scale = None
            notes.append(f"no scale factors: {error}")
        evidence.append(StudyEvidence(study, runs, finals, slcd, fits, scale, regret, notes))
    return evidence, skipped


def scale_summary(evidence: StudyEvidence) -> str:
    """The scale in one phrase: budgets, and the factors of updates and parameters."""
    budgets = evidence.budgets
    text = f"{budgets[0]}-{budgets[-1]} epochs"
    if evidence.scale is not None:
        factors = evidence.scale["paper / ours"]
        text += (
            f", {_times(factors['updates in total (longest budget)'], 'updates')} and "
            f"{_times(factors['model parameters'], 'parameters')} than the paper's"
        )
    return text


def _times(factor: float, quantity: str) -> str:
    """``factor`` = paper / ours as "83x fewer updates" or, below 1, "2.4x more updates"."""
    ratio, word = (factor, "fewer") if factor >= 1 else (1 / factor, "more")
    return f"{ratio:.0f}x {word} {quantity}" if ratio >= 10 else f"{ratio:.1f}x {word} {quantity}"


def _names(codes: Sequence[str]) -> str:
    return ", ".join(codes) if codes else "none"


def _insensitive(e: StudyEvidence) -> tuple[str, str]:
    slcd = e.slcd.reindex(PAPER_SCHEDULES).dropna()
    if not {"H", "EH"} <= set(slcd.index):
        return "H or EH not run", "n/a"
    baselines = slcd.drop(["H", "EH"])
    below = [code for code in ("H", "EH") if (slcd[code] < baselines).all()]
    text = (
        f"mean SLCD H {slcd['H']:.3g}, EH {slcd['EH']:.3g}; P, C "
        f"{', '.join(f'{v:.3g}' for v in baselines)}"
    )
    if "N" in e.slcd.index:
        text += f"; floor N {e.slcd['N']:.3g}"
    verdict = {2: "for", 1: "mixed", 0: "against"}[len(below)]
    return text, verdict


def _smallest_eh(e: StudyEvidence) -> tuple[str, str]:
    slcd = e.slcd.reindex(PAPER_SCHEDULES).dropna()
    if "EH" not in slcd.index:
        return "EH not run", "n/a"
    order = list(slcd.sort_values().index)
    rank = order.index("EH") + 1
    return (
        f"EH ranks {rank} of {len(order)} by mean SLCD (smallest: {order[0]})",
        "for" if rank == 1 else "against",
    )


def _consistent(e: StudyEvidence) -> tuple[str, str]:
    sign = 1 if e.study.kind == "accuracy" else -1
    steady = []
    for code, group in e.finals.groupby("scheduler", sort=False):
        values = group.sort_values("budget")["centre"].to_numpy()
        if len(values) > 1 and (sign * np.diff(values) > 0).all():
            steady.append(code)
    hyperbolic = [code for code in ("H", "EH") if code in steady]
    others = [code for code in steady if code not in ("H", "EH")]
    text = f"improve at every budget step: {_names(steady)}"
    if others:
        text += f" ({_names(others)} as well)" if hyperbolic else ""
    return text, {2: "for", 1: "mixed", 0: "against"}[len(hyperbolic)]


def _power_law(e: StudyEvidence) -> tuple[str, str]:
    if "R²" not in e.fits.columns:
        return "fewer than three budgets", "n/a"
    r2 = e.fits["R²"].dropna()
    if r2.empty:
        return "no power fit could be computed", "n/a"
    best = r2.idxmax()
    return (
        f"highest R² {r2[best]:.3f} by {best} (EH: {r2.get('EH', math.nan):.3f})",
        "for" if best == "EH" else "against",
    )


def _transfer(e: StudyEvidence) -> tuple[str, str]:
    if e.regret is None:
        return "not tuned", "n/a"
    none = 0.0 if e.study.kind == "accuracy" else 1.0
    table = e.regret
    cost = [n for n in table.index if table.loc[n, "ci_low"] > none]
    parts = [
        f"{code} {table.loc[code, 'regret']:.3g} [{table.loc[code, 'ci_low']:.3g}, "
        f"{table.loc[code, 'ci_high']:.3g}]"
        for code in ("H", "EH")
        if code in table.index
    ]
    unit = "accuracy lost" if e.study.kind == "accuracy" else "loss factor"
    text = f"regret ({unit}) {'; '.join(parts)}; measurable cost for: {_names(cost)}"
    # For: neither hyperbolic schedule measurably lost by keeping its short-tuned settings.
    return text, "against" if {"H", "EH"} & set(cost) else "for"


#: The paper's claims, each with the function reading one study's evidence on it.
CLAIMS: dict[str, Any] = {
    "epoch-insensitive learning curves (H, EH below P and C in SLCD)": _insensitive,
    "smallest SLCD for EH": _smallest_eh,
    "consistent improvement with the budget": _consistent,
    "best power-law fit (highest R²) for EH": _power_law,
    "settings tuned short transfer to long budgets": _transfer,
}


def paper_evidence() -> dict[str, str]:
    """The paper's own evidence on each claim, computed from its published tables and curves."""
    published = published_slcd()
    means = published.groupby(["model", "scheduler"])["published"].mean().unstack()
    insensitive = [
        model
        for model, row in means.iterrows()
        if max(row["H"], row["EH"]) < min(row["P"], row["C"])
    ]
    smallest = means.idxmin(axis=1)
    evidence = {
        "epoch-insensitive learning curves (H, EH below P and C in SLCD)": (
            f"published SLCD: H and EH below P and C for {_names(insensitive)} "
            f"(of {', '.join(means.index)})"
        ),
        "smallest SLCD for EH": "published SLCD smallest for "
        + "; ".join(f"{model}: {code}" for model, code in smallest.items()),
        "best power-law fit (highest R²) for EH": "published: "
        + "; ".join(
            f"{row.model} {row.scheduler} (R² {row.published:.4f})"
            for row in published_power_fit_r2().itertuples()
        ),
        "settings tuned short transfer to long budgets": (
            "not measured: the paper tunes at 50 epochs only and reruns the winners"
        ),
    }
    try:
        curves = load_paper_curves()
    except PaperCurvesUnavailableError as error:
        evidence["consistent improvement with the budget"] = f"(paper curves unavailable: {error})"
        return evidence
    steady = []
    for (model, metric), group in curves.groupby(["model", "metric"]):
        if model == "CNN" and metric != "accuracy":
            continue
        last = group[group["epoch"] == group["budget"]]
        sign = 1 if metric == "accuracy" else -1
        codes = [
            code
            for code, rows in last.groupby("scheduler")
            if (sign * np.diff(rows.sort_values("budget")["mean"].to_numpy()) > 0).all()
        ]
        steady.append(f"{model}: {_names(codes)}")
    evidence["consistent improvement with the budget"] = (
        "published curves, improving at every budget step: " + "; ".join(steady)
    )
    return evidence


def claims_table(evidence: Sequence[StudyEvidence]) -> pd.DataFrame:
    """One row per claim and study: our evidence, its verdict and scale, and the paper's.

    Verdicts: ``for`` (the data agree with the claim), ``against``, ``mixed`` (partly, or the
    data do not separate the schedules), ``n/a`` (the study cannot speak to it).
    """
    paper = paper_evidence()
    rows = []
    for claim, read in CLAIMS.items():
        for item in evidence:
            text, verdict = read(item)
            if verdict == "n/a":
                continue
            rows.append(
                {
                    "claim": claim,
                    "study": item.study.name,
                    "our evidence": text,
                    "verdict": verdict,
                    "scale": scale_summary(item),
                    "paper's evidence": paper.get(claim, ""),
                }
            )
    return pd.DataFrame(rows).set_index(["claim", "study"])
