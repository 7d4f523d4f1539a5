"""Tests of hyperlr.lab.sweep: grid expansion, validation before work, resuming, no retraining."""

from __future__ import annotations

import pytest
import torch

from hyperlr.lab.results import ResultsStore, RunFileError
from hyperlr.lab.sweep import expand_grid, missing_runs, run_sweep
from hyperlr.lab.train import RunState

TINY = {"train_subset": 128, "val_subset": 64, "batch_size": 64, "device": "cpu"}


def grid(**changes):
    params = {"datasets": "digits", "schedulers": ["N", "H"], "budgets": [1], "seeds": [0], **TINY}
    params.update(changes)
    return expand_grid(**params)


@pytest.fixture
def count_training(monkeypatch):
    """Count runs started (alone or in groups); fail when starting run number ``fail_on`` or
    ending any run's epoch number ``fail_at_epoch`` (if set)."""
    calls = {"n": 0, "fail_on": None, "fail_at_epoch": None}
    real_init, real_end_epoch = RunState.__init__, RunState.end_epoch

    def counted_init(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["fail_on"]:
            raise RuntimeError("killed midway")
        real_init(self, *args, **kwargs)

    def end_epoch(self, *args, **kwargs):
        if self.epochs_done + 1 == calls["fail_at_epoch"]:
            raise RuntimeError("killed midway")
        return real_end_epoch(self, *args, **kwargs)

    monkeypatch.setattr(RunState, "__init__", counted_init)
    monkeypatch.setattr(RunState, "end_epoch", end_epoch)
    return calls


def test_expand_grid_order_and_duplicates():
    configs = grid(
        schedulers=["N", "H", "N"],
        budgets=[1, 2],
        seeds=[0, 1],
        overrides={"H": [{}, {"upper_bound": 300}]},
        lr={"N": 1e-4, "H": 1e-3},
    )
    assert len(configs) == 1 * (1 + 2) * 2 * 2
    assert [c.scheduler for c in configs[:4]] == ["N"] * 4
    assert {c.lr for c in configs if c.scheduler == "N"} == {1e-4}
    assert {c.scheduler_overrides.get("upper_bound") for c in configs} == {None, 300}
    assert len({c.key for c in configs}) == len(configs)


def test_second_identical_sweep_trains_nothing(tmp_path, count_training):
    configs = grid(budgets=[1, 2])
    first = run_sweep(configs, tmp_path, progress=False)
    assert count_training["n"] == 4
    second = run_sweep(configs, tmp_path, progress=False)
    assert count_training["n"] == 4
    assert [r.history for r in second] == [r.history for r in first]
    assert missing_runs(configs, tmp_path) == []


def test_interrupted_sweep_resumes(tmp_path, count_training):
    configs = grid(schedulers=["N", "H", "C"])
    count_training["fail_on"] = 2
    with pytest.raises(RuntimeError, match="killed midway"):
        run_sweep(configs, tmp_path, progress=False, group_size=1)
    store = ResultsStore(tmp_path)
    runs, problems = store.scan()
    assert [r.config for r in runs] == [configs[0]] and problems == []
    assert [p.name for p in tmp_path.iterdir()] == [f"{configs[0].key}.json"]  # no temporaries
    first_file = store.path_for(configs[0]).read_bytes()

    count_training["fail_on"] = None
    results = run_sweep(configs, tmp_path, progress=False, group_size=1)
    assert count_training["n"] == 2 + 2  # the failed call, then only the two missing runs
    assert [r.config for r in results] == configs
    assert store.path_for(configs[0]).read_bytes() == first_file
    runs, problems = store.scan()
    assert len(runs) == 3 and problems == []


def test_interrupted_group_keeps_its_finished_runs(tmp_path, count_training):
    configs = grid(schedulers=["N", "H", "C"], budgets=[1, 2])
    count_training["fail_at_epoch"] = 2  # the group dies in its second epoch
    with pytest.raises(RuntimeError, match="killed midway"):
        run_sweep(configs, tmp_path, progress=False, group_size=None)
    store = ResultsStore(tmp_path)
    runs, problems = store.scan()
    assert sorted(r.config.key for r in runs) == sorted(c.key for c in configs if c.epochs == 1)
    assert problems == [] and {r.group_size for r in runs} == {6}

    count_training["fail_at_epoch"] = None
    results = run_sweep(configs, tmp_path, progress=False, group_size=None)
    assert count_training["n"] == 6 + 3  # then only the three unfinished runs, as one group
    assert [r.config for r in results] == configs
    assert [r.group_size for r in results if r.config.epochs == 2] == [3] * 3


def test_bad_group_size_fails_before_training(tmp_path, count_training):
    with pytest.raises(ValueError, match="group_size"):
        run_sweep(grid(), tmp_path, progress=False, group_size=0)
    assert count_training["n"] == 0


def test_invalid_stored_file_stops_the_sweep_before_training(tmp_path, count_training):
    configs = grid()
    store = ResultsStore(tmp_path)
    store.path_for(configs[1]).write_text('{"schema": ')
    assert missing_runs(configs, tmp_path) == configs  # an invalid file is no stored run
    with pytest.raises(RunFileError, match=configs[1].key):
        run_sweep(configs, tmp_path, progress=False)
    assert count_training["n"] == 0


def test_a_folder_in_place_of_a_run_file_stops_the_sweep_before_training(tmp_path, count_training):
    configs = grid()
    ResultsStore(tmp_path).path_for(configs[0]).mkdir()
    with pytest.raises(RunFileError, match="not a regular file"):
        run_sweep(configs, tmp_path, progress=False)
    assert count_training["n"] == 0


@pytest.mark.parametrize(
    ("changes", "parameter", "accepted"),
    [
        ({"datasets": ["digits", "imagenet"]}, "datasets", "fashion_mnist"),
        ({"schedulers": ["H", "HYP"]}, "schedulers", "EH"),
        ({"budgets": [0]}, "budgets", "integer >= 1"),
        ({"budgets": [2.5]}, "budgets", "integer >= 1"),
        ({"budgets": [True]}, "budgets", "integer >= 1"),
        ({"budgets": []}, "budgets", "at least one"),
        ({"seeds": [-1]}, "seeds", "integer >= 0"),
        ({"seeds": ["1"]}, "seeds", "integer >= 0"),
        ({"lr": {"N": 1e-3}}, "lr", "H"),
        ({"lr": -1.0}, "lr", "> 0"),
        ({"overrides": {"C": {"eta_min": 0.0}}}, "overrides", "not among"),
        ({"optimiser": "sgd"}, "optimiser", "batch_size"),
        ({"batch_size": 0}, "batch_size", "integer >= 1"),
    ],
)
def test_invalid_grid_parameter_is_named(changes, parameter, accepted):
    with pytest.raises(ValueError, match=parameter) as error:
        grid(**changes)
    assert accepted in str(error.value)


def test_bad_scheduler_setting_fails_before_training(tmp_path, count_training):
    configs = grid(overrides={"H": {"nonsense": 1}})
    with pytest.raises(ValueError, match="scheduler_overrides.*nonsense"):
        run_sweep(configs, tmp_path, progress=False)
    too_long = grid(schedulers=["H"], budgets=[300])  # beyond the hyperbola's upper bound 250
    with pytest.raises(ValueError, match="scheduler_overrides"):
        run_sweep(too_long, tmp_path, progress=False)
    assert count_training["n"] == 0


def test_unwritable_results_folder_fails_before_training(tmp_path, count_training):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="results_dir"):
        run_sweep(grid(), tmp_path / "a-file" / "runs", progress=False)
    assert count_training["n"] == 0


def test_missing_dataset_fails_before_training(tmp_path, count_training, monkeypatch):
    from hyperlr.lab import data as hdata

    monkeypatch.setattr(hdata, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "none")
    monkeypatch.setenv("HYPERLR_DATA_DIR", str(tmp_path / "none"))
    configs = grid(datasets=["digits", "fashion_mnist"])
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST"):
        run_sweep(configs, tmp_path / "runs", progress=False, download=False)
    assert count_training["n"] == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_fails_before_training(tmp_path, count_training):
    with pytest.raises(ValueError, match="device"):
        run_sweep(grid(device="cuda"), tmp_path, progress=False)
    assert count_training["n"] == 0


def test_worker_processes_train_every_missing_run_once(tmp_path):
    configs = grid(schedulers=["N", "H", "C"], budgets=[1, 2])
    results = run_sweep(configs, tmp_path, progress=False, workers=2)
    assert [r.config.key for r in results] == [c.key for c in configs]
    runs, problems = ResultsStore(tmp_path).scan()
    assert not problems and len(runs) == len(configs)
    assert not list(tmp_path.glob(".*.tmp"))
    assert missing_runs(configs, tmp_path) == []
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_sweep(configs, tmp_path, workers=0)
