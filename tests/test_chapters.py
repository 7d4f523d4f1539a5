"""The experiment chapters as papermill runs them: tiny parameters, reruns, invalid parameters.

These run the real notebooks in a kernel (a few seconds each), with their results in temporary
folders. The chapters' default parameters are checked against the committed results, so that the
book build never trains.
"""

from __future__ import annotations

import ast
import copy
import math
import os
import re
import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from chapter_cells import run_until_training

from hyperlr.lab import report
from hyperlr.lab.data import chapter_subsets
from hyperlr.lab.results import ResultsStore
from hyperlr.lab.sweep import expand_grid, missing_runs

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
IMAGE = CHAPTERS / "05_image_classification.ipynb"
SEQUENCE = CHAPTERS / "06_sequence_forecasting.ipynb"

TINY_IMAGE = {
    "dataset": "digits",
    "budgets": [2, 3],
    "seeds": [0],
    "train_subset": 200,
    "val_subset": 100,
    "model_options": {"channels": 8},
}
TINY_SEQUENCE = {
    "budgets": [2, 3],
    "seeds": [0],
    "train_subset": 64,
    "val_subset": 32,
    "model_options": {"hidden_size": 8, "num_layers": 1},
    "include_sunspots": False,
}


def run_chapter(notebook: Path, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    output = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}.ipynb"
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        cwd=str(CHAPTERS),
        kernel_name="python3",
        progress_bar=False,
    )
    return nbformat.read(output, as_version=4)


#: The errors a chapter refuses a parameter with.
REFUSED = (ValueError, TypeError, OSError)


def run_refused(notebook: Path, parameters: dict, monkeypatch) -> None:
    """The chapter's cells in this process, as papermill would run them (see chapter_cells.py):
    far faster than a kernel for a chapter that stops at its checks. The trainers are not
    stubbed, so a parameter the chapter fails to refuse trains and the test fails."""
    monkeypatch.chdir(CHAPTERS)
    try:
        run_until_training(notebook, parameters)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


def stdout_of(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )


def snapshot(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in sorted(folder.glob("*.json"))}


def html_outputs(cell: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("data", {}).get("text/html", "") for output in cell.get("outputs", [])
    )


def table_cell(html: str, row: str) -> str:
    """The first value cell of the row headed ``row`` in a pandas HTML table."""
    found = re.search(rf">{re.escape(row)}</th>\s*<td[^>]*>\s*([^<]*?)\s*</td>", html)
    assert found, f"no row {row!r} in the table"
    return found.group(1)


def check_rerun_report(notebook: nbformat.NotebookNode, parameters: dict) -> None:
    """A rerun shows its own figures, glued values and scale, from its own parameters."""
    last = notebook.cells[-1]
    assert "remove-cell" in last.metadata.get("tags", [])  # the book drops it
    images = [o for o in last.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # accuracy, loss and final-against-budget figures
    values = html_outputs(last)
    train, val = parameters["train_subset"], parameters["val_subset"]
    assert table_cell(values, "image-longest") == str(max(parameters["budgets"]))
    assert table_cell(values, "image-shortest") == str(min(parameters["budgets"]))
    assert f"{train} training and {val} validation images" in table_cell(values, "image-scale")
    # The scale table against the paper, from the rerun's runs (not the committed study).
    scale = next(
        html_outputs(c) for c in notebook.cells if "Scale against the paper" in html_outputs(c)
    )
    batch = default_parameters(IMAGE)["batch_size"]
    assert table_cell(scale, "epochs (longest budget)") == str(max(parameters["budgets"]))
    assert table_cell(scale, "training examples") == f"{train:,}"
    assert table_cell(scale, "updates per epoch") == f"{math.ceil(train / batch):,}"
    # Filled after the run, the prose states the rerun's own numbers, settings and figures.
    filled = nbformat.from_dict(copy.deepcopy(notebook))
    assert report.fill_glue(filled) == []
    prose = "\n".join(c.source for c in filled.cells if c.cell_type == "markdown")
    assert "{glue" not in prose
    low, high = min(parameters["budgets"]), max(parameters["budgets"])
    assert f"Against the paper's experiment: budgets of {low} to {high} epochs" in prose
    assert "![fig-image-accuracy](attachment:fig-image-accuracy.png)" in prose


def test_image_chapter_trains_stores_and_then_only_loads(tmp_path):
    results = tmp_path / "runs"
    first = run_chapter(IMAGE, tmp_path, results_dir=str(results), **TINY_IMAGE)
    assert "14 runs: 0 stored, 14 to train" in stdout_of(first)
    runs, problems = ResultsStore(results).scan()
    assert not problems
    assert len(runs) == 14  # 7 schedules x 2 budgets x 1 seed, one file each
    assert {(r.config.scheduler, r.config.epochs) for r in runs} == {
        (code, budget) for code in ["N", "P", "C", "E", "H", "EH", "WSD"] for budget in (2, 3)
    }
    assert all(r.dataset == "digits" and r.config.model_options == {"channels": 8} for r in runs)
    written = snapshot(results)

    second = run_chapter(IMAGE, tmp_path, results_dir=str(results), **TINY_IMAGE)
    assert "14 runs: 14 stored, 0 to train" in stdout_of(second)
    check_rerun_report(second, TINY_IMAGE)
    assert snapshot(results) == written  # nothing retrained, nothing rewritten


def test_image_chapter_resumes_an_interrupted_sweep(tmp_path):
    results = tmp_path / "runs"
    partial = {**TINY_IMAGE, "schedulers": ["N", "H"]}
    run_chapter(IMAGE, tmp_path, results_dir=str(results), **partial)
    kept = snapshot(results)
    # Killed mid-write: a temporary file is left behind; it must be ignored, not used.
    (results / ".deadbeef.tmp").write_text('{"schema": "hyperlr.run/1"')
    resumed = run_chapter(IMAGE, tmp_path, results_dir=str(results), **TINY_IMAGE)
    assert "14 runs: 4 stored, 10 to train" in stdout_of(resumed)
    now = snapshot(results)
    assert {name: now[name] for name in kept} == kept and len(now) == 14


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"schedulers": ["N", "X"]}, "schedulers: unknown code 'X'"),
        ({"budgets": [0, 3]}, "budgets: each must be an integer >= 1"),
        ({"dataset": "mnist"}, "dataset must be one of .*, got 'mnist'"),
        ({"results_dir": "/proc/version/runs"}, "results_dir"),
        # An explicit subset is kept even where it does not fit the data set (1437 digits).
        ({"train_subset": 6000}, r"train_subset .*\[1, 1437\], got 6000"),
        ({"val_subset": "some"}, "val_subset must be None"),
    ],
)
def test_image_chapter_rejects_invalid_parameters_before_training(
    tmp_path, monkeypatch, parameters, message
):
    results = tmp_path / "runs"
    settings = {**TINY_IMAGE, "results_dir": str(results), **parameters}
    with pytest.raises(REFUSED, match=message):
        run_refused(IMAGE, settings, monkeypatch)
    assert not results.exists() or not list(results.glob("*.json"))


def test_sequence_chapter_smoke_run(tmp_path, monkeypatch):
    results = tmp_path / "runs"
    notebook = run_chapter(SEQUENCE, tmp_path, results_dir=str(results), **TINY_SEQUENCE)
    assert "oscillator: 14 runs, 0 stored, 14 to train" in stdout_of(notebook)
    runs, problems = ResultsStore(results).scan()
    assert not problems and len(runs) == 14
    assert all(r.forecasts and len(r.forecasts["prediction"][0]) == 50 for r in runs)
    tides = {**TINY_SEQUENCE, "results_dir": str(results), "dataset": "tides"}
    with pytest.raises(REFUSED, match="dataset must be one of .*, got 'tides'"):
        run_refused(SEQUENCE, tides, monkeypatch)


def without_subsets(parameters: dict) -> dict:
    return {k: v for k, v in parameters.items() if k not in ("train_subset", "val_subset")}


def test_image_chapter_with_only_another_dataset_takes_that_datasets_subsets(tmp_path):
    # The chapter's default subsets (6000 / 2000 Fashion-MNIST images) do not fit the digits
    # (1437 / 360): with only the data set changed, the subsets follow it.
    results = tmp_path / "runs"
    tiny = {**without_subsets(TINY_IMAGE), "schedulers": ["C", "H"]}
    run_chapter(IMAGE, tmp_path, results_dir=str(results), **tiny)
    runs, problems = ResultsStore(results).scan()
    assert not problems and len(runs) == 4
    assert {(r.config.train_subset, r.config.val_subset, r.dataset) for r in runs} == {
        (None, None, "digits")
    }


def test_sequence_chapter_with_only_the_sunspots(tmp_path):
    results = tmp_path / "runs"
    tiny = {**without_subsets(TINY_SEQUENCE), "schedulers": ["C", "H"], "dataset": "sunspots"}
    notebook = run_chapter(SEQUENCE, tmp_path, results_dir=str(results), **tiny)
    assert "sunspots: 4 runs, 0 stored, 4 to train" in stdout_of(notebook)
    runs, problems = ResultsStore(results).scan()
    assert not problems and {r.config.train_subset for r in runs} == {None}


def default_parameters(notebook: Path) -> dict:
    cell = next(
        c
        for c in nbformat.read(notebook, as_version=4).cells
        if "parameters" in c.metadata.get("tags", [])
    )
    values: dict = {}
    for node in ast.parse(cell.source).body:
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def chapter_configs(parameters: dict, dataset: str, **settings) -> list:
    codes = parameters["schedulers"]
    return expand_grid(
        datasets=dataset,
        schedulers=codes,
        budgets=parameters["budgets"],
        seeds=parameters["seeds"],
        overrides={c: s for c, s in parameters["scheduler_overrides"].items() if c in codes},
        lr=parameters["lr"],
        batch_size=parameters["batch_size"],
        model_options=parameters["model_options"],
        device=parameters["device"],
        **settings,
    )


def test_committed_results_cover_the_image_chapters_defaults():
    p = default_parameters(IMAGE)
    train, val = chapter_subsets(p["dataset"], p["train_subset"], p["val_subset"])
    configs = chapter_configs(p, p["dataset"], train_subset=train, val_subset=val)
    results_dir = CHAPTERS / p["results_dir"]
    assert missing_runs(configs, results_dir) == [], "the book build would train"
    assert not ResultsStore(results_dir).scan()[1]


def test_committed_results_cover_the_sequence_chapters_defaults():
    p = default_parameters(SEQUENCE)
    train, val = chapter_subsets(p["dataset"], p["train_subset"], p["val_subset"])
    configs = chapter_configs(
        p, p["dataset"], train_subset=train, val_subset=val, data_options=p["data_options"]
    )
    if p["include_sunspots"]:
        train, val = chapter_subsets("sunspots")
        configs += chapter_configs(p, "sunspots", train_subset=train, val_subset=val)
    results_dir = CHAPTERS / p["results_dir"]
    assert missing_runs(configs, results_dir) == [], "the book build would train"
    assert not ResultsStore(results_dir).scan()[1]


@pytest.fixture(autouse=True)
def _agg_backend(monkeypatch):
    # Kernels inherit the environment: no display is needed to run the chapters.
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "agg"))


PROTOCOL = CHAPTERS / "07_tune_short_train_long.ipynb"
TINY_PROTOCOL = {
    "tasks": ["image"],
    "image_dataset": "digits",
    "competitors": ["C", "SF"],
    "n_trials": 2,
    "tune_budget": 2,
    "tune_seeds": [0],
    "budgets": [2, 3],
    "seeds": [0, 1],
    "workers": 1,
    "image_settings": {"train_subset": 96, "val_subset": 48, "model_options": {"channels": 4}},
    # The transfer test has its own tests (test_transfer.py) and the committed-results check below.
    "run_transfer_test": False,
}


def test_protocol_chapter_smoke_run_and_rerun(tmp_path):
    results = tmp_path / "runs"
    first = run_chapter(PROTOCOL, tmp_path, results_dir=str(results), **TINY_PROTOCOL)
    assert "image: 2 studies, 8 stage-2 runs" in stdout_of(first)
    assert (results / "optuna.sqlite3").exists()
    runs, problems = ResultsStore(results).scan()
    # 2 x 2 stage-1 trials and 2 x 2 x 2 stage-2 runs, of which each competitor's winning
    # trial is one (its budget and seed recur in stage 2): the store trains it once.
    assert not problems and len(runs) == 4 + 8 - 2
    assert {r.config.optimizer for r in runs} == {"adamw", "schedulefree_adamw"}
    written = snapshot(results)
    run_chapter(PROTOCOL, tmp_path, results_dir=str(results), **TINY_PROTOCOL)
    assert snapshot(results) == written


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"competitors": ["C", "X"]}, "competitors: unknown 'X'"),
        ({"tasks": ["audio"]}, "tasks: unknown"),
        ({"n_trials": 0}, "n_trials must be an integer >= 1"),
        ({"budgets": [0, 2]}, "budgets: each must be an integer >= 1"),
        ({"seeds": [-1]}, "seeds: each must be an integer >= 0"),
        # The second task's settings are wrong: found before the first task trains.
        (
            {"tasks": ["image", "sequence"], "sequence_settings": {"train_subset": 0}},
            "train_subset",
        ),
    ],
)
def test_protocol_chapter_rejects_invalid_parameters(tmp_path, monkeypatch, parameters, message):
    results = tmp_path / "runs"
    settings = {**TINY_PROTOCOL, "results_dir": str(results), **parameters}
    with pytest.raises(REFUSED, match=message):
        run_refused(PROTOCOL, settings, monkeypatch)
    assert not results.exists() or not list(results.iterdir())  # nothing written


def test_committed_results_cover_the_protocol_chapters_defaults(tmp_path, monkeypatch):
    from hyperlr.lab import sweep
    from hyperlr.lab.transfer import transfer_test
    from hyperlr.lab.tune import protocol

    def no_training(*args, **kwargs):
        raise AssertionError("the book build would train")

    monkeypatch.setattr(sweep, "train_run", no_training)
    monkeypatch.setattr(sweep, "_train_and_store", no_training)
    monkeypatch.setattr(sweep, "train_runs", no_training)
    p = default_parameters(PROTOCOL)
    # A copy: loading the studies must not touch the committed SQLite file.
    shutil.copytree(CHAPTERS / p["results_dir"], tmp_path / "results")
    tasks = {
        "image": (p["image_dataset"], p["image_settings"]),
        "sequence": (p["sequence_dataset"], p["sequence_settings"]),
    }
    for task in p["tasks"]:
        dataset, settings = tasks[task]
        result = protocol(
            p["competitors"],
            tune_budget=p["tune_budget"],
            n_trials=p["n_trials"],
            tune_seeds=p["tune_seeds"],
            budgets=p["budgets"],
            seeds=p["seeds"],
            results_dir=tmp_path / "results",
            workers=1,
            time_scale=p["time_scale"],
            dataset=dataset,
            device=p["device"],
            **settings,
        )
        assert len(result.winners) == len(p["competitors"])
        if p["run_transfer_test"]:
            transfer = transfer_test(
                p["competitors"],
                tune_budget=p["tune_budget"],
                long_budget=max(p["budgets"]),
                n_trials=p["n_trials"],
                tune_seeds=p["tune_seeds"],
                seeds=p["seeds"],
                results_dir=tmp_path / "results",
                workers=1,
                time_scale=p["time_scale"],
                dataset=dataset,
                device=p["device"],
                **settings,
            )
            assert len(transfer.winners) == 2 * len(p["competitors"])


OPERATOR = CHAPTERS / "08_operator_learning.ipynb"
TINY_OPERATOR = {
    "budgets": [2],
    "seeds": [0],
    "schedulers": ["H", "EH"],
    "train_subset": 64,
    "val_subset": 32,
    "batch_size": 32,
    "data_options": {"n_functions": 300},
    "model_options": {
        "deeponet": {"width": 16, "depth": 2, "basis": 8},
        "traonet": {"d_model": 8, "d_ff": 16, "n_layers": 1},
    },
}


def test_operator_chapter_trains_then_only_loads(tmp_path):
    results = tmp_path / "runs"
    first = run_chapter(OPERATOR, tmp_path, results_dir=str(results), **TINY_OPERATOR)
    output = stdout_of(first)
    assert "deeponet: 2 runs, 0 stored, 2 to train" in output
    assert "traonet: 2 runs, 0 stored, 2 to train" in output
    runs, problems = ResultsStore(results).scan()
    assert not problems and len(runs) == 4
    assert {(r.config.model, r.config.scheduler) for r in runs} == {
        (m, c) for m in ("deeponet", "traonet") for c in ("H", "EH")
    }
    assert all(r.dataset == "integral" and r.config.epochs == 2 for r in runs)
    written = snapshot(results)
    second = run_chapter(OPERATOR, tmp_path, results_dir=str(results), **TINY_OPERATOR)
    assert "traonet: 2 runs, 2 stored, 0 to train" in stdout_of(second)
    assert snapshot(results) == written  # nothing retrained, nothing rewritten


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"model": ["deeponet", "traonet", "fno"]}, "model must be a model of the operator task"),
        ({"model": "deeponet"}, "model_options: 'traonet' not among the models run"),
        (
            {"model_options": {"deeponet": {"channels": 4}}},
            "model 'deeponet' does not take channels",
        ),
    ],
)
def test_operator_chapter_rejects_invalid_parameters_before_training(
    tmp_path, monkeypatch, parameters, message
):
    results = tmp_path / "runs"
    settings = {**TINY_OPERATOR, "results_dir": str(results), **parameters}
    with pytest.raises(REFUSED, match=message):
        run_refused(OPERATOR, settings, monkeypatch)
    assert not results.exists() or not list(results.glob("*.json"))


def test_committed_results_cover_the_operator_chapters_defaults():
    p = default_parameters(OPERATOR)
    models = [p["model"]] if isinstance(p["model"], str) else p["model"]
    results_dir = CHAPTERS / p["results_dir"]
    train_subset, val_subset = chapter_subsets(p["dataset"], p["train_subset"], p["val_subset"])
    for name in models:
        # The chapter's model_options are per model.
        per_model = {**p, "model_options": p["model_options"].get(name, {})}
        configs = chapter_configs(
            per_model,
            p["dataset"],
            model=name,
            train_subset=train_subset,
            val_subset=val_subset,
            data_options=p["data_options"],
        )
        assert missing_runs(configs, results_dir) == [], "the book build would train"
    assert not ResultsStore(results_dir).scan()[1]
