"""Learning-rate maps: the budget-free prefix property, the grid, its extension, and the analysis
checked against synthetic maps whose optima and exponent are known in closed form."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hyperlr.lab import maps
from hyperlr.lab.map_analysis import (
    exponent_table,
    fit_optimum,
    optimum_table,
    regret_table,
    verdict_maps,
)
from hyperlr.lab.maps import (
    MAP_TASKS,
    MapTask,
    edge_optima,
    grid_index,
    grid_rate,
    map_configs,
    map_frame,
    run_map,
)
from hyperlr.lab.runs import RunConfig, RunResult
from hyperlr.lab.train import load_data, train_run

TINY = MapTask(
    "tiny",
    "oscillator",
    {
        "train_subset": 64,
        "val_subset": 32,
        "batch_size": 32,
        "model_options": {"hidden_size": 8, "num_layers": 1},
    },
    (2, 4),
)


@pytest.mark.parametrize("schedule", ["N", "E", "SF"])
def test_budget_free_run_is_a_prefix_of_a_longer_one(schedule):
    short, long = (
        map_configs(TINY, schedule, [0], [3], budgets=budgets, device="cpu")[0]
        for budgets in ([2], [4])
    )
    short = replace(short, epochs=2)
    assert long.epochs == 4
    data = load_data(short)
    a, b = train_run(short, data, progress=False), train_run(long, data, progress=False)
    for name in ("train_loss", "val_loss", "val_mae", "lr"):
        np.testing.assert_allclose(a.history[name], b.history[name][:2], rtol=1e-6)


def test_budget_dependent_schedule_is_not_a_prefix():
    # The control: cosine's rate at epoch 2 depends on the budget, so the curves differ.
    data = load_data(replace(map_configs(TINY, "C", [0], [3], device="cpu")[0], epochs=2))
    a, b = (
        train_run(c, data, progress=False) for c in map_configs(TINY, "C", [0], [3], device="cpu")
    )
    assert a.history["lr"][1] != b.history["lr"][1]


def test_grid_rates_round_trip_and_ratio():
    rates = [grid_rate(k) for k in range(-6, 7)]
    assert all(grid_index(r) == k for r, k in zip(rates, range(-6, 7), strict=True))
    np.testing.assert_allclose(np.diff(np.log(rates)), 0.5 * math.log(2), rtol=1e-5)
    assert grid_rate(0) == 1e-3 and grid_rate(2) == 2e-3
    with pytest.raises(ValueError, match="index"):
        grid_rate(0.5)


def test_map_configs_counts_and_settings():
    task = MAP_TASKS["sequence"]
    assert task.upper_bound == 25 and MAP_TASKS["operator"].upper_bound == 60
    runs = map_configs(task, "H", range(9), [1, 2, 3])
    assert len(runs) == 9 * 3 * 3
    assert {c.scheduler_overrides["upper_bound"] for c in runs} == {25}
    free = map_configs(task, "SF", range(9), [1, 2, 3])
    assert len(free) == 27 and {c.epochs for c in free} == {20}
    assert {c.optimizer for c in free} == {"schedulefree_adamw"}
    with pytest.raises(ValueError, match="doublings"):
        map_configs(task, "C", [0], [1], budgets=[5, 15])
    with pytest.raises(ValueError, match="schedule"):
        map_configs(task, "X", [0], [1])


# ----- synthetic maps ------------------------------------------------------------------------

BETA = -0.5
LOG_G0 = math.log(2e-3)  # gamma*(5) at grid index 2


def synthetic_loss(schedule: str, budget: int, lr: float, seed: int, beta: float = BETA) -> float:
    """1 + (log lr - log gamma*(T))^2 with gamma*(T) = gamma*(5) (T/5)^beta; a seed adds a
    constant offset (paired over rates), SF's optimum does not move."""
    b = 0.0 if schedule == "SF" else beta
    centre = LOG_G0 + b * math.log(budget / 5.0)
    return 1.0 + 0.05 * seed + (math.log(lr) - centre) ** 2


def fake_run(config: RunConfig, beta: float = BETA) -> RunResult:
    name = maps.schedule_of(config)
    budgets = range(1, config.epochs + 1)
    losses = [synthetic_loss(name, t, config.lr, config.seed, beta) for t in budgets]
    if config.lr > grid_rate(9):
        losses = [math.nan] * config.epochs
    return RunResult(
        config=config,
        history={
            "epoch": list(budgets),
            "train_loss": losses,
            "val_loss": losses,
            "val_mae": losses,
            "lr": [config.lr] * config.epochs,
            "epoch_time_s": [0.0] * config.epochs,
        },
        wall_time_s=0.0,
        device="cpu",
        device_name="test",
        precision="float32",
        dataset=config.dataset,
        dataset_source="synthetic",
        versions={},
        finished_at="",
    )


def synthetic_frame(indices=range(-4, 9), seeds=(0, 1, 2)) -> pd.DataFrame:
    task = MAP_TASKS["sequence"]
    runs = [fake_run(c) for name in ("C", "SF") for c in map_configs(task, name, indices, seeds)]
    return map_frame(runs, task.budgets)


def test_map_frame_reads_budget_free_runs_at_every_budget():
    frame = synthetic_frame()
    sf = frame[frame["schedule"] == "SF"]
    assert sorted(sf["budget"].unique()) == [5, 10, 20]
    assert set(sf["trained_epochs"]) == {20}
    # 13 rates x 3 seeds per budget, the same for both schedules
    assert frame.groupby(["schedule", "budget"]).size().eq(13 * 3).all()
    assert frame["diverged"].sum() == 0


def test_optimum_exponent_and_regrets_of_a_known_map():
    frame = synthetic_frame()
    optima = optimum_table(frame, n_boot=50).set_index(["schedule", "budget"])
    for budget in (5, 10, 20):
        # a parabola in log(lr): the quadratic fit recovers the vertex exactly
        expected = LOG_G0 + BETA * math.log(budget / 5.0)
        assert math.log(optima.loc[("C", budget), "gamma_star"]) == pytest.approx(expected)
        assert optima.loc[("C", budget), "inside"]
        assert math.log(optima.loc[("SF", budget), "gamma_star"]) == pytest.approx(LOG_G0)
    betas = exponent_table(frame, n_boot=50).set_index("schedule")
    assert betas.loc["C", "beta"] == pytest.approx(BETA)
    assert betas.loc["SF", "beta"] == pytest.approx(0.0, abs=1e-9)
    regrets = regret_table(frame, n_boot=50).set_index(["schedule", "factor"])
    step = 0.5 * math.log(2.0)  # one grid step in log(lr): where beta = -1/2 moves gamma*
    for factor, steps in ((2, 1), (4, 2)):
        # the loss at the long budget's optimum is 1 + 0.05 s; the stale rate is `steps`
        # grid steps too high: regret (steps*step)^2 / (1 + 0.05 s), averaged over seeds
        expected = np.mean([(steps * step) ** 2 / (1 + 0.05 * s) for s in (0, 1, 2)])
        assert regrets.loc[("C", factor), "regret"] == pytest.approx(expected, rel=1e-4)
        assert regrets.loc[("C", factor), "sqrt_regret"] == pytest.approx(0.0, abs=1e-12)
        assert regrets.loc[("SF", factor), "regret"] == pytest.approx(0.0, abs=1e-12)
        assert regrets.loc[("SF", factor), "sqrt_regret"] == pytest.approx(
            np.mean([(steps * step) ** 2 / (1 + 0.05 * s) for s in (0, 1, 2)]), rel=1e-4
        )
        low, high = regrets.loc[("C", factor), ["regret_low", "regret_high"]]
        assert low <= expected <= high


def test_fit_optimum_on_a_parabola_and_at_an_edge():
    ks = np.arange(-3, 4)
    x = math.log(1e-3) + ks * math.log(2) / 2
    vertex = math.log(1e-3) + 0.3
    log_opt, best = fit_optimum(ks, (x - vertex) ** 2)
    assert log_opt == pytest.approx(vertex) and best == 1
    log_edge, best_edge = fit_optimum(ks, -x)
    assert best_edge == 3 and log_edge == pytest.approx(x[-1])


def test_diverged_runs_are_counted_apart():
    frame = synthetic_frame(indices=range(-4, 11))
    assert frame["diverged"].sum() == 2 * 3 * 3  # indices 10 (lr > grid_rate(9)), 3 seeds
    summary = maps.grid_scores(frame)
    assert np.isinf(summary.loc[summary["index"] == 10, "score"]).all()
    assert edge_optima(frame)["edge"].eq("").all()


def test_run_map_extends_the_grid_until_optima_are_inside(monkeypatch, tmp_path):
    listed = []

    def fake_sweep(configs, results_dir, **kwargs):
        listed.append(len(configs))
        return [fake_run(c) for c in configs]

    monkeypatch.setattr(maps, "run_sweep", fake_sweep)
    # Start on indices 1..4: C's optimum moves from index 2 (T=5) to 0 (T=20), off the grid;
    # SF's stays at index 2, inside.
    frame = run_map(
        "sequence",
        tmp_path,
        schedules=["C", "SF"],
        indices=range(1, 5),
        seeds=[0, 1, 2],
        max_extensions=8,
    )
    edges = edge_optima(frame)
    assert edges["edge"].eq("").all(), edges
    assert len(listed) > 1  # the grid did grow
    assert frame["index"].min() < 0


def test_verdict_maps_one_row_per_task_and_schedule():
    table = verdict_maps({"sequence": synthetic_frame(), "image": pd.DataFrame()}, n_boot=20)
    assert set(table["task"]) == {"sequence"}
    assert set(table["schedule"]) == {"C", "SF"}
    for column in (
        "beta",
        "beta_low",
        "beta_high",
        "regret_2x",
        "regret_4x",
        "sqrt_regret_2x",
        "sqrt_regret_4x",
        "all_inside",
    ):
        assert column in table


def test_chapter_tiny_rerun_trains_then_trains_nothing(tmp_path):
    from pathlib import Path

    import papermill as pm

    chapters = Path(__file__).resolve().parents[1] / "chapters"
    results = tmp_path / "maps"
    tiny = {
        "tasks": ["sequence"],
        "schedules": ["C", "SF"],
        "seeds": [0, 1],
        "indices": [-1, 0, 1],
        "max_extensions": 0,
        "budgets": {"sequence": [2, 4]},
        "n_boot": 20,
        "settings": {
            "sequence": {
                "train_subset": 64,
                "val_subset": 32,
                "batch_size": 32,
                "model_options": {"hidden_size": 8, "num_layers": 1},
            }
        },
        "train_missing": True,
        "results_dir": str(results),
        "device": "cpu",
    }
    stamps = []
    for i in range(2):
        pm.execute_notebook(
            str(chapters / "11_does_the_best_learning_rate_move.ipynb"),
            str(tmp_path / f"out{i}.ipynb"),
            parameters=tiny,
            cwd=str(chapters),
            kernel_name="python3",
            progress_bar=False,
        )
        stamps.append({p.name: p.stat().st_mtime_ns for p in (results / "sequence").glob("*.json")})
    # C: 3 rates x 2 budgets x 2 seeds; SF: 3 rates x 2 seeds at the longest budget only
    assert len(stamps[0]) == 3 * 2 * 2 + 3 * 2
    assert stamps[1] == stamps[0]  # the identical rerun trained and rewrote nothing


def test_a_partial_map_is_analysed_without_error():
    # An unfinished map: C run at the longest budget only, at 3 rates, for one seed.
    task = MAP_TASKS["sequence"]
    runs = [fake_run(c) for c in map_configs(task, "C", [0, 1, 2], [0], budgets=[20])]
    frame = map_frame(runs, task.budgets)
    optima = optimum_table(frame, n_boot=5)
    assert len(optima) == 1 and optima["budget"].tolist() == [20]
    assert np.isnan(exponent_table(frame, n_boot=5)["beta"]).all()
    assert np.isnan(regret_table(frame, n_boot=5)["regret"]).all()
