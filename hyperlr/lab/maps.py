"""Learning-rate maps: the final validation loss against the base rate, per schedule and budget.

A map fixes a task (data set, model, run settings), a list of budgets in doublings
:math:`T_0, 2T_0, 4T_0`, seeds, and a geometric grid of base rates

.. math:: \\gamma_k = \\gamma_c \\, 2^{k/2}, \\qquad k \\in \\mathbb Z,

(ratio :math:`\\sqrt 2`; the integer :math:`k` is the grid *index*), and trains every schedule
at every rate, budget and seed. Schedules whose rate does not depend on the budget (``N``, ``E``
and schedule-free AdamW, :data:`BUDGET_FREE`) are trained once, at the longest budget, and read
at a shorter budget :math:`T` from epoch :math:`T` of the same run: the first :math:`T` epochs of
a run of budget :math:`T_{max}` *are* a run of budget :math:`T` (same seed, same batches, same
rates; ``tests/test_maps.py`` checks it).

:func:`run_map` trains what the results store lacks and extends the grid, one point at a time on
the side where a schedule's best grid rate sits, until every schedule's best rate at every
budget lies strictly inside its grid (or ``max_extensions`` is spent, which it reports).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .results import ResultsStore
from .runs import RunConfig, RunResult
from .sweep import run_sweep

__all__ = [
    "BUDGET_FREE",
    "MAP_SCHEDULES",
    "MAP_TASKS",
    "MapTask",
    "edge_optima",
    "grid_index",
    "grid_rate",
    "map_configs",
    "map_frame",
    "run_map",
    "schedule_of",
]

#: The map's schedules: name -> (registry code, optimizer). ``L`` is linear decay to zero;
#: ``SF`` is schedule-free AdamW under a constant rate.
MAP_SCHEDULES: dict[str, tuple[str, str]] = {
    "N": ("N", "adamw"),
    "P": ("P", "adamw"),
    "L": ("L", "adamw"),
    "C": ("C", "adamw"),
    "E": ("E", "adamw"),
    "H": ("H", "adamw"),
    "EH": ("EH", "adamw"),
    "WSD": ("WSD", "adamw"),
    "SF": ("N", "schedulefree_adamw"),
}

#: Schedules whose rate at epoch t does not depend on the budget: trained once, read at every
#: budget from the same run.
BUDGET_FREE = ("N", "E", "SF")

#: The grid's centre rate (index 0) and ratio.
GRID_CENTRE = 1e-3
GRID_RATIO = math.sqrt(2.0)


@dataclass(frozen=True)
class MapTask:
    """One task of the maps: the data set, the run settings and the budgets in doublings.

    Attributes:
        name: ``"image"``, ``"sequence"`` or ``"operator"``.
        dataset: the data set's key.
        settings: the other :class:`~hyperlr.lab.runs.RunConfig` fields, the same for every run.
        budgets: the budgets in epochs, each twice the previous.
    """

    name: str
    dataset: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    budgets: tuple[int, ...] = (5, 10, 20)

    @property
    def upper_bound(self) -> int:
        """The hyperbolic schedules' :math:`U`: 1.25 times the longest budget, as the paper's
        studies set it (:math:`U = 250` for :math:`N \\le 200`)."""
        return round(1.25 * max(self.budgets))


#: The book's three tasks at its CPU scale: chapter 7's image and sequence studies (SimpleCNN
#: with 16 channels on 2,000 / 1,000 Fashion-MNIST images; a 2-layer LSTM of 32 units on 512 /
#: 256 oscillator windows) and chapter 8's DeepONet on 500 / 250 integral-operator functions.
MAP_TASKS: dict[str, MapTask] = {
    "image": MapTask(
        "image",
        "fashion_mnist",
        {"train_subset": 2000, "val_subset": 1000, "model_options": {"channels": 16}},
        (5, 10, 20),
    ),
    "sequence": MapTask(
        "sequence",
        "oscillator",
        {
            "train_subset": 512,
            "val_subset": 256,
            "batch_size": 64,
            "model_options": {"hidden_size": 32, "num_layers": 2},
        },
        (5, 10, 20),
    ),
    "operator": MapTask(
        "operator",
        "integral",
        {
            "model": "deeponet",
            "train_subset": 500,
            "val_subset": 250,
            "batch_size": 50,
            "model_options": {"width": 256, "depth": 4},
        },
        (12, 24, 48),
    ),
}


def grid_rate(index: int, centre: float = GRID_CENTRE) -> float:
    """The rate :math:`\\gamma_c 2^{k/2}` of grid index :math:`k`, rounded to 6 significant
    digits so that the same index always gives the same configuration key."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"index must be an integer, got {index!r}")
    return float(f"{centre * 2.0 ** (int(index) / 2):.6g}")


def grid_index(rate: float, centre: float = GRID_CENTRE) -> int:
    """The grid index :math:`k` of a rate of the grid (the inverse of :func:`grid_rate`)."""
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate!r}")
    return int(round(2.0 * math.log2(rate / centre)))


def _check_budgets(budgets: Sequence[int]) -> tuple[int, ...]:
    budgets = tuple(sorted(int(b) for b in budgets))
    if not budgets or budgets[0] < 1:
        raise ValueError(f"budgets: must list integers >= 1, got {budgets!r}")
    for short, long in zip(budgets, budgets[1:], strict=False):
        if long != 2 * short:
            raise ValueError(f"budgets: must be doublings (each twice the previous), got {budgets}")
    return budgets


def map_configs(
    task: MapTask,
    schedule: str,
    indices: Iterable[int],
    seeds: Sequence[int],
    *,
    budgets: Sequence[int] | None = None,
    device: str = "auto",
) -> list[RunConfig]:
    """The runs of one schedule's map: every grid index x budget x seed.

    A budget-free schedule (:data:`BUDGET_FREE`) gets runs at the longest budget only. ``H``
    and ``EH`` get :attr:`MapTask.upper_bound`; every other setting is the registry's default.
    """
    if schedule not in MAP_SCHEDULES:
        raise ValueError(f"schedule: unknown {schedule!r}; known: {', '.join(MAP_SCHEDULES)}")
    budgets = _check_budgets(task.budgets if budgets is None else budgets)
    code, optimizer = MAP_SCHEDULES[schedule]
    overrides = {"upper_bound": round(1.25 * max(budgets))} if code in ("H", "EH") else {}
    trained = (max(budgets),) if schedule in BUDGET_FREE else budgets
    return [
        RunConfig(
            dataset=task.dataset,
            scheduler=code,
            epochs=budget,
            seed=seed,
            lr=grid_rate(k),
            optimizer=optimizer,
            scheduler_overrides=overrides,
            device=device,
            **task.settings,
        )
        for k in sorted(set(indices))
        for budget in trained
        for seed in seeds
    ]


def schedule_of(config: RunConfig) -> str:
    """The map schedule name of a run (``SF`` for schedule-free AdamW)."""
    for name, (code, optimizer) in MAP_SCHEDULES.items():
        if config.scheduler == code and config.optimizer == optimizer:
            return name
    raise ValueError(
        f"config: scheduler {config.scheduler!r} with {config.optimizer!r} is no map schedule"
    )


def map_frame(runs: Iterable[RunResult], budgets: Sequence[int]) -> pd.DataFrame:
    """One row per (schedule, budget, rate, seed): the validation loss (and metric) at the end of
    the budget, read from the run of that budget, or from epoch ``budget`` of a budget-free
    schedule's longer run. Columns: ``schedule, budget, lr, index, seed, val_loss, val_metric,
    diverged`` (a loss that is not finite)."""
    budgets = _check_budgets(budgets)
    rows = []
    for run in runs:
        config = run.config
        name = schedule_of(config)
        metric = "val_accuracy" if "val_accuracy" in run.history else "val_mae"
        if name in BUDGET_FREE:
            read = [b for b in budgets if b <= config.epochs]
        else:
            read = [config.epochs] if config.epochs in budgets else []
        for budget in read:
            loss = float(run.history["val_loss"][budget - 1])
            rows.append(
                {
                    "schedule": name,
                    "budget": budget,
                    "lr": config.lr,
                    "index": grid_index(config.lr),
                    "seed": config.seed,
                    "val_loss": loss,
                    "val_metric": float(run.history[metric][budget - 1]),
                    "metric": metric,
                    "diverged": not math.isfinite(loss),
                    "trained_epochs": config.epochs,
                    "wall_time_s": run.wall_time_s,
                }
            )
    columns = [
        "schedule",
        "budget",
        "lr",
        "index",
        "seed",
        "val_loss",
        "val_metric",
        "metric",
        "diverged",
        "trained_epochs",
        "wall_time_s",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    # A budget-free run read at its own budget may also exist as a run of that budget: keep one.
    return frame.drop_duplicates(["schedule", "budget", "index", "seed"]).reset_index(drop=True)


def grid_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (schedule, budget, index): the mean loss over the seeds that did not diverge, or
    ``inf`` where half the seeds or more diverged (such a rate is never a grid optimum)."""

    def score(group: pd.DataFrame) -> float:
        ok = group.loc[~group["diverged"], "val_loss"]
        return float(ok.mean()) if 2 * len(ok) > len(group) else math.inf

    return (
        frame.groupby(["schedule", "budget", "index"])[["val_loss", "diverged"]]
        .apply(score)
        .rename("score")
        .reset_index()
    )


def edge_optima(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (schedule, budget): the grid's ends, the best index and on which side, if any, it
    sits on an edge (``"low"``, ``"high"`` or ``""``: strictly inside)."""
    rows = []
    for (name, budget), group in grid_scores(frame).groupby(["schedule", "budget"]):
        best = int(group.loc[group["score"].idxmin(), "index"])
        low, high = int(group["index"].min()), int(group["index"].max())
        side = "low" if best == low else "high" if best == high else ""
        rows.append(
            {
                "schedule": name,
                "budget": budget,
                "low": low,
                "high": high,
                "best": best,
                "edge": side,
            }
        )
    return pd.DataFrame(rows, columns=["schedule", "budget", "low", "high", "best", "edge"])


def run_map(
    task: MapTask | str,
    results_dir: str | os.PathLike[str],
    *,
    schedules: Sequence[str] = tuple(MAP_SCHEDULES),
    indices: Iterable[int] = range(-4, 5),
    seeds: Sequence[int] = (89, 231, 928),
    budgets: Sequence[int] | None = None,
    max_extensions: int = 6,
    device: str = "auto",
    progress: bool = False,
    log: Any = None,
    group_size: int | str | None = 1,
) -> pd.DataFrame:
    """Train one task's maps (only the runs the store lacks) and extend each schedule's grid
    until its best rate at every budget is strictly inside, then return :func:`map_frame`.

    Each schedule starts on ``indices`` (plus whatever the store already holds for it, so a
    rerun resumes an extended grid); a schedule whose best grid rate at some budget is an end of
    its grid gets one more index beyond that end, up to ``max_extensions`` times.

    ``group_size`` is passed to :func:`~hyperlr.lab.sweep.run_sweep`. It defaults to 1 (each
    run alone): on the shared 2-core CPU a group of 7 of the sequence task's LSTM runs did not
    finish 2 epochs in 120 s, where one run alone takes about 0.9 s for them.

    Raises:
        ValueError: unknown task or schedule, budgets that are not doublings, no indices.
    """
    if isinstance(task, str):
        if task not in MAP_TASKS:
            raise ValueError(f"task: unknown {task!r}; known: {', '.join(MAP_TASKS)}")
        task = MAP_TASKS[task]
    budgets = _check_budgets(task.budgets if budgets is None else budgets)
    unknown = [s for s in schedules if s not in MAP_SCHEDULES]
    if unknown:
        raise ValueError(f"schedules: unknown {unknown}; known: {', '.join(MAP_SCHEDULES)}")
    start = sorted(set(int(k) for k in indices))
    if not start:
        raise ValueError("indices: must list at least one grid index")
    say = log if log is not None else (lambda message: None)
    store = ResultsStore(results_dir)
    grid = {name: set(start) for name in schedules}
    # Resume an extended grid: the indices the store already holds for these runs' settings.
    held = [r for r in store.scan()[0] if _same_task(r.config, task, seeds)]
    for run in held:
        name = schedule_of(run.config)
        if name in grid:
            grid[name].add(grid_index(run.config.lr))
    for grid_k in grid.values():  # keep each grid contiguous
        grid_k.update(range(min(grid_k), max(grid_k) + 1))

    runs: list[RunResult] = []
    for round_ in range(max_extensions + 1):
        configs = [
            config
            for name in schedules
            for config in map_configs(task, name, grid[name], seeds, budgets=budgets, device=device)
        ]
        say(f"{task.name}: round {round_}, {len(configs)} runs listed")
        runs = run_sweep(configs, results_dir, progress=progress, group_size=group_size)
        edges = edge_optima(map_frame(runs, budgets))
        grow = edges[edges["edge"] != ""]
        if grow.empty:
            say(f"{task.name}: every optimum strictly inside its grid")
            break
        if round_ == max_extensions:
            say(f"{task.name}: optima still on an edge after {max_extensions} extensions:\n{grow}")
            break
        for row in grow.itertuples():
            if row.edge == "low":
                grid[row.schedule].add(min(grid[row.schedule]) - 1)
            else:
                grid[row.schedule].add(max(grid[row.schedule]) + 1)
    return map_frame(runs, budgets)


def _same_task(config: RunConfig, task: MapTask, seeds: Sequence[int]) -> bool:
    if config.dataset != task.dataset or config.seed not in seeds:
        return False
    for name, value in task.settings.items():
        if getattr(config, name) != value:
            return False
    try:
        schedule_of(config)
    except ValueError:
        return False
    return True


def load_map(task: MapTask | str, results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The map frame of every valid run stored in ``results_dir`` (empty if none)."""
    if isinstance(task, str):
        task = MAP_TASKS[task]
    if not os.path.isdir(results_dir):
        return map_frame([], task.budgets)
    runs = [r for r in ResultsStore(results_dir).scan()[0] if r.config.dataset == task.dataset]
    return map_frame(runs, task.budgets)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hyperlr.lab.maps TASK [TASK...] --results results/lr_maps``."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+", choices=list(MAP_TASKS))
    parser.add_argument("--results", default="results/lr_maps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[89, 231, 928])
    parser.add_argument("--schedules", nargs="+", default=list(MAP_SCHEDULES))
    parser.add_argument("--max-extensions", type=int, default=6)
    args = parser.parse_args(argv)
    for name in args.tasks:
        began = time.time()
        frame = run_map(
            name,
            os.path.join(args.results, name),
            seeds=args.seeds,
            schedules=args.schedules,
            max_extensions=args.max_extensions,
            log=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True),
        )
        print(f"{name}: {len(frame)} map points in {time.time() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
