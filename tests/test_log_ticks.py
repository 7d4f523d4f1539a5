"""Log axes of the book's figures carry at least four labelled ticks, readable without exponents."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from hyperlr.lab.plotting import _log_tick_label, _LogSteps  # noqa: E402


@pytest.mark.parametrize(
    ("vmin", "vmax", "expected"),
    [
        (0.6, 2.3, [0.6, 0.8, 1.0, 1.5, 2.0]),  # figure 5.2's range: less than half a decade
        (1e-4, 1e-1, [1e-4, 1e-3, 1e-2, 1e-1]),  # several decades: powers of ten only
        (0.03, 0.4, [0.03, 0.05, 0.1, 0.2, 0.3]),
    ],
)
def test_at_least_four_ticks_inside(vmin, vmax, expected):
    ticks = _LogSteps().tick_values(vmin, vmax)
    inside = ticks[(ticks >= vmin) & (ticks <= vmax)]
    np.testing.assert_allclose(inside, expected)


def test_labels():
    assert [_log_tick_label(v) for v in (0.5, 1.0, 20.0, 1.5)] == ["0.5", "1", "20", "1.5"]
    assert _log_tick_label(2e-5) == "$2×10^{-5}$"
    assert _log_tick_label(1e5) == "$10^{5}$"
    assert _log_tick_label(0.0) == ""
