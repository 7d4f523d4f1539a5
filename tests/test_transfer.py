"""The transfer test (tuned short vs tuned long) on the digits, and its regret arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyperlr.lab.train import RunConfig, RunResult
from hyperlr.lab.transfer import TransferResult, transfer_regret, transfer_test

TINY = {
    "dataset": "digits",
    "train_subset": 96,
    "val_subset": 48,
    "batch_size": 48,
    "model_options": {"channels": 4, "hidden": 16},
    "device": "cpu",
}


def test_both_arms_are_tuned_with_the_same_trials_and_trained_long(tmp_path):
    result = transfer_test(
        ["N", "H"],
        tune_budget=1,
        long_budget=2,
        n_trials=2,
        tune_seeds=[0],
        seeds=[0, 1],
        results_dir=tmp_path,
        time_scale=0.1,
        **TINY,
    )
    assert list(result.winners.index) == [
        ("N", "short"),
        ("N", "long"),
        ("H", "short"),
        ("H", "long"),
    ]
    assert list(result.winners["budget"]) == [1, 2, 1, 2]
    assert result.trials.groupby(["competitor", "tuned_at"]).size().tolist() == [2, 2, 2, 2]
    runs = {run.config.key: run for run in result.runs}
    for keys in result.keys.values():
        assert [runs[key].config.epochs for key in keys] == [2, 2]
        assert [runs[key].config.seed for key in keys] == [0, 1]
    table = transfer_regret(result, "val_accuracy")
    for name in ("N", "H"):
        short, long = (
            [runs[k].final["val_accuracy"] for k in result.keys[(name, arm)]]
            for arm in ("short", "long")
        )
        assert table.loc[name, "regret"] == pytest.approx(np.mean(np.subtract(long, short)))
        if table.loc[name, "same settings"]:
            assert table.loc[name, "regret"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"competitors": ["N", "XX"]}, "competitors"),
        ({"long_budget": 1}, "long_budget"),
        ({"tune_budget": 0}, "tune_budget"),
        ({"seeds": []}, "seeds"),
    ],
)
def test_bad_arguments_fail_before_any_trial(tmp_path, kwargs, message):
    arguments = {
        "competitors": ["N"],
        "tune_budget": 1,
        "long_budget": 2,
        "n_trials": 1,
        "tune_seeds": [0],
        "seeds": [0],
        **kwargs,
    }
    competitors = arguments.pop("competitors")
    with pytest.raises(ValueError, match=message):
        transfer_test(competitors, results_dir=tmp_path, **arguments, **TINY)
    assert not list(tmp_path.glob("*.json"))


def _run(lr: float, seed: int, loss: float) -> RunResult:
    config = RunConfig(dataset="digits", scheduler="N", epochs=2, seed=seed, lr=lr)
    history = {"val_loss": [1.0, loss], "val_accuracy": [0.1, 0.5]}
    return RunResult(config, history, 1.0, "cpu", "cpu", "float32", "digits", "-", {}, "-")


def test_a_loss_regret_is_a_geometric_factor_and_diverged_seeds_are_counted_apart():
    short = [_run(1e-2, seed, loss) for seed, loss in enumerate([0.4, 0.9, math.nan])]
    long = [_run(1e-3, seed, loss) for seed, loss in enumerate([0.1, 0.1, 0.1])]
    result = TransferResult(
        winners=None,
        trials=None,
        runs=short + long,
        keys={
            ("N", "short"): [run.config.key for run in short],
            ("N", "long"): [run.config.key for run in long],
        },
        long_budget=2,
    )
    row = transfer_regret(result, "val_loss").loc["N"]
    assert row["regret"] == pytest.approx(6.0)  # exp(mean(log 4, log 9))
    assert row["short-tuned"] == pytest.approx(0.6)
    assert (row["seeds"], row["diverged"]) == (2, 1)
    assert row["ci_low"] < 6.0 < row["ci_high"] and row["ci_low"] > 0
    with pytest.raises(ValueError, match="metric"):
        transfer_regret(result, "val_mae")
