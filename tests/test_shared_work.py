"""Studies and sweeps that survive interruption and share work between processes.

Real processes (killed with SIGKILL, or started at the same moment), a real PostgreSQL server
(see ``conftest.py``) and a Dask cluster, on tiny digits runs. Every training is logged by run
key, so a run trained twice shows up as a repeated key.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from hyperlr.lab import sweep as hsweep
from hyperlr.lab import tune as htune
from hyperlr.lab.results import ResultsStore
from hyperlr.lab.sweep import expand_grid, run_sweep

TINY = {
    "dataset": "digits",
    "train_subset": 64,
    "val_subset": 32,
    "batch_size": 32,
    "model_options": {"channels": 2, "hidden": 8},
    "device": "cpu",
}
GRID = {
    "datasets": "digits",
    "schedulers": ["N", "H"],
    "budgets": [1, 2],
    "seeds": [0, 1],
    **{name: value for name, value in TINY.items() if name != "dataset"},
}

# A process that logs every run it trains, can kill itself at its n-th training (mid-trial),
# and starts its work when the test says go (so that several start at the same moment).
WORKER = r"""
import json, os, signal, sys, time
import optuna
from hyperlr.lab import sweep, tune

job = json.loads(sys.argv[1])
optuna.logging.set_verbosity(optuna.logging.WARNING)
tune.HEARTBEAT_INTERVAL_S = 1
real_train_run = sweep.train_run
calls = 0

def train_run(config, *args, **kwargs):
    global calls
    calls += 1
    if calls == job.get("kill_at"):
        os.kill(os.getpid(), signal.SIGKILL)
    result = real_train_run(config, *args, **kwargs)
    with open(job["log"], "a") as log:
        log.write(config.key + "\n")
    return result

sweep.train_run = train_run
real_train_runs = sweep.train_runs

def train_runs(configs, *args, on_result, **kwargs):  # a group: its runs count one by one
    global calls
    calls += len(configs)
    if calls - len(configs) < job.get("kill_at", 0) <= calls:
        os.kill(os.getpid(), signal.SIGKILL)

    def logged(result):
        with open(job["log"], "a") as log:
            log.write(result.config.key + "\n")
        on_result(result)

    return real_train_runs(configs, *args, on_result=logged, **kwargs)

sweep.train_runs = train_runs
open(job["ready"], "w").close()
while not os.path.exists(job["go"]):
    time.sleep(0.02)
if job["kind"] == "tune":
    tune.tune(**job["arguments"])
else:
    sweep.run_sweep(sweep.expand_grid(**job["grid"]), job["results_dir"], progress=False)
"""


def start_workers(tmp_path: Path, jobs: list[dict]) -> list[subprocess.Popen]:
    """Start one process per job, wait until all have imported everything, then let them go
    together."""
    go = tmp_path / "go"
    processes = []
    for index, job in enumerate(jobs):
        job = {**job, "ready": str(tmp_path / f"ready-{index}"), "go": str(go)}
        processes.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(job)]))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{i}").exists() for i in range(len(jobs))):
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(p.poll() is None for p in processes), "a worker failed to start"
        time.sleep(0.05)
    go.touch()
    for process in processes:
        process.wait(timeout=300)
    return processes


def trained(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def logged_training(monkeypatch, tmp_path):
    """This process's trainings, logged to the same file as the workers'."""
    log = tmp_path / "trained.log"
    real = hsweep.train_run

    def train_run(config, *args, **kwargs):
        result = real(config, *args, **kwargs)
        with open(log, "a") as stream:
            stream.write(config.key + "\n")
        return result

    monkeypatch.setattr(hsweep, "train_run", train_run)
    return log


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path):
    """``None`` (the SQLite file in the results folder) or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def study_of(results: Path, storage: str | None, name: str) -> optuna.Study:
    url = storage or f"sqlite:///{results / 'optuna.sqlite3'}"
    return optuna.load_study(study_name=name, storage=url)


def distinct_points(trials: list[optuna.trial.FrozenTrial]) -> int:
    return len({json.dumps(t.params, sort_keys=True) for t in trials})


def tune_arguments(results: Path, storage: str | None, n_trials: int) -> dict:
    return {
        "code": "P",
        "budget": 1,
        "seeds": [0],
        "n_trials": n_trials,
        "results_dir": str(results),
        "storage": storage,
        **TINY,
    }


def test_a_killed_study_continues_with_new_points(tmp_path, storage, logged_training, monkeypatch):
    results = tmp_path / "results"
    arguments = tune_arguments(results, storage, 6)
    # The worker finishes 3 trials and dies inside the 4th, its heartbeat stops.
    job = {"kind": "tune", "arguments": arguments, "log": str(logged_training), "kill_at": 4}
    (killed,) = start_workers(tmp_path, [job])
    assert killed.returncode == -signal.SIGKILL
    assert len(trained(logged_training)) == 3

    # Continue in this process, once the dead trial is past the grace period.
    monkeypatch.setattr(htune, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(htune, "HEARTBEAT_GRACE_S", 2)
    time.sleep(3)
    arguments.pop("code")
    with pytest.warns(UserWarning, match="trial 3 sent no heartbeat"):
        study = htune.tune("P", **arguments)

    states = [t.state for t in study.trials]
    assert states[3] == optuna.trial.TrialState.FAIL  # the dead trial, not left RUNNING
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 6 and len(study.trials) == 7
    assert distinct_points(complete) == 6  # no point of the first process replayed
    keys = trained(logged_training)
    assert len(keys) == 6 == len(set(keys))  # 3 + 3 new runs, none trained twice


def test_two_processes_starting_together_on_an_empty_database(tmp_path, storage):
    results, log = tmp_path / "results", tmp_path / "trained.log"
    job = {"kind": "tune", "arguments": tune_arguments(results, storage, 4), "log": str(log)}
    processes = start_workers(tmp_path, [job, job])
    assert [p.returncode for p in processes] == [0, 0]  # neither crashed creating the schema
    name = htune.study_name("P", 1, [0], 1.0, TINY)
    study = study_of(results, storage, name)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    # 4 in all; a trial already running when the 4th finished may finish too.
    assert 4 <= len(complete) <= 5
    assert distinct_points(complete) == len(complete)
    keys = trained(log)
    assert len(keys) == len(set(keys)) == len(complete)  # no run trained twice


def test_two_sweeps_over_one_folder_train_each_run_once(tmp_path):
    log = tmp_path / "trained.log"
    job = {"kind": "sweep", "grid": GRID, "results_dir": str(tmp_path / "runs"), "log": str(log)}
    processes = start_workers(tmp_path, [job, job])
    assert [p.returncode for p in processes] == [0, 0]
    keys = trained(log)
    configs = expand_grid(**GRID)
    assert sorted(keys) == sorted(config.key for config in configs)  # 8 trainings, 0 twice
    runs, problems = ResultsStore(tmp_path / "runs").scan()
    assert len(runs) == len(configs) and not problems
    assert not list((tmp_path / "runs").glob(".*"))  # no claim or temporary file left


def test_a_sweep_through_a_dask_cluster_equals_the_local_one(tmp_path):
    distributed = pytest.importorskip("distributed")
    joblib = pytest.importorskip("joblib")
    configs = expand_grid(**{**GRID, "seeds": [0]})
    local = run_sweep(configs, tmp_path / "local", progress=False, workers=2)
    threads = torch.get_num_threads()  # in-process Dask workers set this process's count
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        remote = run_sweep(configs, tmp_path / "dask", progress=False, workers=2)
    torch.set_num_threads(threads)
    assert [r.config for r in remote] == [r.config for r in local]
    for ours, theirs in zip(remote, local, strict=True):
        assert ours.history["val_loss"] == theirs.history["val_loss"]
        assert ours.history["train_loss"] == theirs.history["train_loss"]


def test_a_worker_that_does_not_see_the_results_folder_fails_naming_it(tmp_path):
    (config,) = expand_grid(**{**GRID, "schedulers": "N", "budgets": 1, "seeds": 0})
    with pytest.raises(ValueError, match="results_dir: .*same absolute path"):
        hsweep._train_and_store([config], tmp_path / "not-here", None, False, 1)
    assert not (tmp_path / "not-here").exists()
