"""hyperlr.lab.report: what a chapter glued, recorded for a rerun's own notebook."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from hyperlr.lab import report


@pytest.fixture(autouse=True)
def empty_record(monkeypatch):
    monkeypatch.setattr(report, "_GLUED", {})


def test_glue_records_values_and_the_table_rounds_only_non_integers():
    fig = plt.figure()
    report.glue("a-fig", fig, display=False)
    report.glue("a-float", np.float64(0.123456), display=False)
    report.glue("an-int", np.int64(200), display=False)
    report.glue("a-text", "14 runs of digits", display=False)
    report.glue("a-float", 2 / 3, display=False)  # glued again: the last value counts
    plt.close(fig)
    assert list(report.glued()) == ["a-fig", "a-float", "an-int", "a-text"]
    assert report.glued()["a-fig"] is fig
    table = report.glued_values()
    assert table.index.name == "glued name"
    assert table["value"].to_dict() == {
        "a-float": "0.6667",
        "an-int": "200",
        "a-text": "14 runs of digits",
    }


def test_glue_rejects_an_empty_name():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        report.glue("", 1.0, display=False)
