"""Stage 1 and 2 of the paper's protocol on the digits, with tiny studies."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from hyperlr.lab.results import ResultsStore
from hyperlr.lab.tune import (
    CANDIDATE_ATTR,
    PAPER_SAMPLER_SEED,
    SEARCH_SPACES,
    SharedCandidateSampler,
    _lr,
    best_settings,
    candidate_unit,
    search_ranges,
    stage2_configs,
    study_name,
    study_trials,
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
    # The failed trial's candidate went to the next trial: the finished trials tried exactly
    # what an uninterrupted study tries.
    assert study.trials[2].params["lr"] == study.trials[1].params["lr"]
    monkeypatch.setattr(sweep, "train_run", real)
    plain = tune("N", budget=1, seeds=[0], n_trials=3, results_dir=tmp_path / "plain", **TINY)
    assert [t.params["lr"] for t in finished(study)] == [t.params["lr"] for t in plain.trials]


def _ask_rates(code: str, n: int, seed: int = 42) -> tuple[list[float], list[dict]]:
    """The learning rates and schedule settings of a study of ``code`` asked ``n`` times."""
    study = optuna.create_study(sampler=SharedCandidateSampler(seed))
    rates, settings = [], []
    for _ in range(n):
        trial = study.ask()
        # The objective's order: the lr first, then the schedule's settings.
        rates.append(_lr(trial))
        settings.append(SEARCH_SPACES[code](trial, 0.1))
        study.tell(trial, 1.0)
    return rates, settings


def test_every_competitor_draws_the_same_rates_whatever_its_other_parameters():
    rates = {code: _ask_rates(code, 12)[0] for code in SEARCH_SPACES}
    assert len(set(rates["N"])) == 12
    for code, mine in rates.items():
        assert mine == rates["N"], code
    # Parameters shared by two competitors get the same values too (H, EH and WSD's infimum).
    infima = {
        code: [s["infimum_lr"] for s in _ask_rates(code, 8)[1]] for code in ("H", "EH", "WSD")
    }
    assert infima["H"] == infima["EH"] == infima["WSD"]
    # Asking the parameters in another order changes nothing.
    study = optuna.create_study(sampler=SharedCandidateSampler(42))
    reversed_order = []
    for _ in range(12):
        trial = study.ask()
        trial.suggest_float("power", 0.5, 3.0)
        reversed_order.append(_lr(trial))
        study.tell(trial, 0.0)
    assert reversed_order == rates["N"]
    # Another seed: other candidates.
    assert _ask_rates("N", 12, seed=7)[0] != rates["N"]


def test_the_first_power_of_two_candidates_cover_the_range_evenly():
    for seed, name in ((42, "lr"), (42, "infimum_lr"), (3, "lr")):
        units = [candidate_unit(seed, name, k) for k in range(256)]
        assert all(0.0 <= u < 1.0 for u in units)
        for m in range(9):  # the first 2^m candidates: one in each interval of width 2^-m
            assert sorted(int(u * 2**m) for u in units[: 2**m]) == list(range(2**m))
        # Nested scrambling: indices equal modulo 2^j share their first j binary digits.
        for k in range(256):
            assert int(units[k] * 8) == int(units[k % 8] * 8)
    # The lr candidates on the log range: the first four, one in each quarter of its decades.
    rates = _ask_rates("N", 4)[0]
    quarters = sorted(int(4 * math.log(r / 1e-4) / math.log(5e-2 / 1e-4)) for r in rates)
    assert quarters == [0, 1, 2, 3]


def test_the_candidates_are_the_same_in_another_process():
    here = [candidate_unit(42, "lr", k) for k in range(6)]
    code = (
        "from hyperlr.lab.tune import candidate_unit; "
        "print(repr([candidate_unit(42, 'lr', k) for k in range(6)]))"
    )
    for hash_seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert eval(out.stdout) == here


def test_a_continued_study_tries_what_an_uninterrupted_one_tries(tmp_path):
    def run(study, n, fail_at=()):
        def objective(trial):
            value = _lr(trial)
            if trial.number in fail_at:
                raise RuntimeError("killed")
            return value

        study.optimize(objective, n_trials=n, catch=(RuntimeError,))

    def complete_rates(study):
        return [t.params["lr"] for t in study.trials if t.state.name == "COMPLETE"]

    uninterrupted = optuna.create_study(sampler=SharedCandidateSampler(42))
    run(uninterrupted, 8)
    # Stopped after 3 trials, one of which failed, and continued by another sampler object on
    # the same storage (as a new process would): the same 8 candidates, in order.
    url = f"sqlite:///{tmp_path / 'study.sqlite3'}"
    first = optuna.create_study(storage=url, study_name="s", sampler=SharedCandidateSampler(42))
    run(first, 3, fail_at=(1,))
    again = optuna.load_study(storage=url, study_name="s", sampler=SharedCandidateSampler(42))
    run(again, 6)
    assert [t.state.name for t in again.trials][:3] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert complete_rates(again) == complete_rates(uninterrupted)


def test_every_distribution_maps_onto_its_range():
    with pytest.raises(ValueError, match="seed"):
        SharedCandidateSampler("42")
    with pytest.raises(ValueError, match="index"):
        candidate_unit(42, "lr", -1)
    study = optuna.create_study(sampler=SharedCandidateSampler(1))
    seen: dict[str, set] = {"i": set(), "c": set(), "s": set(), "g": set()}
    for _ in range(64):
        trial = study.ask()
        seen["i"].add(trial.suggest_int("i", 3, 6))
        seen["g"].add(trial.suggest_int("g", 1, 100, log=True))
        seen["c"].add(trial.suggest_categorical("c", ["a", "b", "c"]))
        seen["s"].add(trial.suggest_float("s", 0.0, 1.0, step=0.25))
        x = trial.suggest_float("x", -2.0, 3.0)
        assert -2.0 <= x <= 3.0
        study.tell(trial, 0.0)
    assert seen["i"] == {3, 4, 5, 6}
    assert seen["c"] == {"a", "b", "c"}
    assert seen["s"] == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert min(seen["g"]) >= 1 and max(seen["g"]) <= 100 and len(seen["g"]) > 20


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


def test_search_ranges_flag_a_winner_at_an_edge_of_what_was_tried():
    trials = pd.DataFrame(
        {
            "competitor": ["A"] * 3 + ["B"] * 3 + ["C"] * 3 + ["D"],
            "lr": [1e-3, 2e-3, 3e-3] * 3 + [5e-3],
        }
    )
    winners = pd.DataFrame({"lr": [3e-3, 2e-3, 1e-3, 5e-3]}, index=["A", "B", "C", "D"])
    table = search_ranges(trials, winners)
    assert list(table["edge"]) == ["highest", "", "lowest", ""]
    assert list(table["trials"]) == [3, 3, 3, 1]
    assert table.loc["B", "lr_low"] == 1e-3 and table.loc["B", "lr_high"] == 3e-3
    with pytest.raises(ValueError, match="winners: 'A'"):
        search_ranges(trials, pd.DataFrame({"lr": [4e-3]}, index=["A"]))
    with pytest.raises(ValueError, match="trials: no trial of competitor 'E'"):
        search_ranges(trials, pd.DataFrame({"lr": [4e-3]}, index=["E"]))


def test_study_trials_lists_candidates_and_runs(tmp_path):
    study = tune("WSD", budget=1, seeds=[0, 1], n_trials=3, results_dir=tmp_path, **TINY)
    table = study_trials(study)
    assert list(table["candidate"]) == [0, 1, 2]
    assert list(table["lr"]) == _ask_rates("N", 3)[0]  # the shared candidates
    assert all(len(keys) == 2 for keys in table["run_keys"])
    assert all(set(s) == {"infimum_lr"} for s in table["settings"])


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "tune_short_train_long"


@pytest.mark.skipif(
    not (COMMITTED / "optuna.sqlite3").exists(), reason="no committed chapter-7 studies"
)
def test_the_committed_studies_hold_exactly_the_samplers_candidates():
    """What ``make results`` into an empty folder redraws: every stored trial's parameters are
    the sampler's candidates for its index, and the indices of a study run 0, 1, 2, ..."""
    url = f"sqlite:///file:{COMMITTED / 'optuna.sqlite3'}?mode=ro&uri=true"
    storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    assert summaries
    sampler = SharedCandidateSampler(PAPER_SAMPLER_SEED)
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        kept = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert kept, summary.study_name
        indices = sorted({t.system_attrs[CANDIDATE_ATTR] for t in kept})
        assert indices == list(range(len(indices))), summary.study_name
        for trial in kept:
            for name, distribution in trial.distributions.items():
                redrawn = sampler.sample_independent(study, trial, name, distribution)
                assert redrawn == trial.params[name], (summary.study_name, trial.number, name)
