"""Stage 1 and 2 of the paper's protocol on the digits, with tiny studies."""

from __future__ import annotations

import optuna
import pytest

from hyperlr.lab.results import ResultsStore
from hyperlr.lab.tune import SEARCH_SPACES, best_settings, stage2_configs, tune

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
        ({"time_scale": 2}, "time_scale"),
    ],
)
def test_bad_arguments_fail_before_any_trial(tmp_path, kwargs, message):
    arguments = {"code": "H", "budget": 2, "seeds": [0], "n_trials": 1, **kwargs}
    code = arguments.pop("code")
    with pytest.raises(ValueError, match=message):
        tune(code, results_dir=tmp_path, **arguments, **TINY)
    assert not list(tmp_path.glob("*.json"))


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
