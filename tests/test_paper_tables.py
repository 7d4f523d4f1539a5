"""The paper's published tables, recomputed from the authors' learning curves.

The curves are read through ``HYPERLR_PAPER_CURVES``. When it is unset and the repository is
checked out beside ``shared/`` (development machines, CI), the variable defaults to the copy of
the curves there; otherwise hyperlr.lab.paper downloads them into its cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import hyperlr.lab.paper as paper
from hyperlr.lab.paper import (
    BUDGETS,
    SCHEDULERS,
    SLCD_METHOD_REPRODUCING,
    PaperCurvesUnavailableError,
    load_paper_curves,
    paper_curve,
    published_final_metrics,
    published_power_fit_r2,
    published_slcd,
)
from hyperlr.metrics import power_fit, slcd

_SHARED_CURVES = Path(__file__).resolve().parents[2] / "shared/data/hyperboliclr-paper-curves"
if _SHARED_CURVES.is_dir():
    os.environ.setdefault(paper.PAPER_CURVES_ENV, str(_SHARED_CURVES))

PUBLISHED_SLCD = published_slcd()


def _three_significant_figures(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def curves():
    return load_paper_curves()


def _final_values(curves, model, scheduler, metric):
    return np.array(
        [paper_curve(curves, model, scheduler, budget, metric).iloc[-1] for budget in BUDGETS]
    )


# --------------------------------------------------------------------------------------------
# The tidy table
# --------------------------------------------------------------------------------------------


def test_the_tidy_table_has_every_curve_once(curves):
    assert list(curves.columns) == [
        "task", "model", "metric", "scheduler", "budget", "epoch", "mean", "min", "max",
    ]  # fmt: skip
    sizes = curves.groupby(["model", "metric", "scheduler", "budget"]).size()
    assert len(sizes) == 5 * len(SCHEDULERS) * len(BUDGETS)
    assert (sizes.index.get_level_values("budget") == sizes.to_numpy()).all()
    assert len(curves) == 5 * len(SCHEDULERS) * sum(BUDGETS)
    assert set(zip(curves["task"], curves["model"], curves["metric"], strict=True)) == {
        ("CIFAR10", "CNN", "loss"),
        ("CIFAR10", "CNN", "accuracy"),
        ("OSC", "LSTM", "loss"),
        ("Integral", "DeepONet", "loss"),
        ("Integral", "TraONet", "loss"),
    }
    assert curves[["mean", "min", "max"]].notna().all(axis=None)
    assert (curves["min"] <= curves["mean"] + 1e-12).all()
    assert (curves["mean"] <= curves["max"] + 1e-12).all()
    accuracy = curves.loc[curves["metric"] == "accuracy", "mean"]
    assert accuracy.between(0, 1).all()


def test_paper_curve_selects_one_curve_by_epoch(curves):
    curve = paper_curve(curves, "CNN", "EH", 100, "accuracy")
    assert curve.index.tolist() == list(range(1, 101))
    with pytest.raises(ValueError, match="no curve for model='ResNet'"):
        paper_curve(curves, "ResNet", "EH", 100)
    with pytest.raises(ValueError, match="statistic must be"):
        paper_curve(curves, "CNN", "EH", 100, statistic="median")


# --------------------------------------------------------------------------------------------
# SLCD table
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    list(PUBLISHED_SLCD.itertuples(index=False)),
    ids=[
        f"{r.model}-{r.scheduler}-{r.budget_short}-{r.budget_long}"
        for r in PUBLISHED_SLCD.itertuples(index=False)
    ],
)
def test_published_slcd_is_reproduced(curves, row):
    method = SLCD_METHOD_REPRODUCING[row.model]
    short = paper_curve(curves, row.model, row.scheduler, row.budget_short, row.metric)
    long = paper_curve(curves, row.model, row.scheduler, row.budget_long, row.metric)
    value = slcd(short, long, method=method)
    assert _three_significant_figures(value) == row.published, (
        f"{method} SLCD {value:.5g} does not round to the published {row.published:.3g}"
    )


@pytest.mark.parametrize("model", list(SLCD_METHOD_REPRODUCING))
def test_the_other_slcd_definition_reproduces_none_of_a_row(curves, model):
    # The published table mixes the two definitions: each row matches only one of them.
    other = {"linear": "log", "log": "linear"}[SLCD_METHOD_REPRODUCING[model]]
    rows = PUBLISHED_SLCD[PUBLISHED_SLCD["model"] == model]
    matches = 0
    for row in rows.itertuples(index=False):
        short = paper_curve(curves, model, row.scheduler, row.budget_short, row.metric)
        long = paper_curve(curves, model, row.scheduler, row.budget_long, row.metric)
        matches += _three_significant_figures(slcd(short, long, other)) == row.published
    assert matches == 0


# --------------------------------------------------------------------------------------------
# Final metrics and power fits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", list(published_final_metrics().itertuples(index=False)))
def test_published_final_metric_is_reproduced(curves, row):
    curve = paper_curve(curves, row.model, row.scheduler, row.budget, row.metric)
    assert round(curve.iloc[-1], 4) == row.published


@pytest.mark.parametrize("row", list(published_power_fit_r2().itertuples(index=False)))
def test_published_best_power_fit_is_reproduced(curves, row):
    r2 = {
        scheduler: power_fit(BUDGETS, _final_values(curves, row.model, scheduler, row.metric)).r2
        for scheduler in SCHEDULERS
    }
    assert round(r2[row.scheduler], 4) == row.published
    assert max(r2, key=r2.get) == row.scheduler


# --------------------------------------------------------------------------------------------
# Locating and downloading the curves
# --------------------------------------------------------------------------------------------


@pytest.fixture
def source_folder():
    """The folder the real curves come from, resolved before a test changes the environment."""
    return paper.paper_curves_dir()


def test_a_missing_folder_in_the_variable_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv(paper.PAPER_CURVES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(PaperCurvesUnavailableError, match="HYPERLR_PAPER_CURVES=.*not a folder"):
        load_paper_curves()


def test_without_variable_or_network_the_error_names_both_ways(monkeypatch, tmp_path):
    def offline(url, timeout=30.0):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.delenv(paper.PAPER_CURVES_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(paper, "_fetch", offline)
    with pytest.raises(PaperCurvesUnavailableError) as info:
        load_paper_curves()
    message = str(info.value)
    assert "set HYPERLR_PAPER_CURVES" in message
    assert "raw.githubusercontent.com/Axect/HyperbolicLR/" + paper.PAPER_COMMIT in message
    assert "network unreachable" in message


def test_the_download_is_verified_cached_and_reused(monkeypatch, tmp_path, source_folder):
    fetched = []

    def serve(url, timeout=30.0):
        fetched.append(url)
        return (source_folder / url.rsplit("/", 1)[1]).read_bytes()

    monkeypatch.delenv(paper.PAPER_CURVES_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(paper, "_fetch", serve)
    folder = paper.paper_curves_dir()
    assert folder.is_relative_to(tmp_path / "hyperlr")
    assert len(fetched) == 5 * len(SCHEDULERS)
    assert sorted(p.name for p in folder.iterdir()) == sorted(paper._SHA256)  # no temporaries
    assert paper.paper_curves_dir() == folder
    assert len(fetched) == 5 * len(SCHEDULERS)  # nothing downloaded twice
    assert load_paper_curves().equals(load_paper_curves(source_folder))


def test_a_corrupted_download_is_rejected_and_not_cached(monkeypatch, tmp_path):
    monkeypatch.delenv(paper.PAPER_CURVES_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(paper, "_fetch", lambda url, timeout=30.0: b"epoch\n1\n")
    with pytest.raises(PaperCurvesUnavailableError, match="SHA-256"):
        paper.paper_curves_dir()
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_a_folder_lacking_files_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks 30 of the authors' files"):
        load_paper_curves(tmp_path)


def test_importing_the_module_reads_and_downloads_nothing(tmp_path):
    env = {
        **os.environ,
        paper.PAPER_CURVES_ENV: str(tmp_path / "nowhere"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    subprocess.run([sys.executable, "-c", "import hyperlr.lab.paper"], env=env, check=True)
    assert not (tmp_path / "cache").exists()
