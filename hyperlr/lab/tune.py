"""The paper's protocol: tune each schedule at a short budget, then rerun it at every budget.

Stage 1 runs one Optuna study per scheduler code at a short budget, over the paper's search
space (``../PAPER.md`` §2): every trial trains the code at that budget for each seed and scores
the final validation loss averaged over the seeds. Stage 2 reruns each study's best settings at
every budget, rescaling only what depends on the budget (the registry derives ``total_iters``,
``T_max``, ``max_iter`` and warmup lengths from it).

Every run a trial trains goes through the results store (:func:`hyperlr.lab.sweep.run_sweep`),
under the store's per-run claims, so a trial that repeats an earlier run trains nothing and two
processes never train one run twice.

Studies live in Optuna storage: an SQLite file in the results folder by default, or any Optuna
database URL (PostgreSQL for several machines). They survive interruption and share out work
with Optuna's own mechanisms:

* **Continuing.** Calling :func:`tune` again continues the study until it holds ``n_trials``
  COMPLETE trials (:class:`optuna.study.MaxTrialsCallback`); failed trials (an error, a
  Ctrl-C) are not counted. A running trial sends a heartbeat every
  :data:`HEARTBEAT_INTERVAL_S` seconds; one silent for :data:`HEARTBEAT_GRACE_S` seconds
  (its process was killed) is marked FAIL.
* **Fair, reproducible points.** The sampler (:class:`SharedCandidateSampler`) gives trial
  ``k`` of a study candidate ``k`` of a sequence fixed by the seed and each parameter's name:
  every competitor's study tries the same learning rates in the same order (and the same values
  for any parameter two competitors share), whatever its other parameters, and a continued or
  shared study tries exactly the candidates an uninterrupted one does (a failed trial's
  candidate goes to the next trial). A trial whose settings repeat another's is pruned.
* **Many processes.** ``workers > 1``, or the same :func:`tune` call started on several
  machines against one database, run trials side by side; together they stop at ``n_trials``
  COMPLETE trials (trials already running when it is reached still finish). Creating the
  database's tables is serialised (a file lock for SQLite, an advisory lock for PostgreSQL),
  so processes can start at the same moment on an empty database.
* **Checked first.** Every argument, the device, the storage (driver installed, server
  reachable) and, when trials remain to run, the data are checked before anything is written;
  :func:`check_protocol` does the same for both stages of :func:`protocol`.
* **Named by what it computes.** A study's name (:func:`study_name`) holds the code, the
  budget, the hash of the fixed run settings, the tuning seeds and the time scale, so that
  changing any of them starts another study instead of silently returning an old one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import sqlalchemy
import torch
from filelock import FileLock
from joblib import Parallel, delayed
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from ..registry import SCHEDULER_CODES
from .grouped import DEFAULT_GROUP_SIZE
from .results import ResultsStore
from .sweep import _check_device, _check_scheduler, expand_grid, missing_runs, run_sweep
from .train import RunConfig, RunResult, load_data

__all__ = [
    "CANDIDATE_ATTR",
    "COMPETITORS",
    "HEARTBEAT_GRACE_S",
    "HEARTBEAT_INTERVAL_S",
    "SEARCH_SPACES",
    "ProtocolResult",
    "SharedCandidateSampler",
    "best_settings",
    "candidate_unit",
    "check_protocol",
    "protocol",
    "search_ranges",
    "stage2_configs",
    "study_name",
    "study_trials",
    "tune",
]

#: The sampler seed of every study (the paper seeded Optuna with 42).
PAPER_SAMPLER_SEED = 42

#: Seconds between the heartbeats of a running trial.
HEARTBEAT_INTERVAL_S = 20
#: Seconds without a heartbeat after which a running trial counts as dead and is marked FAIL
#: (generous: a loaded machine or database may delay a beat).
HEARTBEAT_GRACE_S = 120

Suggest = Callable[[optuna.Trial, float], dict[str, Any]]


#: The system attribute holding a trial's candidate index (see :class:`SharedCandidateSampler`).
CANDIDATE_ATTR = "hyperlr:candidate"


def candidate_unit(seed: int, name: str, index: int) -> float:
    """Candidate ``index`` of parameter ``name`` as a number in [0, 1).

    The van der Corput sequence in base 2 (``index``'s bits read backwards after the binary
    point, :math:`u_k = \\sum_j b_j(k) 2^{-j-1}`), with every digit flipped by a bit hashed from
    ``(seed, name, the digits before it)``: Owen's nested scrambling. Whatever the seed, the
    first :math:`2^m` candidates fall one in each of the intervals
    :math:`[i 2^{-m}, (i + 1) 2^{-m})`, so any prefix of a study covers its range evenly; the
    digits past ``index``'s bits are random, so each candidate lies anywhere in its interval.
    The value depends on nothing but the three arguments.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be an integer >= 0, got {index!r}")
    value, prefix = 0.0, 1  # prefix: the leading 1 tells prefixes of different lengths apart
    for position in range(53):  # a double's mantissa
        digit = (index >> position) & 1
        key = f"{seed}/{name}/{prefix:x}".encode()
        flip = hashlib.blake2b(key, digest_size=1).digest()[0] & 1
        value += (digit ^ flip) * 2.0 ** -(position + 1)
        prefix = (prefix << 1) | digit
    return min(value, math.nextafter(1.0, 0.0))


def _from_unit(unit: float, distribution: optuna.distributions.BaseDistribution) -> Any:
    """The value of ``distribution`` at quantile ``unit`` (uniform, or uniform in log space)."""
    dist = optuna.distributions
    if isinstance(distribution, dist.CategoricalDistribution):
        choices = distribution.choices
        return choices[min(int(unit * len(choices)), len(choices) - 1)]
    if not isinstance(distribution, (dist.FloatDistribution, dist.IntDistribution)):
        raise ValueError(
            f"distribution: {type(distribution).__name__} is not supported; "
            "FloatDistribution, IntDistribution and CategoricalDistribution are"
        )
    low, high, step = distribution.low, distribution.high, distribution.step
    if step is not None:  # a grid: one of its points, each equally likely
        count = int(round((high - low) / step)) + 1
        value = low + min(int(unit * count), count - 1) * step
        return int(value) if isinstance(distribution, dist.IntDistribution) else float(value)
    if isinstance(distribution, dist.IntDistribution):  # log=True: log-uniform, rounded
        lo, hi = math.log(low - 0.5), math.log(high + 0.5)
        return int(min(max(round(math.exp(lo + unit * (hi - lo))), low), high))
    if distribution.log:
        value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
    else:
        value = low + unit * (high - low)
    return float(min(max(value, low), high))


class SharedCandidateSampler(optuna.samplers.BaseSampler):
    """Every study with the same seed tries the same candidates, trial by trial.

    A trial gets a *candidate index* :math:`k` (stored as its system attribute
    :data:`CANDIDATE_ATTR`), and each parameter's value is :func:`candidate_unit`
    ``(seed, name, k)`` mapped onto the parameter's distribution (log-uniform for a log
    range, uniform otherwise, a grid point or a choice with equal odds). The value of a
    parameter depends only on the seed, its name and :math:`k`: two studies whose objectives
    ask for different other parameters (P's power, H's upper bound) still draw the same
    learning rates, in the same order, and the same values for every parameter they share. That
    is what makes the competitors' searches fair; the price is that the search does not adapt
    to its results (a random search with evenly spread candidates, not TPE).

    The index of a new trial is the smallest one that no other trial holds, a failed trial
    holding none: an uninterrupted study tries candidates 0, 1, 2, ...; a trial that failed
    (an error, a Ctrl-C, a killed process) gives its candidate back to the next trial, so a
    continued study ends with exactly the candidates an uninterrupted one tries; processes
    sharing a study take different indices. Nothing is kept in the sampler object, so any
    process, at any time, draws the same values.
    """

    def __init__(self, seed: int = PAPER_SAMPLER_SEED) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = seed

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if CANDIDATE_ATTR in trial.system_attrs:
            return
        held: set[int] = set()
        unassigned = 0  # trials started just before this one, their index not yet stored
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number or other.state == TrialState.FAIL:
                continue
            if CANDIDATE_ATTR in other.system_attrs:
                held.add(other.system_attrs[CANDIDATE_ATTR])
            elif other.number < trial.number:
                unassigned += 1
        index = 0
        for _ in range(unassigned + 1):  # those take the lowest free indices, in order
            while index in held:
                index += 1
            held.add(index)
        study._storage.set_trial_system_attr(trial._trial_id, CANDIDATE_ATTR, index)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return {}

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        index = trial.system_attrs.get(CANDIDATE_ATTR, trial.number)
        return _from_unit(candidate_unit(self.seed, param_name, index), param_distribution)


def _lr(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", 1e-4, 5e-2, log=True)


def _hyperbolic_bounds(time_scale: float) -> list[int]:
    # The paper's U in {200, 250, ..., 400}, on the study's time scale.
    return [round(u * time_scale) for u in range(200, 401, 50)]


def _hyperbolic(trial: optuna.Trial, time_scale: float) -> dict[str, Any]:
    return {
        "infimum_lr": trial.suggest_float("infimum_lr", 1e-7, 1e-4, log=True),
        "upper_bound": trial.suggest_categorical("upper_bound", _hyperbolic_bounds(time_scale)),
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


def study_name(
    code: str, budget: int, seeds: Sequence[int], time_scale: float, template: Mapping[str, Any]
) -> str:
    """A study's name: everything that changes what its trials compute.

    ``<code>-N<budget>-<key>-s<seeds>-t<time_scale>``: the code, the budget, the hash of the
    fixed run settings (:attr:`RunConfig.key` of the code at the budget, with ``template``), the
    tuning seeds (joined by ``.``) and the time scale of the search space.
    """
    probe = RunConfig(scheduler=code, epochs=budget, **template)
    return f"{code}-N{budget}-{probe.key}-s{'.'.join(map(str, seeds))}-t{time_scale:g}"


def _grid(template: Mapping[str, Any], **grid: Any) -> list[RunConfig]:
    """:func:`~hyperlr.lab.sweep.expand_grid` over one data set: ``template`` holds the run
    settings (``dataset`` included), ``grid`` the schedulers, budgets, seeds and so on."""
    fixed = {name: value for name, value in template.items() if name != "dataset"}
    return expand_grid(datasets=template["dataset"], **grid, **fixed)


# ------------------------------------------------------------------------------------- storage


def _storage_url(storage: str | None, results_dir: str | os.PathLike[str]) -> str:
    if storage is None:
        return f"sqlite:///{(Path(results_dir) / 'optuna.sqlite3').resolve()}"
    if not isinstance(storage, str) or not storage:
        raise ValueError(
            "storage: must be an Optuna database URL (e.g. "
            f"'postgresql+psycopg2://user:password@host/db') or None, got {storage!r}"
        )
    return storage


def _engine_options(url: str) -> dict[str, Any]:
    # Several processes share an SQLite file: wait for its lock instead of failing at once.
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return repr(url)


@contextlib.contextmanager
def _storage_errors(url: str) -> Iterator[None]:
    """Turn a missing driver or an unreachable database into a ValueError naming ``storage``."""
    try:
        yield
    except ImportError as error:
        cause = error.__cause__ or error
        raise ValueError(
            f"storage: the database driver for {_shown(url)} is not installed ({cause}); for "
            "PostgreSQL install the 'postgres' extra (pip install 'hyperlr[postgres]') and name "
            "its driver in the URL: 'postgresql+psycopg2://user:password@host/database'"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ValueError(f"storage: cannot use the database {_shown(url)}: {reason}") from None


def _has_tables(url: str) -> bool:
    """Whether the database holds Optuna's tables, checking the driver and that it can be
    reached, and creating nothing (no file, no table)."""
    if url.startswith("sqlite"):
        path = sqlalchemy.engine.make_url(url).database
        if path and path != ":memory:" and not os.path.exists(path):
            return False  # connecting would create the file
    with _storage_errors(url):
        engine = sqlalchemy.create_engine(url, **_engine_options(url))
        try:
            return sqlalchemy.inspect(engine).has_table("studies")
        finally:
            engine.dispose()


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Serialise the creation of Optuna's tables between processes: two processes starting
    together on an empty database would otherwise both create them, and one fail. SQLite: a
    hidden lock file beside the database; PostgreSQL: a session advisory lock."""
    if url.startswith("sqlite"):
        path = sqlalchemy.engine.make_url(url).database
        if path and path != ":memory:":
            folder, name = os.path.split(path)
            os.makedirs(folder or ".", exist_ok=True)  # the database is about to be created
            with FileLock(os.path.join(folder, f".{name}.lock")):
                yield
            return
    elif url.startswith("postgresql"):
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as connection:
                lock = sqlalchemy.text("SELECT pg_advisory_lock(hashtext('hyperlr.tune'))")
                connection.execute(lock)
                try:
                    yield
                finally:
                    unlock = sqlalchemy.text("SELECT pg_advisory_unlock(hashtext('hyperlr.tune'))")
                    connection.execute(unlock)
        finally:
            engine.dispose()
        return
    yield


def _report_dead_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    warnings.warn(
        f"study {study.study_name!r}: trial {trial.number} sent no heartbeat for "
        f"{HEARTBEAT_GRACE_S} s (its process stopped); marked FAIL, it does not count",
        stacklevel=2,
    )


#: Storage URLs whose schema version this process has checked: Optuna's check loads every
#: migration script of its schema (about 70 ms), and the verdict opens the same database for
#: each of its 176 studies.
_SCHEMA_CHECKED: set[str] = set()


def _open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study storage at ``url``, with heartbeats; its tables, if missing, are created under
    :func:`_schema_lock`. Its schema version is checked the first time this process opens it."""
    creating = _schema_lock(url) if not _has_tables(url) else contextlib.nullcontext()
    with _storage_errors(url), creating, warnings.catch_warnings():
        # The heartbeat is marked experimental in Optuna; it is what marks dead trials FAIL.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=_engine_options(url),
            skip_compatibility_check=url in _SCHEMA_CHECKED,
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=HEARTBEAT_GRACE_S,
            heartbeat_stale_trial_callback=_report_dead_trial,
        )
    _SCHEMA_CHECKED.add(url)
    return storage


def _open_study(name: str, url: str, *, create: bool) -> optuna.Study:
    storage = _open_storage(url)
    sampler = SharedCandidateSampler(PAPER_SAMPLER_SEED)
    if create:  # two processes creating it at once: Optuna loads the one that won
        with _storage_errors(url):
            optuna.create_study(
                study_name=name, storage=storage, direction="minimize", load_if_exists=True
            )
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    # Trials whose process died (no heartbeat for the grace period) become FAIL now.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def _complete_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _stored_complete_trials(name: str, url: str) -> int:
    """The COMPLETE trials of a study, read without creating the database, tables or study."""
    if not _has_tables(url):
        return 0
    try:
        return _complete_trials(_open_study(name, url, create=False))
    except KeyError:  # no such study yet
        return 0


# ------------------------------------------------------------------------------------- checks


def _check_study_arguments(
    code: str,
    budget: int,
    seeds: Sequence[int],
    n_trials: int,
    workers: int,
    time_scale: float,
    template: Mapping[str, Any],
) -> list[RunConfig]:
    """Every argument of :func:`tune` that needs no storage nor data; returns a trial's runs
    with the registry's default settings."""
    if code not in SEARCH_SPACES:
        raise ValueError(
            f"code: no search space for {code!r}; codes with one: {', '.join(SEARCH_SPACES)}"
            if code in SCHEDULER_CODES
            else f"code: unknown scheduler code {code!r}; known: {', '.join(SEARCH_SPACES)}"
        )
    for name, value in {"n_trials": n_trials, "workers": workers}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (
        isinstance(time_scale, (int, float))
        and not isinstance(time_scale, bool)
        and 0 < time_scale <= 1
    ):
        raise ValueError(f"time_scale must be a number in (0, 1], got {time_scale!r}")
    if "dataset" not in template:
        raise ValueError("dataset: the run settings must name a dataset")
    # Validates the budget, the seeds and every fixed setting.
    configs = _grid(template, schedulers=code, budgets=budget, seeds=list(seeds))
    if code in ("H", "EH") and min(_hyperbolic_bounds(time_scale)) < budget:
        raise ValueError(
            f"budget: {budget} epochs exceed the smallest upper bound the search space of "
            f"{code!r} tries at time_scale {time_scale:g} "
            f"({min(_hyperbolic_bounds(time_scale))}); use a budget <= it or a larger time_scale"
        )
    for config in configs:
        _check_device(config)
    return configs


def _check_data(configs: Sequence[RunConfig]) -> None:
    """Load each data set the runs need once (on the CPU), so a missing one fails now."""
    seen = set()
    for config in configs:
        key = (config.dataset, config.data_seed, config.train_subset, config.val_subset)
        key += (json.dumps(config.data_options, sort_keys=True),)
        if key not in seen:
            seen.add(key)
            load_data(config)


# ---------------------------------------------------------------------------------- the study


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
        # A continued or shared study never trains a point twice (the sampler makes repeats
        # very unlikely; this makes them impossible).
        for other in trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        ):
            if other.number < trial.number and other.params == trial.params:
                raise optuna.TrialPruned(f"repeats the settings of trial {other.number}")
        configs = _grid(
            template,
            schedulers=code,
            budgets=budget,
            seeds=list(seeds),
            overrides={code: settings},
            lr=lr,
        )
        try:
            _check_scheduler(configs[0])
        except ValueError as error:
            # A rare corner of the search space (an infimum above the drawn lr) that the
            # schedule refuses: not a result, and not counted.
            raise optuna.TrialPruned(str(error)) from None
        trial.set_user_attr("scheduler_overrides", settings)
        trial.set_user_attr("run_keys", [config.key for config in configs])
        runs = run_sweep(configs, results_dir, progress=False)
        losses = [run.final["val_loss"] for run in runs]
        mean = sum(losses) / len(losses)
        # A diverged run scores as infinitely bad: Optuna would count a NaN as a failed trial.
        return mean if math.isfinite(mean) else float("inf")

    return objective


def _optimize(
    name: str,
    url: str,
    objective_args: tuple,
    n_trials: int,
    max_trials: int,
    worker_threads: int | None = None,
    verbosity: int | None = None,
) -> None:
    """One worker: run up to ``max_trials`` trials, stopping once the study (all processes
    together) holds ``n_trials`` COMPLETE trials."""
    if verbosity is not None:  # a worker process starts with Optuna's default logging
        optuna.logging.set_verbosity(verbosity)
    study = _open_study(name, url, create=False)
    if worker_threads:
        torch.set_num_threads(worker_threads)
    study.optimize(
        _objective(*objective_args),
        n_trials=max_trials,
        callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))],
    )


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
    """Stage 1 for one scheduler code: an Optuna study at ``budget`` epochs.

    Args:
        code: a scheduler code with a search space in :data:`SEARCH_SPACES`.
        budget: the short budget the study tunes at (the paper: 50 epochs).
        seeds: every trial trains one run per seed; the objective is the mean final
            validation loss.
        n_trials: the number of COMPLETE trials the study should hold; a rerun continues an
            existing study up to this number (failed and pruned trials do not count).
        results_dir: the results store the trials' runs go to (and the SQLite file by default).
            Across machines: one shared folder, at the same absolute path on every machine.
        storage: an Optuna database URL; ``None``: ``results_dir/optuna.sqlite3``. Across
            machines: a database server, e.g. ``postgresql+psycopg2://user:password@host/db``
            (the ``postgres`` extra installs this driver).
        workers: processes running trials at once, sharing the study through its storage.
        time_scale: duration scale of the search space (see :data:`SEARCH_SPACES`).
        **template: the other :class:`~hyperlr.lab.train.RunConfig` fields, ``dataset`` included.

    Returns:
        The study, loaded from its storage.

    Raises:
        ValueError: an unknown code, a bad budget, seeds, ``n_trials``, ``workers``,
            ``time_scale`` or run setting, a device that is not available, or a ``storage``
            whose driver is missing or that cannot be reached, before anything is written.
        FileNotFoundError: the data set is not available (checked when trials remain to run).
    """
    configs = _check_study_arguments(code, budget, seeds, n_trials, workers, time_scale, template)
    name = study_name(code, budget, seeds, time_scale, template)
    url = _storage_url(storage, results_dir)
    if _stored_complete_trials(name, url) < n_trials:
        _check_data(configs)
        ResultsStore(results_dir).check_writable()
    study = _open_study(name, url, create=True)
    # Workers elsewhere (a Dask or Ray cluster) must find the folder at the same absolute path.
    results_dir = os.path.abspath(results_dir)
    objective_args = (code, budget, tuple(seeds), dict(template), results_dir, time_scale)
    threads = max(1, torch.get_num_threads() // workers) if workers > 1 else None
    verbosity = optuna.logging.get_verbosity()
    # Each round shares the missing trials out among the workers; pruned repeats (or trials
    # another process was running when a round started) can leave some missing, hence rounds.
    while (missing := n_trials - _complete_trials(study)) > 0:
        shares = [missing // workers + (i < missing % workers) for i in range(workers)]
        jobs = [
            (name, url, objective_args, n_trials, share, threads, verbosity)
            for share in shares
            if share
        ]
        if len(jobs) == 1:
            _optimize(*jobs[0])
        else:
            # joblib's default backend, or the caller's (e.g. Dask) via joblib.parallel_config;
            # across machines, give them a shared Optuna database URL as ``storage``.
            Parallel(n_jobs=len(jobs))(delayed(_optimize)(*job) for job in jobs)
        if _complete_trials(study) == n_trials - missing:
            break  # no progress (every trial pruned): do not loop forever
    return _open_study(name, url, create=False)


def best_settings(study: optuna.Study) -> tuple[float, dict[str, Any]]:
    """The best trial's learning rate and schedule settings, as stage 2 reruns them."""
    trial = study.best_trial
    return trial.params["lr"], dict(trial.user_attrs["scheduler_overrides"])


def study_trials(study: optuna.Study) -> pd.DataFrame:
    """A study's COMPLETE trials, one row each: ``number``, ``candidate`` (the sampler's index,
    see :class:`SharedCandidateSampler`), ``lr``, ``settings`` (the schedule settings as run),
    ``objective`` and ``run_keys`` (the keys of the trial's runs in the results store)."""
    return pd.DataFrame(
        [
            {
                "number": trial.number,
                "candidate": trial.system_attrs.get(CANDIDATE_ATTR),
                "lr": trial.params["lr"],
                "settings": dict(trial.user_attrs.get("scheduler_overrides", {})),
                "objective": trial.value,
                "run_keys": list(trial.user_attrs.get("run_keys", [])),
            }
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        ],
        columns=["number", "candidate", "lr", "settings", "objective", "run_keys"],
    )


def search_ranges(trials: pd.DataFrame, winners: pd.DataFrame) -> pd.DataFrame:
    """Per competitor, the learning rates its study tried and where the winner's lies in them.

    Args:
        trials: one row per COMPLETE trial with ``competitor`` and ``lr`` (e.g.
            :attr:`ProtocolResult.trials`).
        winners: one row per competitor (its index) with the winning ``lr``.

    Returns:
        One row per competitor of ``winners``: ``trials`` (how many), ``lr_low`` and
        ``lr_high`` (the lowest and highest rate tried), ``lr`` (the winner's) and ``edge``:
        ``"highest"`` or ``"lowest"`` when the winner tried the highest or the lowest rate of
        its study (a better rate may lie beyond the range searched), ``""`` otherwise.

    Raises:
        ValueError: a competitor of ``winners`` without trials, or whose winning rate is not
            among its trials'.
    """
    rows = {}
    for name, lr in winners["lr"].items():
        tried = trials.loc[trials["competitor"] == name, "lr"]
        if tried.empty:
            raise ValueError(f"trials: no trial of competitor {name!r}")
        if not (tried == lr).any():
            raise ValueError(f"winners: {name!r}'s lr {lr!r} is not among its trials' rates")
        low, high = tried.min(), tried.max()
        edge = "highest" if lr == high and low < high else "lowest" if lr == low < high else ""
        rows[name] = {"trials": len(tried), "lr_low": low, "lr_high": high, "lr": lr, "edge": edge}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("competitor")


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
        trials: every COMPLETE stage-1 trial (:func:`study_trials`), with its ``competitor``.
    """

    winners: pd.DataFrame
    runs: list[RunResult]
    competitor_of: dict[str, str]
    trials: pd.DataFrame


def _competitor_settings(competitors: Sequence[str], template: Mapping[str, Any]) -> dict:
    """Each competitor's scheduler code and run settings (its optimizer added)."""
    if isinstance(competitors, str) or not competitors:
        raise ValueError(
            f"competitors: must list at least one of {', '.join(COMPETITORS)}, got {competitors!r}"
        )
    unknown = [name for name in competitors if name not in COMPETITORS]
    if unknown:
        raise ValueError(
            f"competitors: unknown {', '.join(map(repr, unknown))}; known: {', '.join(COMPETITORS)}"
        )
    return {
        name: (COMPETITORS[name][0], {**template, "optimizer": COMPETITORS[name][1]})
        for name in competitors
    }


def check_protocol(
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
    **template: Any,
) -> None:
    """Check everything :func:`protocol` needs with these arguments, writing nothing.

    Both stages' parameters for every competitor (codes, budgets, seeds, trial counts, run
    settings), the device, the storage (its driver installed, the database reachable) and, when
    anything remains to train, the data set. A chapter running several tasks calls this for
    every task before it runs the first.

    Raises:
        ValueError: naming the parameter and what it accepts.
        FileNotFoundError: the data set is not available and runs remain to train.
    """
    plans = _competitor_settings(competitors, template)
    url = _storage_url(storage, results_dir)
    names = {}
    for competitor, (code, settings) in plans.items():
        configs = _check_study_arguments(
            code, tune_budget, tune_seeds, n_trials, workers, time_scale, settings
        )
        # Stage 2 at every budget and seed, with the registry's defaults for the settings.
        stage2 = _grid(settings, schedulers=code, budgets=budgets, seeds=seeds)
        longest = max(config.epochs for config in stage2)
        if code in ("H", "EH") and longest > min(_hyperbolic_bounds(time_scale)):
            raise ValueError(
                f"budgets: {longest} epochs exceed the smallest upper bound the search "
                f"space of {code!r} may pick at time_scale {time_scale:g} "
                f"({min(_hyperbolic_bounds(time_scale))})"
            )
        name = study_name(code, tune_budget, tune_seeds, time_scale, settings)
        names[competitor] = (name, configs + stage2)
    # What remains to do: incomplete studies, or stage-2 runs missing from the store.
    studies = {}
    for competitor, (name, _) in names.items():
        if _stored_complete_trials(name, url) < n_trials:
            break
        studies[competitor] = _open_study(name, url, create=False)
    else:
        stage2 = [
            config
            for competitor, study in studies.items()
            for config in stage2_configs(
                {plans[competitor][0]: study}, budgets=budgets, seeds=seeds, **plans[competitor][1]
            )
        ]
        if not missing_runs(stage2, results_dir):
            return
    _check_data([configs[0] for _, configs in names.values()])
    ResultsStore(results_dir).check_writable()


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
    group_size: int | str | None = DEFAULT_GROUP_SIZE,
    **template: Any,
) -> ProtocolResult:
    """The paper's two stages for one task: tune every competitor short, then train it long.

    Everything is checked first (:func:`check_protocol`), so a bad parameter of either stage
    fails before the first trial.

    Args:
        competitors: keys of :data:`COMPETITORS`.
        tune_budget, n_trials, tune_seeds: stage 1 (see :func:`tune`).
        budgets, seeds: stage 2, rerun through the results store with ``workers`` processes.
        results_dir, storage, workers, time_scale: as in :func:`tune`.
        group_size: stage 2's runs trained together (see :func:`hyperlr.lab.sweep.run_sweep`).
        **template: the other run settings (``dataset`` and e.g. subsets, model options).
    """
    arguments = dict(
        tune_budget=tune_budget,
        n_trials=n_trials,
        tune_seeds=tune_seeds,
        budgets=budgets,
        seeds=seeds,
        results_dir=results_dir,
        storage=storage,
        workers=workers,
        time_scale=time_scale,
    )
    check_protocol(competitors, **arguments, **template)
    rows, studies, trials = [], {}, []
    for name, (code, settings) in _competitor_settings(competitors, template).items():
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
        trials.append(study_trials(study).assign(competitor=name))
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
    winners = pd.DataFrame(rows).set_index("competitor")
    return ProtocolResult(winners, runs, competitor_of, pd.concat(trials, ignore_index=True))
