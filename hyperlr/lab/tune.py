"""The paper's protocol: tune each schedule at a short budget, then rerun it at every budget.

Stage 1 runs one Optuna TPE study per scheduler code at a short budget, over the paper's search
space (``../PAPER.md`` §2): every trial trains the code at that budget for each seed and scores
the final validation loss averaged over the seeds. Stage 2 reruns each study's best settings at
every budget, rescaling only what depends on the budget (the registry derives ``total_iters``,
``T_max``, ``max_iter`` and warmup lengths from it).

Every run a trial trains goes through the results store (:func:`hyperlr.lab.sweep.run_sweep`), so
a trial that repeats an earlier one trains nothing. Studies live in Optuna storage: an SQLite
file in the results folder by default, or any Optuna database URL (PostgreSQL for several
machines). Calling :func:`tune` again continues a study up to ``n_trials`` finished trials
instead of restarting it, and ``workers > 1`` runs trials in several processes that share the
study's storage.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
from joblib import Parallel, delayed

from ..registry import SCHEDULER_CODES
from .grouped import DEFAULT_GROUP_SIZE
from .sweep import expand_grid, run_sweep
from .train import RunConfig, RunResult

__all__ = [
    "COMPETITORS",
    "SEARCH_SPACES",
    "ProtocolResult",
    "best_settings",
    "protocol",
    "stage2_configs",
    "study_name",
    "tune",
]

#: Optuna's TPE seed in the paper's protocol.
PAPER_SAMPLER_SEED = 42

Suggest = Callable[[optuna.Trial, float], dict[str, Any]]


def _lr(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", 1e-4, 5e-2, log=True)


def _hyperbolic(trial: optuna.Trial, time_scale: float) -> dict[str, Any]:
    # The paper's U in {200, 250, ..., 400}, on the study's time scale.
    bounds = [round(u * time_scale) for u in range(200, 401, 50)]
    return {
        "infimum_lr": trial.suggest_float("infimum_lr", 1e-7, 1e-4, log=True),
        "upper_bound": trial.suggest_categorical("upper_bound", bounds),
    }


#: Per scheduler code, the schedule settings the paper searches (the lr is searched for all).
#: ``time_scale`` shrinks durations for reduced studies (0.1: budgets of 5-20 epochs instead of
#: 50-200): hyperbolic upper bounds scale with it and ExponentialLR's per-epoch factor becomes
#: ``gamma ** (1 / time_scale)``, so each setting describes the same curve as in the paper.
SEARCH_SPACES: dict[str, Suggest] = {
    "N": lambda trial, scale: {},
    "P": lambda trial, scale: {"power": trial.suggest_float("power", 0.5, 3.0)},
    "C": lambda trial, scale: {"eta_min": trial.suggest_float("eta_min", 1e-7, 1e-4, log=True)},
    "E": lambda trial, scale: {"gamma": trial.suggest_float("gamma", 0.9, 0.99) ** (1.0 / scale)},
    "H": _hyperbolic,
    "EH": _hyperbolic,
    "WSD": lambda trial, scale: {
        "infimum_lr": trial.suggest_float("infimum_lr", 1e-7, 1e-4, log=True)
    },
}


def study_name(code: str, budget: int, template: Mapping[str, Any]) -> str:
    """A study's name: the code, the budget and the hash of the fixed run settings."""
    probe = RunConfig(scheduler=code, epochs=budget, **template)
    return f"{code}-N{budget}-{probe.key}"


def _grid(template: Mapping[str, Any], **grid: Any) -> list[RunConfig]:
    """:func:`~hyperlr.lab.sweep.expand_grid` over one data set: ``template`` holds the run
    settings (``dataset`` included), ``grid`` the schedulers, budgets, seeds and so on."""
    fixed = {name: value for name, value in template.items() if name != "dataset"}
    return expand_grid(datasets=template["dataset"], **grid, **fixed)


def _storage(
    storage: str | None, results_dir: str | os.PathLike[str]
) -> optuna.storages.RDBStorage:
    if storage is None:
        folder = Path(results_dir)
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(folder / 'optuna.sqlite3').resolve()}"
    # Several processes share an SQLite file: wait for its lock instead of failing at once.
    engine = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(storage, engine_kwargs=engine)


def _objective(
    code: str,
    budget: int,
    seeds: Sequence[int],
    template: Mapping[str, Any],
    results_dir: str | os.PathLike[str],
    time_scale: float,
) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        lr = _lr(trial)
        settings = SEARCH_SPACES[code](trial, time_scale)
        configs = _grid(
            template,
            schedulers=code,
            budgets=budget,
            seeds=list(seeds),
            overrides={code: settings},
            lr=lr,
        )
        runs = run_sweep(configs, results_dir, progress=False)
        losses = [run.final["val_loss"] for run in runs]
        trial.set_user_attr("scheduler_overrides", settings)
        trial.set_user_attr("run_keys", [run.config.key for run in runs])
        mean = sum(losses) / len(losses)
        # A diverged run scores as infinitely bad: Optuna would count a NaN as a failed trial.
        return mean if math.isfinite(mean) else float("inf")

    return objective


def _optimize(
    name: str,
    storage_url: str | None,
    results_dir: str | os.PathLike[str],
    objective_args: tuple,
    n_trials: int,
    sampler_seed: int,
    worker_threads: int | None = None,
    verbosity: int | None = None,
) -> None:
    """One worker: load the study and run ``n_trials`` more trials in it."""
    if verbosity is not None:  # a worker process starts with Optuna's default logging
        optuna.logging.set_verbosity(verbosity)
    study = optuna.load_study(
        study_name=name,
        storage=_storage(storage_url, results_dir),
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
    )
    if worker_threads:
        torch.set_num_threads(worker_threads)
    study.optimize(_objective(*objective_args), n_trials=n_trials)


_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)


def tune(
    code: str,
    *,
    budget: int,
    seeds: Sequence[int],
    n_trials: int,
    results_dir: str | os.PathLike[str],
    storage: str | None = None,
    workers: int = 1,
    time_scale: float = 1.0,
    **template: Any,
) -> optuna.Study:
    """Stage 1 for one scheduler code: an Optuna TPE study at ``budget`` epochs.

    Args:
        code: a scheduler code with a search space in :data:`SEARCH_SPACES`.
        budget: the short budget the study tunes at (the paper: 50 epochs).
        seeds: every trial trains one run per seed; the objective is the mean final
            validation loss.
        n_trials: the number of finished trials the study should hold; a rerun continues an
            existing study up to this number.
        results_dir: the results store the trials' runs go to (and the SQLite file by default).
        storage: an Optuna database URL; ``None``: ``results_dir/optuna.sqlite3``.
        workers: processes running trials at once, sharing the study through its storage.
        time_scale: duration scale of the search space (see :data:`SEARCH_SPACES`).
        **template: the other :class:`~hyperlr.lab.train.RunConfig` fields, ``dataset`` included.

    Returns:
        The study, loaded from its storage.

    Raises:
        ValueError: an unknown code, a bad budget, seeds, ``n_trials`` or ``workers``, or an
            invalid run setting, before any trial runs.
    """
    if code not in SEARCH_SPACES:
        raise ValueError(
            f"code: no search space for {code!r}; codes with one: {', '.join(SEARCH_SPACES)}"
            if code in SCHEDULER_CODES
            else f"code: unknown scheduler code {code!r}; known: {', '.join(SEARCH_SPACES)}"
        )
    for name, value in {"n_trials": n_trials, "workers": workers}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (isinstance(time_scale, (int, float)) and 0 < time_scale <= 1):
        raise ValueError(f"time_scale must be a number in (0, 1], got {time_scale!r}")
    if "dataset" not in template:
        raise ValueError("dataset: the run settings must name a dataset")
    # Validates the budget, the seeds and every fixed setting before anything runs.
    _grid(template, schedulers=code, budgets=budget, seeds=list(seeds))
    name = study_name(code, budget, template)
    storage_object = _storage(storage, results_dir)
    study = optuna.create_study(
        study_name=name, storage=storage_object, direction="minimize", load_if_exists=True
    )
    # Resuming: only the trials still missing run (a trial killed mid-way stays RUNNING in the
    # storage and is not counted as finished).
    missing = n_trials - len(study.get_trials(deepcopy=False, states=_FINISHED))
    if missing > 0:
        objective_args = (code, budget, tuple(seeds), dict(template), results_dir, time_scale)
        # Worker i runs its share of the missing trials; its TPE seed is the paper's 42 + i, so
        # that the workers do not propose the same first trials.
        shares = [missing // workers + (i < missing % workers) for i in range(workers)]
        threads = max(1, torch.get_num_threads() // workers) if workers > 1 else None
        jobs = [
            (
                name,
                storage,
                results_dir,
                objective_args,
                share,
                PAPER_SAMPLER_SEED + i,
                threads,
                optuna.logging.get_verbosity(),
            )
            for i, share in enumerate(shares)
            if share
        ]
        if len(jobs) == 1:
            _optimize(*jobs[0])
        else:
            # joblib's default backend, or the caller's (e.g. Dask) via joblib.parallel_config;
            # across machines, give them a shared Optuna database URL as ``storage``.
            Parallel(n_jobs=len(jobs))(delayed(_optimize)(*job) for job in jobs)
    return optuna.load_study(study_name=name, storage=storage_object)


def best_settings(study: optuna.Study) -> tuple[float, dict[str, Any]]:
    """The best trial's learning rate and schedule settings, as stage 2 reruns them."""
    trial = study.best_trial
    return trial.params["lr"], dict(trial.user_attrs["scheduler_overrides"])


def stage2_configs(
    studies: Mapping[str, optuna.Study],
    *,
    budgets: Sequence[int],
    seeds: Sequence[int],
    **template: Any,
) -> list[RunConfig]:
    """Stage 2: each code's best settings at every budget and seed (budget-derived settings
    are rescaled by the registry)."""
    best = {code: best_settings(study) for code, study in studies.items()}
    configs: list[RunConfig] = []
    for code, (lr, overrides) in best.items():
        configs += _grid(
            template,
            schedulers=code,
            budgets=list(budgets),
            seeds=list(seeds),
            overrides={code: overrides},
            lr=lr,
        )
    return configs


#: The competitors of the protocol: each is a scheduler code and optimizer. ``SF`` is
#: schedule-free AdamW at a constant rate (Defazio et al., 2024), tuned like the others.
COMPETITORS: dict[str, tuple[str, str]] = {
    **{code: (code, "adamw") for code in SEARCH_SPACES},
    "SF": ("N", "schedulefree_adamw"),
}


@dataclass(frozen=True)
class ProtocolResult:
    """What :func:`protocol` returns for one task.

    Attributes:
        winners: per competitor, the stage-1 study's best trial: ``lr``, its schedule settings
            and the objective (mean final validation loss at the tuning budget).
        runs: the stage-2 runs, each competitor's best settings at every budget and seed.
        competitor_of: each stage-2 run's key mapped to its competitor's name.
    """

    winners: pd.DataFrame
    runs: list[RunResult]
    competitor_of: dict[str, str]


def protocol(
    competitors: Sequence[str],
    *,
    tune_budget: int,
    n_trials: int,
    tune_seeds: Sequence[int],
    budgets: Sequence[int],
    seeds: Sequence[int],
    results_dir: str | os.PathLike[str],
    storage: str | None = None,
    workers: int = 1,
    time_scale: float = 1.0,
    group_size: int | None = DEFAULT_GROUP_SIZE,
    **template: Any,
) -> ProtocolResult:
    """The paper's two stages for one task: tune every competitor short, then train it long.

    Args:
        competitors: keys of :data:`COMPETITORS`.
        tune_budget, n_trials, tune_seeds: stage 1 (see :func:`tune`).
        budgets, seeds: stage 2, rerun through the results store with ``workers`` processes.
        results_dir, storage, workers, time_scale: as in :func:`tune`.
        group_size: stage 2's runs trained together (see :func:`hyperlr.lab.sweep.run_sweep`).
        **template: the other run settings (``dataset`` and e.g. subsets, model options).
    """
    unknown = [name for name in competitors if name not in COMPETITORS]
    if unknown:
        raise ValueError(
            f"competitors: unknown {', '.join(map(repr, unknown))}; known: {', '.join(COMPETITORS)}"
        )
    rows, studies = [], {}
    for name in competitors:
        code, optimizer = COMPETITORS[name]
        settings = {**template, "optimizer": optimizer}
        study = tune(
            code,
            budget=tune_budget,
            seeds=tune_seeds,
            n_trials=n_trials,
            results_dir=results_dir,
            storage=storage,
            workers=workers,
            time_scale=time_scale,
            **settings,
        )
        studies[name] = (code, study, settings)
        lr, overrides = best_settings(study)
        rows.append(
            {"competitor": name, "lr": lr, "settings": overrides, "objective": study.best_value}
        )
    configs, competitor_of = [], {}
    for name, (code, study, settings) in studies.items():
        for config in stage2_configs({code: study}, budgets=budgets, seeds=seeds, **settings):
            configs.append(config)
            competitor_of[config.key] = name
    runs = run_sweep(configs, results_dir, progress=False, workers=workers, group_size=group_size)
    return ProtocolResult(pd.DataFrame(rows).set_index("competitor"), runs, competitor_of)
