"""The schedule explorer: curves from hyperlr itself, one frame per slider combination."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hyperlr import exp_hyperbolic_lr, hyperbolic_lr
from hyperlr.lab.explorer import (
    EXPLORER_CODES,
    explorer_bundle,
    explorer_html,
    lr_trajectory,
    schedule_explorer,
)

BUDGETS, UPPER_BOUNDS, INFIMA = (10, 20), (20, 40), (1e-6, 1e-3)


@pytest.fixture(scope="module")
def figure():
    return schedule_explorer(BUDGETS, UPPER_BOUNDS, INFIMA, init_lr=1e-2)


def curves(frame) -> dict[str, np.ndarray]:
    return {trace.name: np.asarray(trace.y) for trace in frame.data}


def test_one_frame_per_combination_of_the_three_sliders(figure):
    assert [f.name for f in figure.frames] == [
        f"{i}-{j}-{k}" for i in range(2) for j in range(2) for k in range(2)
    ]
    assert [s.name for s in figure.layout.sliders] == ["N", "U", "infimum"]
    assert [len(s.steps) for s in figure.layout.sliders] == [2, 2, 2]
    assert [t.name for t in figure.data] == [*EXPLORER_CODES, "asymptote of H"]
    # Shown first: the middle budget (index 1), the smallest U and infimum.
    np.testing.assert_array_equal(curves(figure)["P"], curves(figure.frames[4])["P"])


def test_frames_hold_hyperlrs_own_values(figure):
    frame = next(f for f in figure.frames if f.name == "0-1-1")  # N=10, U=40, infimum 1e-3
    lines = curves(frame)
    n = np.arange(11)
    np.testing.assert_allclose(lines["H"], hyperbolic_lr(n, 1e-2, 1e-3, 10, 40), rtol=1e-12)
    np.testing.assert_allclose(lines["EH"], exp_hyperbolic_lr(n, 1e-2, 1e-3, 10, 40), rtol=1e-12)
    np.testing.assert_allclose(lines["C"][-1], 1e-3, rtol=1e-9)  # eta_min follows the slider
    np.testing.assert_allclose(lines["E"], 1e-2 * 0.96**n, rtol=1e-9)
    h0 = np.sqrt(10 * (80 - 10)) / 40
    np.testing.assert_allclose(lines["asymptote of H"], 1e-2 + (1e-2 - 1e-3) * (1 - n / 40 - h0))
    # The arc lies below its asymptote, touching it nowhere when N < U.
    assert np.all(lines["H"] < lines["asymptote of H"])


def test_each_slider_changes_what_it_should(figure):
    by_name = {f.name: curves(f) for f in figure.frames}
    assert len(by_name["0-0-0"]["P"]) != len(by_name["1-0-0"]["P"])  # N: every budgeted curve
    assert not np.allclose(by_name["1-0-0"]["H"], by_name["1-1-0"]["H"])  # U: the hyperbolas
    np.testing.assert_array_equal(by_name["1-0-0"]["C"], by_name["1-1-0"]["C"])  # ... only
    assert not np.allclose(by_name["1-0-0"]["C"], by_name["1-0-1"]["C"])  # infimum: C's floor
    np.testing.assert_array_equal(by_name["1-0-0"]["P"], by_name["1-0-1"]["P"])  # P has none


def test_lr_trajectory_starts_at_the_initial_lr_and_has_budget_plus_one_values():
    lrs = lr_trajectory("H", 5, init_lr=0.1, upper_bound=10)
    assert len(lrs) == 6 and lrs[0] == pytest.approx(0.1)
    np.testing.assert_allclose(lrs, hyperbolic_lr(np.arange(6), 0.1, 1e-6, 5, 10), rtol=1e-12)


def test_the_html_embeds_plotly_and_fetches_nothing(figure):
    html = explorer_html(figure)
    assert 'id="schedule-explorer"' in html and "plotly_sliderchange" in html
    assert not re.search(r"<script[^>]+src=", html), "plotly.js must be inline, not fetched"
    assert "* plotly.js v" in html  # the library itself, inline


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"budgets": (1, 10)}, "budgets must be"),
        ({"budgets": ()}, "budgets must be"),
        ({"upper_bounds": (5, 40)}, "upper_bounds must all be >= the largest budget"),
        ({"infima": (0.0,)}, "infima must be"),
        ({"infima": (0.5,)}, "infima must be"),
        ({"init_lr": -1.0}, "init_lr must be"),
        ({"codes": ("H", "X")}, "codes must be registry codes"),
        ({"initial": (5, 0, 0)}, "initial must be 3 indices"),
    ],
)
def test_bad_arguments_are_named(arguments, message):
    settings = {"budgets": BUDGETS, "upper_bounds": UPPER_BOUNDS, "infima": INFIMA, **arguments}
    with pytest.raises(ValueError, match=message):
        schedule_explorer(**settings)


def test_the_bundle_has_the_page_and_a_static_picture_for_the_pdf(figure):
    import base64

    bundle = explorer_bundle(figure)
    assert bundle["text/html"] == explorer_html(figure)
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
