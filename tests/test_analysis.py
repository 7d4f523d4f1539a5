"""hyperlr.lab.analysis on a small synthetic results frame with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hyperlr.lab.analysis import (
    budget_pairs,
    final_values,
    identical_prefixes,
    power_fit_table,
    seed_curves,
    slcd_table,
)
from hyperlr.metrics import slcd


def synthetic_runs() -> pd.DataFrame:
    """Two schedules, budgets 10/20/30, two seeds; 'flat' ignores the budget."""
    rows = []
    for scheduler in ("flat", "stretch"):
        for budget in (10, 20, 30):
            for seed in (0, 1):
                for epoch in range(1, budget + 1):
                    x = epoch if scheduler == "flat" else epoch * 30 / budget
                    rows.append(
                        {
                            "scheduler": scheduler,
                            "scheduler_overrides": "{}",
                            "epochs": budget,
                            "seed": seed,
                            "epoch": epoch,
                            "val_loss": 1.0 / (1.0 + 0.1 * x) + 0.01 * seed,
                        }
                    )
    return pd.DataFrame(rows)


def test_seed_curves_average_over_seeds():
    curves = seed_curves(synthetic_runs(), "val_loss")
    row = curves[(curves.scheduler == "flat") & (curves.budget == 10) & (curves.epoch == 1)]
    assert row["mean"].item() == pytest.approx(1 / 1.1 + 0.005)
    assert row["min"].item() == pytest.approx(1 / 1.1) and row["n_seeds"].item() == 2
    assert len(curves) == 2 * (10 + 20 + 30)
    with pytest.raises(ValueError, match="metric"):
        seed_curves(synthetic_runs(), "val_accuracy")


def test_several_settings_per_code_are_refused():
    runs = synthetic_runs()
    runs.loc[runs.epochs == 30, "scheduler_overrides"] = '{"power": 2}'
    with pytest.raises(ValueError, match="one setting"):
        seed_curves(runs, "val_loss")


def test_slcd_table_matches_the_metric_pair_by_pair():
    curves = seed_curves(synthetic_runs(), "val_loss")
    table = slcd_table(curves)
    assert list(table.columns) == ["10–20", "10–30", "20–30", "mean"]
    short = curves[(curves.scheduler == "stretch") & (curves.budget == 10)]["mean"]
    long = curves[(curves.scheduler == "stretch") & (curves.budget == 30)]["mean"]
    assert table.loc["stretch", "10–30"] == pytest.approx(slcd(short, long))
    assert table.loc["flat", "mean"] < table.loc["stretch", "mean"]
    assert budget_pairs([30, 10, 20, 10]) == [(10, 20), (10, 30), (20, 30)]


def test_power_fit_table_on_final_values():
    curves = seed_curves(synthetic_runs(), "val_loss")
    finals = final_values(curves)
    assert len(finals) == 6
    table = power_fit_table(curves, kind="loss")
    flat = [1 / (1 + 0.1 * b) + 0.005 for b in (10, 20, 30)]
    np.testing.assert_allclose(table.loc["flat", ["N=10", "N=20", "N=30"]], flat)
    assert table.loc["flat", "Diff mean"] > 0 and table.loc["flat", "B"] < 0
    # Every schedule ends at the same value of x = 30 only for "stretch".
    assert table.loc["stretch", "Diff mean"] == pytest.approx(0, abs=1e-12)


def test_identical_prefixes_tells_budget_free_schedules_apart():
    runs = synthetic_runs()
    assert identical_prefixes(runs, "flat", "val_loss")
    assert not identical_prefixes(runs, "stretch", "val_loss")
    with pytest.raises(ValueError, match="no runs"):
        identical_prefixes(runs, "H", "val_loss")


def test_seed_finals_keep_intervals_in_range_and_count_diverged_runs_apart():
    from hyperlr.lab.analysis import seed_finals

    accuracies = [0.98, 0.99, 0.999, 0.1, float("nan")]
    frame = pd.DataFrame(
        {
            "scheduler": "H",
            "epochs": 2,
            "epoch": 2,
            "val_accuracy": accuracies,
            "val_loss": [0.01, 0.1, 1.0, float("inf"), float("nan")],
        }
    )
    row = seed_finals(frame, "val_accuracy", kind="accuracy", diverged_below=0.2).iloc[0]
    assert (row["n_seeds"], row["n_diverged"]) == (3, 2)
    assert 0 < row["low"] < row["centre"] < row["high"] < 1
    logits = np.log(np.array(accuracies[:3]) / (1 - np.array(accuracies[:3])))
    assert row["centre"] == pytest.approx(1 / (1 + np.exp(-logits.mean())))
    loss = seed_finals(frame, "val_loss", kind="loss").iloc[0]
    assert loss["centre"] == pytest.approx(0.1)  # the geometric mean of 0.01, 0.1, 1
    assert 0 < loss["low"] < 0.1 < loss["high"]
    with pytest.raises(ValueError, match="kind"):
        seed_finals(frame, "val_loss", kind="mse")
