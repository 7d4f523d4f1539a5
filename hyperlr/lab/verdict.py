"""The book's verdict: every experiment's committed results, read through one registry.

:data:`STUDIES` lists each experiment whose runs the book commits: its results folder (under
``results/``), the data set selected in it, the metric and, for the tuned protocol, the
arguments it was run with. :func:`load_evidence` turns each into the quantities the paper's
claims are about (SLCD, final values with intervals, power fits, the transfer regret, the scale
against the paper); a study whose folder is absent is skipped with a note, so an experiment
added later (e.g. operator learning, folder ``operator_learning``) joins the verdict as soon as
its results are committed. :func:`claims_table` confronts the paper's claims with that evidence
and with the paper's own (:mod:`hyperlr.lab.paper`).

Comparisons between schedules are paired over the shared seeds (:func:`vs_best`,
:func:`headline_table`); an SLCD at or below the floor of a budget-free schedule and a transfer
regret whose interval is wide score ``inconclusive``; counts over studies count only the
studies that ran a schedule (:func:`best_or_tied`); :data:`GUIDANCE` says what backs each piece
of advice and :data:`AUTHORS_CODE` which commits of the authors' repository a finding rests on.
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

from .analysis import (
    normalized_rank,
    paired_comparison,
    power_fit_table,
    seed_curves,
    seed_finals,
    slcd_floor,
    slcd_form,
    study_slcd,
)
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
    "AUTHORS_CODE",
    "REGRET_TOLERANCE",
    "CLAIMS",
    "GUIDANCE",
    "STUDIES",
    "Guidance",
    "Study",
    "StudyEvidence",
    "best_or_tied",
    "claims_table",
    "common_ranks",
    "guidance_table",
    "headline_table",
    "load_evidence",
    "paper_evidence",
    "slcd_floor",
    "vs_best",
]

#: The schedules whose curves depend on the budget, as the paper compares them.
PAPER_SCHEDULES = ("P", "C", "H", "EH")
#: Schedules that ignore the budget: their SLCD is the metric's floor.
BUDGET_FREE = ("N", "E", "SF")
#: A final accuracy below this counts as diverged (twice chance for ten classes).
DIVERGED_ACCURACY = 0.2
#: A transfer regret is "no cost" only where its whole 95 % interval lies below this: one point of
#: accuracy, or a loss 10 % above the long-tuned one. An interval reaching further without lying
#: above no regret is scored inconclusive.
REGRET_TOLERANCE = {"accuracy": 0.01, "loss": 1.10}

#: What the history of the authors' repository (GitHub ``Axect/HyperbolicLR``) shows, with the
#: commits it rests on (hash, author date, file). Read from ``git log`` of the repository.
AUTHORS_CODE: dict[str, dict[str, str]] = {
    "operator loader": {
        "commit": "1af332d923868e32ab535cc031bbeca3c2464468",
        "short": "1af332d",
        "date": "2024-07-22",
        "files": "paper/util.py (load_integral), paper/main_integral.py (DataLoader)",
        "finding": (
            "load_integral returns each split as a plain list of three tensors, which "
            "main_integral.py hands to a DataLoader: one batch per epoch, so one optimizer "
            "update per epoch"
        ),
        "caveat": (
            "this code entered the repository on 2024-07-22 (commit 1af332d, 'Integrate "
            "Integral'), after the published operator curves: the TraONet curves were committed "
            "on 2024-07-05 (f8201a2), the DeepONet curves on 2024-07-17 (fb27e88); whether the "
            "runs behind them used this loader cannot be told from the repository, so the "
            "operator scale factors (one update per epoch) may understate the paper's updates "
            "by up to the number of batches per epoch"
        ),
    },
    "EH extra step": {
        "commit": "cbafe66f7e5ae2f835592754b58c1de0df87f3b3",
        "short": "cbafe66",
        "date": "2024-07-24",
        "files": "hyperbolic_lr.py (ExpHyperbolicLR.step)",
        "finding": (
            "until this commit ('Remove unnecessary step') ExpHyperbolicLR.step() also called "
            "optimizer.step(), so every run of the published EH curves, all committed before it, "
            "probably took one extra optimizer update per epoch with stale gradients"
        ),
        "caveat": (
            "the repository does not record which version produced the result files, so this is "
            "likely, not confirmed"
        ),
    },
}


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
        slcd_form: the SLCD's ``(method, start epoch)``, from
            :func:`~hyperlr.lab.analysis.slcd_form` (the same rule as every chapter).
    """

    study: Study
    runs: pd.DataFrame
    finals: pd.DataFrame
    slcd: pd.Series
    fits: pd.DataFrame
    scale: pd.DataFrame | None
    regret: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)
    slcd_form: tuple[str, int] = ("linear", 1)

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
        form = slcd_form(runs["epochs"], study.kind)
        slcd = study_slcd(curves, study.kind)["mean"]
        fits = power_fit_table(curves, kind=study.kind)
        try:
            scale = scale_table(runs)
        except ValueError as error:
            scale = None
            notes.append(f"no scale factors: {error}")
        evidence.append(
            StudyEvidence(study, runs, finals, slcd, fits, scale, regret, notes, slcd_form=form)
        )
    return evidence, skipped


def scale_summary(evidence: StudyEvidence) -> str:
    """The scale in one phrase: budgets, and the factors of updates and parameters.

    For the operator task the paper's updates assume the authors' loader (one update per epoch),
    which is uncertain (:data:`AUTHORS_CODE`); the phrase says so.
    """
    budgets = evidence.budgets
    text = f"{budgets[0]}-{budgets[-1]} epochs"
    if evidence.scale is not None:
        factors = evidence.scale["paper / ours"]
        text += (
            f", {_times(factors['updates in total (longest budget)'], 'updates')} and "
            f"{_times(factors['model parameters'], 'parameters')} than the paper's"
        )
        if evidence.study.paper_model in ("DeepONet", "TraONet"):
            loader = AUTHORS_CODE["operator loader"]
            text += (
                f" (if the authors' runs took one update per epoch, as their loader of "
                f"{loader['date']}, commit {loader['short']}, does; uncertain)"
            )
    return text


def _times(factor: float, quantity: str) -> str:
    """``factor`` = paper / ours as "83x fewer updates" or, below 1, "2.4x more updates"."""
    ratio, word = (factor, "fewer") if factor >= 1 else (1 / factor, "more")
    return f"{_ratio(ratio)} {word} {quantity}"


def _ratio(ratio: float) -> str:
    """A ratio of at least 1 as "83x" or "2.4x"."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def updates_span(evidence: Sequence[StudyEvidence]) -> str:
    """How the studies' optimizer updates at the longest budget compare with the paper's, in
    words: the range of factors of the studies that made fewer, and apart those that made more
    (for the operator task, against the authors' uncertain one update per epoch).

    Example: ``"78x to 310x fewer updates than the paper's (image, oscillator); 2.4x more
    (operator (DeepONet))"``.
    """
    factors = {
        e.study.name: float(e.scale.loc["updates in total (longest budget)", "paper / ours"])
        for e in evidence
        if e.scale is not None
    }
    groups = (
        ("fewer updates than the paper's", {n: f for n, f in factors.items() if f >= 1}),
        ("more", {n: 1 / f for n, f in factors.items() if f < 1}),
    )
    parts = []
    for words, ratios in groups:
        if ratios:
            low, high = _ratio(min(ratios.values())), _ratio(max(ratios.values()))
            span = low if low == high else f"{low} to {high}"
            parts.append(f"{span} {words} ({', '.join(ratios)})")
    return "; ".join(parts) or "no study with a scale against the paper"


def _names(codes: Sequence[str]) -> str:
    return ", ".join(codes) if codes else "none"


def _combine(readings: Mapping[str, str]) -> str:
    """One verdict from per-schedule readings ``support``, ``against`` or ``nothing``."""
    values = set(readings.values())
    if values == {"support"}:
        return "for"
    if values == {"against"}:
        return "against"
    if {"support", "against"} <= values:
        return "mixed"
    return "inconclusive"


def _insensitive(e: StudyEvidence) -> tuple[str, str]:
    slcd = e.slcd.reindex(PAPER_SCHEDULES).dropna()
    if not {"H", "EH"} <= set(slcd.index):
        return "H or EH not run", "n/a"
    baselines = slcd.drop(["H", "EH"])
    floor_code, floor = slcd_floor(e.slcd)
    readings = {}
    for code in ("H", "EH"):
        if floor_code is not None and slcd[code] <= floor:
            readings[code] = "nothing"  # at or below the floor: flat, not evidence
        else:
            readings[code] = "support" if (slcd[code] < baselines).all() else "against"
    text = (
        f"mean SLCD H {slcd['H']:.3g}, EH {slcd['EH']:.3g}; "
        f"{', '.join(f'{c} {v:.3g}' for c, v in baselines.items())}"
    )
    text += f"; floor {floor_code} {floor:.3g}" if floor_code else "; no floor (N, E not run)"
    below = [code for code, r in readings.items() if r == "nothing"]
    if below:
        text += f"; {_names(below)} at or below the floor (not evidence)"
    return text, _combine(readings)


def _smallest_eh(e: StudyEvidence) -> tuple[str, str]:
    slcd = e.slcd.reindex(PAPER_SCHEDULES).dropna()
    if "EH" not in slcd.index:
        return "EH not run", "n/a"
    order = list(slcd.sort_values().index)
    rank = order.index("EH") + 1
    text = f"EH ranks {rank} of {len(order)} by mean SLCD (smallest: {order[0]})"
    floor_code, floor = slcd_floor(e.slcd)
    if floor_code is not None and slcd["EH"] <= floor:
        return text + f"; EH at or below the floor {floor_code} {floor:.3g}", "inconclusive"
    return text, "for" if rank == 1 else "against"


def _consistent(e: StudyEvidence) -> tuple[str, str]:
    """Each budget step of H and EH, paired over seeds: measurably better, worse, or neither."""
    diverged = DIVERGED_ACCURACY if e.study.kind == "accuracy" else None
    none = 0.0 if e.study.kind == "accuracy" else 1.0
    better = (
        (lambda p: p["low"] > none) if e.study.kind == "accuracy" else (lambda p: p["high"] < none)
    )
    worse = (
        (lambda p: p["high"] < none) if e.study.kind == "accuracy" else (lambda p: p["low"] > none)
    )
    steady, readings, notes = [], {}, []
    for code in dict.fromkeys(e.finals["scheduler"]):
        budgets = sorted(e.finals.loc[e.finals["scheduler"] == code, "budget"])
        steps = [
            paired_comparison(
                e.runs, e.study.metric, code, code, kind=e.study.kind, budget=long,
                second_budget=short, diverged_below=diverged,
            )
            for short, long in zip(budgets, budgets[1:], strict=False)
        ]  # fmt: skip
        if not steps:
            continue
        if all(better(p) for p in steps):
            steady.append(code)
            reading = "support"
        elif any(worse(p) for p in steps):
            reading = "against"
        else:
            reading = "nothing"
        if code in ("H", "EH"):
            readings[code] = reading
            measured = sum(better(p) for p in steps)
            notes.append(f"{code} measurably better at {measured} of {len(steps)} steps")
    notes.sort(key=lambda note: note.split()[0] != "H")  # H first, then EH
    if not readings:
        return "H and EH not run at several budgets", "n/a"
    text = (
        f"measurably better at every budget step (paired over seeds): {_names(steady)}; "
        + "; ".join(notes)
    )
    return text, _combine(readings)


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


def _regret_reading(e: StudyEvidence, code: str) -> str:
    """``against`` (interval above no regret), ``support`` (within tolerance) or ``nothing``."""
    row = e.regret.loc[code]
    none = 0.0 if e.study.kind == "accuracy" else 1.0
    if row["ci_low"] > none:
        return "against"
    if row["same settings"] or row["ci_high"] <= REGRET_TOLERANCE[e.study.kind]:
        return "support"
    return "nothing"


def _transfer(e: StudyEvidence) -> tuple[str, str]:
    if e.regret is None:
        return "not tuned", "n/a"
    table = e.regret
    codes = [code for code in ("H", "EH") if code in table.index]
    if not codes:
        return "H and EH not tuned", "n/a"
    readings = {code: _regret_reading(e, code) for code in codes}
    parts = [
        f"{code} {table.loc[code, 'regret']:.3g} [{table.loc[code, 'ci_low']:.3g}, "
        f"{table.loc[code, 'ci_high']:.3g}]" + (" (wide)" if readings[code] == "nothing" else "")
        for code in codes
    ]
    unit = "accuracy lost" if e.study.kind == "accuracy" else "loss factor"
    cost = [n for n in table.index if _regret_reading(e, n) == "against"]
    text = f"regret ({unit}) {'; '.join(parts)}; measurable cost for: {_names(cost)}"
    # For: both hyperbolic schedules' intervals lie within the tolerance; wide: inconclusive.
    return text, _combine(readings)


#: The paper's claims, each with the function reading one study's evidence on it.
CLAIMS: dict[str, Any] = {
    "epoch-insensitive learning curves (H, EH below P and C in SLCD)": _insensitive,
    "smallest SLCD for EH": _smallest_eh,
    "consistent improvement with the budget": _consistent,
    "best power-law fit (highest R²) for EH": _power_law,
    "settings tuned short transfer to long budgets": _transfer,
}


def vs_best(e: StudyEvidence) -> pd.DataFrame:
    """Every schedule against the best at the longest budget, paired over the shared seeds.

    The best is the schedule with the best centre (:func:`~hyperlr.lab.analysis.seed_centre`);
    each other one is compared with it by :func:`~hyperlr.lab.analysis.paired_comparison`
    (paired t-interval, :math:`n - 1` degrees of freedom, and the exact sign-flip p-value). A
    schedule is ``tied`` with the best where the 95 % interval of the paired difference contains
    no difference (0 for an accuracy, a ratio of 1 for a loss).

    Returns:
        One row per schedule, best first: ``centre``, ``rank``, ``normalized rank``
        (:func:`~hyperlr.lab.analysis.normalized_rank`), ``difference``, ``low``, ``high``,
        ``n``, ``df``, ``p_sign_flip``, ``p_min`` and ``tied`` (the best itself: ``True``).
    """
    longest = e.longest()
    best = longest.index[0]
    k = len(longest)
    diverged = DIVERGED_ACCURACY if e.study.kind == "accuracy" else None
    none = 0.0 if e.study.kind == "accuracy" else 1.0
    rows = {}
    for rank, code in enumerate(longest.index, start=1):
        row = {
            "centre": longest.loc[code, "centre"],
            "rank": rank,
            "normalized rank": normalized_rank(rank, k),
        }
        if code == best:
            row.update(tied=True)
        else:
            compared = paired_comparison(
                e.runs, e.study.metric, code, best, kind=e.study.kind,
                budget=max(e.budgets), diverged_below=diverged,
            )  # fmt: skip
            compared.pop("budget")
            row.update(compared)
            # Told apart only where the interval excludes no difference (one seed: no interval).
            row["tied"] = not (compared["low"] > none or compared["high"] < none)
        rows[code] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("scheduler")


def headline_table(evidence: Sequence[StudyEvidence]) -> pd.DataFrame:
    """Per study, at the longest budget: the best schedule, those tied with it, H's and EH's ranks.

    Ties come from :func:`vs_best` (paired over the shared seeds). Ranks are given raw and
    normalized, :math:`(r-1)/(k-1)`, so that studies of 4, 7 and 8 schedules compare.
    """
    rows = {}
    for e in evidence:
        table = vs_best(e)
        best = table.index[0]
        row = {
            "best": best,
            "best value": float(table.loc[best, "centre"]),
            "tied with the best": ", ".join(c for c in table.index[1:] if table.loc[c, "tied"])
            or "none",
            "seeds paired": int(table["n"].min()) if "n" in table else 0,
            "schedules": len(table),
            "diverged runs": int(e.finals["n_diverged"].sum()),
        }
        for code in ("H", "EH"):
            row[f"rank of {code}"] = table.loc[code, "rank"] if code in table.index else math.nan
            row[f"normalized rank of {code}"] = (
                table.loc[code, "normalized rank"] if code in table.index else math.nan
            )
        rows[e.study.name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("study")


def common_ranks(evidence: Sequence[StudyEvidence]) -> pd.DataFrame:
    """Ranks at the longest budget among the schedules every study ran (best: 1).

    A rank among all of a study's schedules depends on how many it ran (4, 7 or 8); among the
    schedules common to all studies the ranks compare directly.
    """
    common = set.intersection(*(set(e.longest().index) for e in evidence)) if evidence else set()
    order = [code for code in PAPER_SCHEDULES if code in common] + sorted(
        common - set(PAPER_SCHEDULES)
    )
    rows = {}
    for e in evidence:
        ranked = [code for code in e.longest().index if code in common]
        rows[e.study.name] = {code: ranked.index(code) + 1 for code in order}
    return pd.DataFrame.from_dict(rows, orient="index", columns=order).rename_axis("study")


def best_or_tied(
    evidence: Sequence[StudyEvidence], codes: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The studies where any of ``codes`` is the best or tied with it, and those that ran any.

    The second list is the denominator: a study that never ran a schedule says nothing about it.
    """
    won, ran = [], []
    for e in evidence:
        table = vs_best(e)
        present = [code for code in codes if code in table.index]
        if present:
            ran.append(e.study.name)
            if table.loc[present, "tied"].any():
                won.append(e.study.name)
    return won, ran


@dataclass(frozen=True)
class Guidance:
    """One piece of practical advice and what backs it.

    Attributes:
        topic: short name, e.g. ``"choosing U"``.
        advice: the advice in one sentence.
        backing: ``"runs"`` (the book's studies measured it), ``"derivation"`` (proved in a
            chapter, not measured) or ``"untested"``.
        source: where it comes from (a chapter label or what in the runs).
        theory: the theory chapter's reference once it covers the point (``None``: not yet).
    """

    topic: str
    advice: str
    backing: str
    source: str
    theory: str | None = None


#: The verdict's advice, each with what backs it. A row marked ``untested`` has no run behind
#: it; ``theory`` is the hook for the theory chapter's reference when it lands.
GUIDANCE: tuple[Guidance, ...] = (
    Guidance(
        "H against P and C", "prefer H where runs of different budgets must be compared",
        "runs", "claims table, claim 1 (SLCD against the floor)",
    ),
    Guidance(
        "constant rate first", "try a tuned constant rate or schedule-free AdamW first at a "
        "single budget", "runs", "headline table (paired over seeds)",
    ),
    Guidance(
        "EH on short budgets", "prefer H over EH on short budgets", "runs",
        "normalized rank of EH in the headline table",
    ),
    Guidance(
        "choosing U", "set U to the longest budget you may train", "derivation",
        "chap-derivation (initial slope 1/sqrt(x(2-x)) times the asymptote's); no study varied U",
        "chap-theory, the role of U: regret at 4x with U at the longest budget, 1.25x and 10x",
    ),
    Guidance(
        "EH's decades", "keep EH's eta_init / eta_inf to two or three decades on short budgets",
        "untested", "no study varied eta_inf for EH",
    ),
    Guidance(
        "warm-up", "add a warm-up in optimizer steps where large initial rates destabilise",
        "untested", "no study ran a warm-up variant of H or EH",
    ),
    Guidance(
        "per-step stepping", "give max_iter and upper_bound in optimizer steps to step per batch",
        "untested", "every study steps once per epoch",
        "chap-theory, the role of the stepping: per-epoch and per-step regrets",
    ),
    Guidance(
        "square-root rule", "keep C, linear decay or WSD and rescale the base rate by "
        "sqrt(T0 / T) when the budget grows", "derivation",
        "chap-theory (convex bound, noisy quadratic model); no study of this book ran the rule",
        "chap-theory, transfer regret and the envelope",
    ),
)  # fmt: skip


def guidance_table(guidance: Sequence[Guidance] = GUIDANCE) -> pd.DataFrame:
    """The advice with its backing, one row per piece (the theory column: ``pending``)."""
    return pd.DataFrame(
        [
            {
                "topic": g.topic,
                "advice": g.advice,
                "backed by": g.backing,
                "source": g.source,
                "theory chapter": g.theory or "pending",
            }
            for g in guidance
        ]
    ).set_index("topic")


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

    Verdicts: ``for`` (the data agree with the claim), ``against``, ``mixed`` (one hyperbolic
    schedule for, the other against), ``inconclusive`` (an SLCD at or below the floor of a
    budget-free schedule, or a regret interval too wide to tell a cost from none), ``n/a`` (the
    study cannot speak to it, e.g. a schedule it did not run).
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
