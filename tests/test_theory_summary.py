"""hyperlr.lab.theory_summary: the verdict's theory rows, the square-root statement, the
book's tasks and their predicted exponents."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from hyperlr.lab import theory_summary as ts
from hyperlr.lab.verdict import CLAIMS
from hyperlr.theory import transfer

SMALL = (5, 10, 20)


@pytest.fixture(autouse=True)
def small_setting(monkeypatch):
    """The paper's protocol at a tenth of its budgets and few steps, so the tests are fast."""
    monkeypatch.setattr(ts, "PAPER_BUDGETS", SMALL)

    def setting(model, steps_per_epoch=2, budgets=SMALL):
        return cached(model)

    cache = {}

    def cached(model):
        if model not in cache:
            cache[model] = transfer(
                ts.SCHEDULES, model, tune_budget=5, budgets=SMALL, steps_per_epoch=2,
                time_scale=0.1,
            )  # fmt: skip
        return cache[model]

    monkeypatch.setattr(ts, "paper_setting", setting)
    monkeypatch.setattr(ts, "STEPS_PER_EPOCH", 2)


def test_theory_rows_cover_every_claim_in_every_model():
    rows = ts.theory_rows(("convex", "hard"))
    assert list(rows["claim"]) == list(CLAIMS)
    for text in rows["theory"]:
        assert "convex bound:" in text and "NQM hard:" in text
    # The regret sentence is the protocol's own number.
    result = ts.paper_setting("convex")
    h = result.row("H", 20).regret
    assert f"H {h:.1%}" in rows.loc[4, "theory"]


def test_curves_end_at_the_protocols_losses():
    curves = ts.theory_curves("easy", ("C", "H"), steps_per_epoch=2, budgets=SMALL)
    result = ts.paper_setting("easy")
    for (name, budget), group in curves.groupby(["scheduler", "budget"]):
        assert len(group) == budget
        assert group["loss"].iloc[-1] == pytest.approx(result.row(name, budget).loss, rel=1e-9)
    convex = ts.theory_curves("convex", ("C",), steps_per_epoch=2, budgets=SMALL)
    last = convex[convex["budget"] == 20]["loss"].iloc[-1]
    assert last == pytest.approx(ts.paper_setting("convex").row("C", 20).loss, rel=1e-9)


def test_sqrt_rule_statement_reads_the_gaps():
    table = ts.sqrt_rule_statement(("convex", "hard"))
    for row in table.itertuples():
        result = ts.paper_setting(row.model)
        assert row.sqrt_rule_gap == pytest.approx(result.row(row.sqrt_rule, 20).gap)
        assert row.serves_as_well == (row.sqrt_rule_gap <= row.hyperbolic_gap + 0.01)
    # In the hard regime the best rate does not move, so shrinking it cannot be as good.
    assert not table.set_index("model").loc["hard", "serves_as_well"]


def test_book_tasks_from_configs(tmp_path):
    folder = tmp_path / "image_classification"
    folder.mkdir()
    for i, (epochs, code, bound) in enumerate([(5, "C", None), (10, "H", 25), (10, "EH", 30)]):
        config = {
            "dataset": "fashion_mnist", "model": "simple_cnn", "epochs": epochs,
            "batch_size": 128, "train_subset": 6000, "scheduler": code,
            "scheduler_overrides": {} if bound is None else {"upper_bound": bound},
        }  # fmt: skip
        (folder / f"{i}.json").write_text(json.dumps({"config": config}))
    tasks = ts.book_tasks(tmp_path)
    assert list(tasks["task"]) == ["image"]
    row = tasks.iloc[0]
    assert row["budgets"] == (5, 10)
    assert row["steps_per_epoch"] == math.ceil(6000 / 128)
    assert row["upper_bound"] == 30


def test_predicted_exponents():
    tasks = pd.DataFrame(
        [{"task": "t", "budgets": (5, 10, 20), "steps_per_epoch": 3, "upper_bound": None}]
    )
    table = ts.predicted_exponents(tasks, ("C", "SF"), ("convex",))
    exponents = table.set_index("scheduler")["exponent"]
    assert exponents["SF"] == pytest.approx(-0.5)
    assert -0.6 < exponents["C"] < -0.3


def test_book_tasks_read_no_data(monkeypatch):
    """The studies' steps per epoch come from their runs' settings, never from a data set."""
    from hyperlr.lab import data, theory_summary

    def refuse(*args, **kwargs):
        raise AssertionError("book_tasks read a data set")

    monkeypatch.setattr(data, "load_dataset", refuse)
    monkeypatch.setattr(theory_summary, "load_dataset", refuse, raising=False)  # a direct import
    tasks = theory_summary.book_tasks()
    image = tasks.set_index("task").loc["image"]
    # Chapter 5's committed study: 6,000 Fashion-MNIST images in batches of 128.
    assert image["n_train"] == 6000 and image["steps_per_epoch"] == 47
