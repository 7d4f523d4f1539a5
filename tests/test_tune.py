"""Stage 1 and 2 of the paper's protocol on the digits, with tiny studies."""

from __future__ import annotations

import optuna
import pytest
import torch

from hyperlr.lab.results import ResultsStore
from hyperlr.lab.tune import (
    SEARCH_SPACES,
    TrialSeededTPESampler,
    best_settings,
    stage2_configs,
    study_name,
    tune,
)

TINY = {
    "dataset": "digits",
    "train_subset": 96,
    "val_subset": 48,
    "batch_size": 48,
    "model_options": {"channels": 4, "hidden": 16},
    "device": "cpu",
}


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_smoke_protocol_three_trials_then_two_budgets(tmp_path):
    study = tune("H", budget=2, seeds=[0], n_trials=3, results_dir=tmp_path, time_scale=0.1, **TINY)
    trials = finished(study)
    assert len(trials) == 3
    for trial in trials:
        assert 1e-4 <= trial.params["lr"] <= 5e-2
        assert trial.params["upper_bound"] in {20, 25, 30, 35, 40}
    runs, problems = ResultsStore(tmp_path).scan()
    assert not problems and len(runs) == 3  # every trial's run is in the results store
    lr, overrides = best_settings(study)
    configs = stage2_configs({"H": study}, budgets=[2, 3], seeds=[0, 1], **TINY)
    assert len(configs) == 4
    assert {c.epochs for c in configs} == {2, 3}
    assert all(c.lr == lr and c.scheduler_overrides == overrides for c in configs)


def test_a_stopped_study_resumes_instead_of_restarting(tmp_path):
    first = tune("P", budget=2, seeds=[0], n_trials=2, results_dir=tmp_path, **TINY)
    kept = [(t.number, t.params) for t in finished(first)]
    again = tune("P", budget=2, seeds=[0], n_trials=3, results_dir=tmp_path, **TINY)
    trials = finished(again)
    assert len(trials) == 3
    assert [(t.number, t.params) for t in trials][:2] == kept
    # Asking for no more trials than the study holds runs nothing.
    same = tune("P", budget=2, seeds=[0], n_trials=3, results_dir=tmp_path, **TINY)
    assert len(same.trials) == 3


def test_two_worker_processes_share_one_sqlite_study(tmp_path):
    study = tune("C", budget=2, seeds=[0], n_trials=4, workers=2, results_dir=tmp_path, **TINY)
    trials = study.trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert (tmp_path / "optuna.sqlite3").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code": "X"}, "unknown scheduler code 'X'"),
        ({"code": "OC"}, "no search space for 'OC'"),
        ({"n_trials": 0}, "n_trials"),
        ({"workers": 0}, "workers"),
        ({"budget": 0}, "budgets"),
        ({"seeds": [-1]}, "seeds"),
        ({"time_scale": 2}, "time_scale"),
        ({"budget": 30, "time_scale": 0.1}, "budget: 30 epochs exceed the smallest upper bound"),
        ({"train_subset": 0}, "train_subset"),
        (
            {"storage": "postgresql+psycopg2://nobody@127.0.0.1:1/none"},
            "storage: cannot use the database",
        ),
        ({"storage": "mysql://nobody@127.0.0.1:1/none"}, "storage: the database driver"),
        ({"storage": "not a url"}, "storage: cannot use"),
        pytest.param(
            {"device": "cuda"},
            "device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs no CUDA"),
        ),
    ],
)
def test_bad_arguments_fail_before_anything_is_written(tmp_path, kwargs, message):
    arguments = {"code": "H", "budget": 2, "seeds": [0], "n_trials": 1, **TINY, **kwargs}
    code = arguments.pop("code")
    with pytest.raises(ValueError, match=message):
        tune(code, results_dir=tmp_path / "results", **arguments)
    assert not (tmp_path / "results").exists()


def test_missing_data_fails_before_anything_is_written(tmp_path, monkeypatch):
    from hyperlr.lab import data as hdata

    monkeypatch.setattr(hdata, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "none")
    monkeypatch.setenv("HYPERLR_DATA_DIR", str(tmp_path / "none"))

    def no_network(dataset, folder, help_text):
        raise FileNotFoundError(f"download failed (no network here).\n{help_text}")

    monkeypatch.setattr(hdata, "_torchvision_download", no_network)
    settings = {**TINY, "dataset": "fashion_mnist", "model_options": {"channels": 4}}
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST"):
        tune("C", budget=2, seeds=[0], n_trials=1, results_dir=tmp_path / "r", **settings)
    assert not (tmp_path / "r").exists()


def test_a_failed_trial_is_not_counted_and_the_rerun_completes(tmp_path, monkeypatch):
    from hyperlr.lab import sweep

    real, calls = sweep.train_run, []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C in Jupyter
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "train_run", fails_once)
    with pytest.raises(KeyboardInterrupt):
        tune("N", budget=1, seeds=[0], n_trials=3, results_dir=tmp_path, **TINY)
    study = tune("N", budget=1, seeds=[0], n_trials=3, results_dir=tmp_path, **TINY)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert len({t.params["lr"] for t in study.trials}) == 4  # the rerun drew new points


def test_the_trial_seeded_sampler_is_reproducible_and_a_restart_does_not_replay():
    def points(study, n):
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=n)
        return [t.params["x"] for t in study.trials]

    uninterrupted = points(optuna.create_study(sampler=TrialSeededTPESampler(42)), 14)
    assert points(optuna.create_study(sampler=TrialSeededTPESampler(42)), 14) == uninterrupted
    assert len(set(uninterrupted)) == 14
    # Stopped after 5 trials and continued by a new process (a new sampler object): the
    # continuation draws new points, exactly those the uninterrupted study drew.
    stopped = optuna.create_study(sampler=TrialSeededTPESampler(42))
    points(stopped, 5)
    stopped.sampler = TrialSeededTPESampler(42)
    assert points(stopped, 9) == uninterrupted
    # What it replaces: a sampler seeded once replays its first points after a restart.
    replayed = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=42))
    first = points(replayed, 3)
    replayed.sampler = optuna.samplers.TPESampler(seed=42)
    assert points(replayed, 3)[3:] == first


def test_study_name_covers_seeds_and_time_scale():
    names = {
        study_name("E", 5, seeds, scale, TINY)
        for seeds in ([0], [1], [0, 1])
        for scale in (1.0, 0.1)
    }
    assert len(names) == 6


def test_every_search_space_stays_in_the_papers_ranges():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for suggest in SEARCH_SPACES.values():
        for _ in range(20):
            trial = study.ask()
            settings = suggest(trial, 1.0)
            if "gamma" in settings:
                assert 0.9 <= settings["gamma"] <= 0.99
            if "upper_bound" in settings:
                assert settings["upper_bound"] in {200, 250, 300, 350, 400}
            for name in ("infimum_lr", "eta_min"):
                if name in settings:
                    assert 1e-7 <= settings[name] <= 1e-4
            study.tell(trial, 0.0)
    assert set(SEARCH_SPACES) >= {"N", "P", "C", "E", "H", "EH"}
