"""Sweeps: a grid of runs, of which only those missing from the results store are trained.

A chapter lists its runs with :func:`expand_grid` (data sets x schedules x overrides x budgets
x seeds) and hands them to :func:`run_sweep`, which

1. checks every parameter before any work: unknown data sets or scheduler codes, bad budgets or
   seeds, scheduler settings the schedule refuses, an unwritable results folder, and invalid
   files already in the store for the listed runs all raise at once;
2. loads every listed run the store already has;
3. trains the missing ones in groups (:mod:`hyperlr.lab.grouped`), each run under its claim in
   the store and written atomically as soon as it finishes, under an outer progress bar.

So a sweep killed midway loses only the run in progress and resumes where it stopped, running
the same list twice trains nothing the second time, and two sweeps over one folder at once
(processes, machines on a shared disk) share the missing runs out instead of training them twice.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import torch
from filelock import Timeout
from joblib import Parallel, delayed

from ..registry import SCHEDULER_CODES, make_scheduler
from .data import DATASETS, ImageData
from .grouped import DEFAULT_GROUP_SIZE, check_group_size, group_runs, train_runs
from .progress import progress_bar
from .results import ResultsStore, RunFileError
from .runs import RunConfig, RunResult, _is_int
from .series import SeriesData
from .train import load_data, resolve_device, train_run

__all__ = ["expand_grid", "missing_runs", "run_sweep"]

# The fields expand_grid sets itself; every other RunConfig field may be fixed by keyword.
_GRID_FIELDS = {"dataset", "scheduler", "epochs", "seed", "scheduler_overrides", "lr"}


def _as_list(name: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name}: must list at least one value")
    return values


def _override_grid(
    codes: Sequence[str], overrides: Mapping[str, Any] | None
) -> dict[str, list[dict[str, Any]]]:
    """Each code's list of scheduler-setting dicts (``[{}]``: the registry's defaults)."""
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, Mapping):
        raise ValueError("overrides: must map scheduler codes to a dict or a list of dicts")
    stray = sorted(set(overrides) - set(codes))
    if stray:
        raise ValueError(
            f"overrides: codes {', '.join(map(repr, stray))} are not among the schedulers of "
            f"the grid ({', '.join(codes)})"
        )
    grid: dict[str, list[dict[str, Any]]] = {}
    for code in codes:
        settings = overrides.get(code, [{}])
        settings = [settings] if isinstance(settings, Mapping) else list(settings)
        if not settings or not all(isinstance(s, Mapping) for s in settings):
            raise ValueError(
                f"overrides[{code!r}]: must be a dict of settings or a non-empty list of dicts"
            )
        grid[code] = [dict(s) for s in settings]
    return grid


def expand_grid(
    *,
    datasets: str | Sequence[str],
    schedulers: str | Sequence[str],
    budgets: int | Sequence[int],
    seeds: int | Sequence[int],
    overrides: Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]] | None = None,
    lr: float | Mapping[str, float] = 1e-3,
    **fixed: Any,
) -> list[RunConfig]:
    """The runs of a grid: data sets x scheduler codes x their overrides x budgets x seeds.

    Args:
        datasets: keys of :data:`hyperlr.lab.data.DATASETS`.
        schedulers: codes of :data:`hyperlr.registry.SCHEDULER_CODES`.
        budgets: epoch budgets :math:`N`, integers >= 1.
        seeds: training seeds, integers >= 0.
        overrides: per scheduler code, one dict of scheduler settings or a list of them (each
            a separate run), e.g. ``{"H": [{"upper_bound": 250}, {"upper_bound": 400}]}``;
            codes left out use the registry's defaults.
        lr: the initial learning rate, or one per scheduler code (as tuned per schedule);
            a code missing from the mapping is an error.
        **fixed: any other :class:`~hyperlr.lab.train.RunConfig` field, the same for every run
            (``train_subset=512``, ``device="cpu"``...).

    Returns:
        The configurations, in grid order, without duplicates.

    Raises:
        ValueError: naming the parameter and what it accepts, for any invalid value.
    """
    datasets = _as_list("datasets", datasets)
    schedulers = _as_list("schedulers", schedulers)
    budgets = _as_list("budgets", budgets)
    seeds = _as_list("seeds", seeds)
    for name in datasets:
        if name not in DATASETS:
            raise ValueError(f"datasets: unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    for code in schedulers:
        if code not in SCHEDULER_CODES:
            known = ", ".join(f"{c} ({d})" for c, d in SCHEDULER_CODES.items())
            raise ValueError(f"schedulers: unknown code {code!r}; known codes: {known}")
    for budget in budgets:
        if not _is_int(budget) or budget < 1:
            raise ValueError(f"budgets: each must be an integer >= 1, got {budget!r}")
    for seed in seeds:
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seeds: each must be an integer >= 0, got {seed!r}")
    settings = _override_grid(schedulers, overrides)
    if isinstance(lr, Mapping):
        missing = [code for code in schedulers if code not in lr]
        if missing:
            raise ValueError(f"lr: the mapping has no learning rate for {', '.join(missing)}")
        lrs = {code: lr[code] for code in schedulers}
    else:
        lrs = dict.fromkeys(schedulers, lr)
    accepted = sorted({f.name for f in fields(RunConfig)} - _GRID_FIELDS)
    unknown = sorted(set(fixed) - set(accepted))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not a run setting; accepted: {', '.join(accepted)}"
        )

    configs: dict[str, RunConfig] = {}  # by key, keeping grid order and dropping duplicates
    for dataset in datasets:
        for code in schedulers:
            for setting in settings[code]:
                for budget in budgets:
                    for seed in seeds:
                        config = RunConfig(
                            dataset=dataset,
                            scheduler=code,
                            epochs=budget,
                            seed=seed,
                            scheduler_overrides=setting,
                            lr=lrs[code],
                            **fixed,
                        )
                        configs.setdefault(config.key, config)
    return list(configs.values())


def _check_scheduler(config: RunConfig) -> None:
    """Build the run's schedule on a dummy optimizer, so bad settings fail before training."""
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=config.lr)
    try:
        make_scheduler(config.scheduler, optimizer, config.epochs, 1, **config.scheduler_overrides)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"scheduler_overrides: schedule {config.scheduler!r} with budget {config.epochs} "
            f"refuses {dict(config.scheduler_overrides)!r}: {error}"
        ) from None


def _check_device(config: RunConfig) -> None:
    device = resolve_device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device: {config.device!r} asks for CUDA, which is not available here; "
            'use "auto" or "cpu"'
        )


def _unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    unique: dict[str, RunConfig] = {}
    for config in configs:
        if not isinstance(config, RunConfig):
            raise ValueError(f"configs: each must be a RunConfig, got {type(config).__name__}")
        unique.setdefault(config.key, config)
    return list(unique.values())


def missing_runs(
    configs: Iterable[RunConfig], results_dir: str | os.PathLike[str]
) -> list[RunConfig]:
    """The configurations without a valid run in ``results_dir`` (no file, or an invalid one,
    which :func:`run_sweep` reports)."""
    store = ResultsStore(results_dir)

    def stored(config: RunConfig) -> bool:
        try:
            return store.load(config) is not None
        except RunFileError:
            return False

    return [config for config in _unique(configs) if not stored(config)]


def run_sweep(
    configs: Iterable[RunConfig],
    results_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = True,
    workers: int = 1,
    group_size: int | str | None = DEFAULT_GROUP_SIZE,
) -> list[RunResult]:
    """Load the stored runs of ``configs`` and train (and store) the missing ones.

    The missing runs train in groups (:func:`hyperlr.lab.grouped.train_runs`): runs that share
    data and model, up to ``group_size`` at a time, share each forward and backward pass, each
    with its own optimizer and schedule, and give the same curves as alone (to float
    rounding). Each run is stored the moment it ends, with the size of its group.

    Everything that can be checked is checked before the first run trains: the configurations
    and their schedules, the results folder, the existing files of the listed runs, and the
    data sets the missing runs need (loaded once each and kept on the device for the sweep).

    Args:
        configs: the runs, e.g. from :func:`expand_grid`; duplicates are run once.
        results_dir: the results store's folder (created if needed).
        progress: show an outer bar over the runs to train and an inner one per group.
        data_root, download: passed to the data loaders (see :mod:`hyperlr.lab.data`).
        workers: runs trained at once through joblib: worker processes on this machine by
            default (each with an equal share of the CPU threads), or the machines of a Dask or
            Ray cluster inside ``joblib.parallel_config(backend="dask")`` (they must see
            ``results_dir`` on a shared disk). Runs are independent and each is written
            atomically under its claim (:meth:`~hyperlr.lab.results.ResultsStore.claim`), so no
            number of workers, nor of sweeps over the same folder, corrupts a stored run or
            trains one twice. Results of the same configuration can differ in the last bits
            between thread counts. Each worker trains whole groups.
        group_size: most runs trained together (``"auto"``: the size measured best for the
            model and device, :func:`hyperlr.lab.grouped.default_group_size`; ``None``: all
            that can share a group; 1: one
            run at a time, as :func:`~hyperlr.lab.train.train_run` alone). A run interrupted
            with its group is trained again by the next sweep; finished runs are kept.

    Returns:
        One result per distinct configuration, in the order given.

    Raises:
        ValueError: an invalid configuration, an unwritable ``results_dir``, or workers that do
            not see it.
        RunFileError: files of listed runs exist but are invalid (all of them are listed);
            fix or delete them, nothing is overwritten.
        FileNotFoundError: a data set the missing runs need is not available.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    check_group_size(group_size)
    configs = _unique(configs)
    for config in configs:
        _check_scheduler(config)
        _check_device(config)
    # Workers elsewhere (a Dask or Ray cluster) must find the folder at the same absolute path.
    results_dir = os.path.abspath(results_dir)
    store = ResultsStore(results_dir)
    store.check_writable()
    store.remove_stale_temporaries()

    results: dict[str, RunResult] = {}
    problems: list[RunFileError] = []
    for config in configs:
        try:
            stored = store.load(config)
        except RunFileError as error:
            problems.append(error)
            continue
        if stored is not None:
            results[config.key] = stored
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise RunFileError(store.root, f"invalid file(s) for listed runs:\n{listing}")

    # The runs this sweep trains: every listed run the store lacks.
    todo = [config for config in configs if config.key not in results]
    groups = group_runs(todo, group_size)
    data_cache: dict[tuple[Any, ...], ImageData | SeriesData] = {}

    def data_key(config: RunConfig) -> tuple[Any, ...]:
        return (
            config.dataset,
            config.data_seed,
            config.train_subset,
            config.val_subset,
            json.dumps(config.data_options, sort_keys=True),
            str(resolve_device(config.device)),
        )

    # Load every data set before training, so a missing one fails now, not hours in.
    for config in todo:
        key = data_key(config)
        if key not in data_cache:
            data = load_data(config, root=data_root, download=download)
            data_cache[key] = data.to(resolve_device(config.device))

    if workers > 1 and len(groups) > 1:
        threads = max(1, torch.get_num_threads() // workers)
        # No backend named: joblib's default (loky, processes on this machine), or whichever
        # the caller's `joblib.parallel_config(backend=...)` selects, e.g. Dask or Ray.
        Parallel(n_jobs=workers)(
            delayed(_train_and_store)(group, results_dir, data_root, download, threads)
            for group in groups
        )
        for config in todo:
            stored = store.load(config)
            if stored is None:
                raise ValueError(
                    f"results_dir: the workers wrote no file for run {config.key} in "
                    f"{results_dir!r}; every worker must see that folder at the same path"
                )
            results[config.key] = stored
        return [results[config.key] for config in configs]

    bar = progress_bar(total=len(todo), desc="sweep", unit="run", disable=not progress)
    bar.set_postfix(stored=len(results), to_train=len(todo))

    def store_result(result: RunResult) -> None:
        results[result.config.key] = result
        bar.update()

    _train_under_claims(
        store, groups, lambda config: data_cache[data_key(config)], store_result, progress
    )
    bar.close()
    return [results[config.key] for config in configs]


def _train_and_store(
    group: list[RunConfig],
    results_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None,
    download: bool,
    threads: int,
) -> None:
    """One worker's job: train one group's runs under their claims, writing each as it ends."""
    torch.set_num_threads(threads)
    store = ResultsStore(results_dir)
    loaded: list[ImageData | SeriesData] = []

    def data_for(config: RunConfig) -> ImageData | SeriesData:
        if not loaded:  # only once a claim is held: a worker without results_dir fails first
            loaded.append(load_data(config, root=data_root, download=download))
        return loaded[0]

    _train_under_claims(store, [group], data_for, lambda result: None, progress=False)


def _train_under_claims(
    store: ResultsStore,
    groups: list[list[RunConfig]],
    data_for: Callable[[RunConfig], ImageData | SeriesData],
    on_result: Callable[[RunResult], None],
    progress: bool,
) -> None:
    """Train the runs of ``groups`` that no other sweep holds, each group under its claims.

    A group claims every member it can without waiting; the members already stored meanwhile
    are taken as they are, the rest train together and each is saved the moment it ends. The
    claims are released when the group is done. Members another process holds are put off and
    afterwards waited for one at a time (as :meth:`ResultsStore.claim_each` does), so two
    sweeps never wait on each other's groups; one the other process left unfinished is trained
    alone.
    """
    put_off: list[RunConfig] = []
    for group in groups:
        with contextlib.ExitStack() as claims:
            mine = []
            for config in group:
                try:
                    stored = claims.enter_context(store.claim(config, timeout=0))
                except Timeout:
                    put_off.append(config)
                    continue
                if stored is None:
                    mine.append(config)
                else:
                    on_result(stored)

            def save(result: RunResult) -> None:
                store.save(result)
                on_result(result)

            if len(mine) == 1:  # alone: today's loop
                save(train_run(mine[0], data_for(mine[0]), progress=progress))
            elif mine:
                train_runs(
                    mine, data_for(mine[0]), group_size=None, on_result=save, progress=progress
                )
    for config in put_off:
        with store.claim(config) as stored:
            if stored is None:
                stored = train_run(config, data_for(config), progress=progress)
                store.save(stored)
            on_result(stored)
