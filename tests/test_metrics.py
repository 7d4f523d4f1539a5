"""Unit tests of hyperlr.metrics on cases that can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats
from scipy.interpolate import CubicHermiteSpline

from hyperlr.metrics import (
    LOG_SLCD_START,
    SAVGOL9_WEIGHTS,
    DiffResult,
    PowerFit,
    diff,
    power_fit,
    savgol9,
    slcd,
)

# --------------------------------------------------------------------------------------------
# Savitzky-Golay smoothing
# --------------------------------------------------------------------------------------------


def test_savgol9_weights_are_the_papers():
    assert SAVGOL9_WEIGHTS * 231 == pytest.approx([-21, 14, 39, 54, 59, 54, 39, 14, -21])
    assert SAVGOL9_WEIGHTS.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("coefficients", [(3.0, -2.0, 0.5), (1.0, 0.0, 0.0, 0.01)])
def test_savgol9_is_exact_on_quadratics_and_cubics_in_the_interior(coefficients):
    t = np.arange(30, dtype=float)
    y = np.polynomial.polynomial.polyval(t, coefficients)
    np.testing.assert_allclose(savgol9(y), y, rtol=1e-12, atol=1e-12)


def test_savgol9_leaves_four_points_raw_at_each_end():
    rng = np.random.default_rng(0)
    y = rng.normal(size=20)
    s = savgol9(y)
    np.testing.assert_array_equal(s[:4], y[:4])
    np.testing.assert_array_equal(s[-4:], y[-4:])
    k = 7
    assert s[k] == pytest.approx(SAVGOL9_WEIGHTS @ y[k - 4 : k + 5])


def test_savgol9_unit_impulse_gives_the_weights():
    y = np.zeros(17)
    y[8] = 1.0
    np.testing.assert_allclose(savgol9(y)[4:13], SAVGOL9_WEIGHTS[::-1])


def test_savgol9_short_curve_is_returned_unchanged_as_a_copy():
    y = np.array([1.0, 5.0, 2.0, 4.0, 3.0, 8.0, 1.0, 0.5])
    s = savgol9(y)
    np.testing.assert_array_equal(s, y)
    s[0] = 99.0
    assert y[0] == 1.0


# --------------------------------------------------------------------------------------------
# SLCD: hand-computable cases
# --------------------------------------------------------------------------------------------

EPOCHS = np.arange(1, 201, dtype=float)
SMOOTH_LOSS = 0.5 * EPOCHS**-0.7 + 0.01 * np.exp(-EPOCHS / 30)
# Curves the smoothing leaves exactly as they are: a positive quadratic for "linear", and for
# "log" the exponential of a quadratic (whose central and one-sided slopes are exact too).
EXACT_CURVES = {
    "linear": 0.5 + ((210.0 - EPOCHS) / 100.0) ** 2,
    "log": np.exp(-3.0 * EPOCHS / 200.0 + 0.5 * (EPOCHS / 200.0) ** 2),
}


@pytest.mark.parametrize("method", ["linear", "log"])
def test_slcd_of_identical_curves_is_zero(method):
    assert slcd(SMOOTH_LOSS, SMOOTH_LOSS.copy(), method) == 0.0


@pytest.mark.parametrize("method", ["linear", "log"])
def test_slcd_of_a_prefix_of_an_exactly_smoothed_curve_is_zero(method):
    # A longer run that followed the same curve: the shorter one is its first 50 epochs.
    curve = EXACT_CURVES[method]
    assert slcd(curve[:50], curve[:150], method) == pytest.approx(0.0, abs=1e-12)


def test_slcd_of_a_prefix_of_a_curve_is_not_zero_because_the_ends_stay_raw():
    # The shorter curve's last four epochs are raw, the longer curve's are smoothed.
    assert slcd(SMOOTH_LOSS[:50], SMOOTH_LOSS, "linear") > 0.0


@pytest.mark.parametrize("ratio", [1.5, 2.0, 10.0])
def test_linear_slcd_of_a_constant_ratio(ratio):
    # Smoothing is linear and exact on the curve, so every term is (ratio - 1) / (ratio + 1).
    curve = EXACT_CURVES["linear"]
    value = slcd(ratio * curve[:60], curve, "linear")
    assert value == pytest.approx((ratio - 1) / (ratio + 1), rel=1e-12)


@pytest.mark.parametrize("ratio", [1.5, 2.0, 10.0])
@pytest.mark.parametrize("n_short", [11, 50, 100])
def test_log_slcd_of_a_constant_ratio(ratio, n_short):
    # ln a - ln b = ln ratio everywhere, so the integrand is tanh(ln(ratio) / 2) on [10, n].
    curve = EXACT_CURVES["log"]
    value = slcd(ratio * curve[:n_short], curve, "log")
    expected = (n_short - LOG_SLCD_START) / n_short * (ratio - 1) / (ratio + 1)
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("start", [1, 3])
def test_log_slcd_from_an_earlier_start_for_shortened_studies(start):
    curve = EXACT_CURVES["log"]
    value = slcd(2.0 * curve[:5], curve[:20], "log", start=start)
    assert value == pytest.approx((5 - start) / 5 / 3, rel=1e-12)
    with pytest.raises(ValueError, match="start"):
        slcd(curve, curve, "log", start=0)


def test_linear_slcd_without_smoothing_by_hand():
    # Fewer than 9 points: nothing is smoothed. Terms 0, 1/3, 1/2 -> mean 5/18.
    assert slcd([1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 100.0]) == pytest.approx(5 / 18)


@pytest.mark.parametrize("method", ["linear", "log"])
def test_slcd_is_symmetric(method):
    rng = np.random.default_rng(1)
    a = SMOOTH_LOSS[:80] * np.exp(rng.normal(0, 0.2, 80))
    b = SMOOTH_LOSS * np.exp(rng.normal(0, 0.2, 200))
    assert slcd(a, b, method) == slcd(b, a, method)


@pytest.mark.parametrize(("method", "reach"), [("linear", 4), ("log", 5)])
def test_slcd_averages_over_the_shorter_curve_and_smooths_the_full_longer_one(method, reach):
    # The smoothed value at the shorter curve's last epoch (50) looks 4 epochs further along the
    # longer curve; "log" looks one more, through the spline's central slope at epoch 50.
    rng = np.random.default_rng(2)
    a = SMOOTH_LOSS[:50] * np.exp(rng.normal(0, 0.2, 50))
    b = SMOOTH_LOSS * np.exp(rng.normal(0, 0.2, 200))
    reference = slcd(a, b, method)
    last_seen = 50 + reach  # epoch number, i.e. index last_seen - 1
    far = b.copy()
    far[last_seen:] *= 3.0
    assert slcd(a, far, method) == reference
    near = b.copy()
    near[last_seen - 1] *= 3.0
    assert slcd(a, near, method) != reference


def test_linear_slcd_of_equal_lengths_matches_a_direct_sum():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(1, 2, 40), rng.uniform(1, 2, 40)
    sa, sb = savgol9(a), savgol9(b)
    assert slcd(a, b) == pytest.approx(np.mean(np.abs(sa - sb) / (sa + sb)), rel=1e-14)


def test_linear_slcd_goes_negative_when_smoothing_undershoots_zero():
    # Spikes in an otherwise tiny loss: the filter's negative outer weights (-21/231) pull the
    # smoothed values four epochs away below zero. Where the two smoothed curves sum to a small
    # negative number, the term is large and negative, and here it drags the mean below zero.
    a = np.full(30, 1e-3)
    a[10] = 1.0
    b = np.full(30, 1e-3)
    b[6] = 0.3
    total = savgol9(a) + savgol9(b)
    spikes = (-21 * 1.0 + 59 * 0.3) / 231
    baseline = 1e-3 * ((1 + 21 / 231) + (1 - 59 / 231))
    assert total[6] == pytest.approx(spikes + baseline, rel=1e-12)
    assert total[6] < 0
    assert slcd(a, b, "linear") < 0
    assert 0 <= slcd(a, b, "log") < 1


def test_slcd_accepts_series_and_ignores_their_index():
    a = pd.Series(SMOOTH_LOSS[:60] * 1.2, index=np.arange(101, 161))
    b = pd.Series(SMOOTH_LOSS, index=np.arange(1, 201))
    for method in ("linear", "log"):
        assert slcd(a, b, method) == slcd(a.to_numpy(), b.to_numpy(), method)


# --------------------------------------------------------------------------------------------
# SLCD "log": against an independent form (scipy spline + adaptive quadrature)
# --------------------------------------------------------------------------------------------


def _central_slopes(y):
    slopes = np.gradient(y)  # central differences inside, first-order at the ends ...
    slopes[0] = (-3 * y[0] + 4 * y[1] - y[2]) / 2  # ... replaced by second-order ones
    slopes[-1] = (3 * y[-1] - 4 * y[-2] + y[-3]) / 2
    return slopes


def _log_slcd_reference(a, b):
    if len(a) > len(b):
        a, b = b, a
    splines = []
    for curve in (a, b):
        c = savgol9(np.log(curve))
        splines.append(CubicHermiteSpline(np.arange(1, len(c) + 1), c, _central_slopes(c)))
    ca, cb = splines

    def integrand(t):
        ea, eb = np.exp(ca(t)), np.exp(cb(t))
        return abs(ea - eb) / (ea + eb)

    n = len(a)
    total = sum(
        integrate.quad(integrand, k, k + 1, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        for k in range(LOG_SLCD_START, n)
    )
    return total / n


@pytest.mark.parametrize("seed", range(4))
def test_log_slcd_matches_an_independent_quadrature(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.choice([30, 50, 100], size=2)
    a = SMOOTH_LOSS[:n_a] * np.exp(rng.normal(0, 0.5, n_a))
    b = 1.3 * SMOOTH_LOSS[:n_b] * np.exp(rng.normal(0, 0.5, n_b))
    assert slcd(a, b, "log") == pytest.approx(_log_slcd_reference(a, b), rel=1e-7)


positive_curves = arrays(
    float,
    st.integers(LOG_SLCD_START + 1, 60),
    elements=st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(positive_curves, positive_curves)
def test_log_slcd_is_symmetric_and_in_the_unit_interval(a, b):
    value = slcd(a, b, "log")
    assert 0.0 <= value < 1.0
    assert value == pytest.approx(slcd(b, a, "log"), rel=1e-12, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(positive_curves, st.integers(-20, 20))
def test_slcd_is_invariant_to_a_common_scale(a, exponent):
    # A power of two scales without rounding, so the linear SLCD is unchanged to the last bit
    # (near-zero smoothed sums make it ill-conditioned, so an arbitrary factor would not be).
    scale = 2.0**exponent
    b = a[::-1].copy()
    assert slcd(scale * a, scale * b, "linear") == slcd(a, b, "linear")
    assert slcd(scale * a, scale * b, "log") == pytest.approx(
        slcd(a, b, "log"), rel=1e-9, abs=1e-12
    )


# --------------------------------------------------------------------------------------------
# SLCD: validation
# --------------------------------------------------------------------------------------------


def test_slcd_rejects_an_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of .*'cubic'"):
        slcd([1.0, 2.0], [1.0, 2.0], method="cubic")


@pytest.mark.parametrize("method", ["linear", "log"])
@pytest.mark.parametrize("argument", ["curve_a", "curve_b"])
def test_slcd_rejects_an_empty_curve(method, argument):
    curves = {"curve_a": SMOOTH_LOSS[:20], "curve_b": SMOOTH_LOSS[:30], argument: []}
    with pytest.raises(ValueError, match=f"{argument} must have at least"):
        slcd(**curves, method=method)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["linear", "log"])
def test_slcd_rejects_non_finite_values_naming_argument_and_value(bad, method):
    b = SMOOTH_LOSS[:30].copy()
    b[12] = bad
    with pytest.raises(ValueError, match=rf"curve_b must be finite; curve_b\[12\] = {bad!r}"):
        slcd(SMOOTH_LOSS[:20], b, method)


@pytest.mark.parametrize("bad", [0.0, -0.25])
def test_log_slcd_rejects_non_positive_values_naming_argument_and_value(bad):
    a = SMOOTH_LOSS[:20].copy()
    a[3] = bad
    with pytest.raises(ValueError, match=rf"curve_a must be positive .*curve_a\[3\] = {bad!r}"):
        slcd(a, SMOOTH_LOSS, "log")
    slcd(a, SMOOTH_LOSS, "linear")  # allowed in linear space


def test_log_slcd_rejects_a_curve_too_short_for_the_integral():
    with pytest.raises(ValueError, match="curve_a must have at least 11 values; got 10"):
        slcd(SMOOTH_LOSS[:10], SMOOTH_LOSS, "log")


def test_slcd_rejects_two_dimensional_input():
    with pytest.raises(ValueError, match=r"curve_a must be one-dimensional; .*\(2, 10\)"):
        slcd(np.ones((2, 10)), np.ones(10))


def test_slcd_rejects_non_numeric_input():
    with pytest.raises(TypeError, match="curve_b must be a sequence of real numbers"):
        slcd([1.0, 2.0], ["a", "b"])


def test_linear_slcd_rejects_smoothed_curves_summing_to_zero():
    with pytest.raises(ValueError, match="sum to zero at epoch 2"):
        slcd([1.0, 1.0, 1.0], [1.0, -1.0, 2.0])


# --------------------------------------------------------------------------------------------
# Diff
# --------------------------------------------------------------------------------------------


def test_diff_of_a_geometric_loss_sequence_is_constant():
    result = diff([1.0, 0.8, 0.64, 0.512], kind="loss")
    assert isinstance(result, DiffResult)
    assert result.mean == pytest.approx(20.0)
    assert result.std == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.differences, [20.0, 20.0, 20.0])


def test_diff_of_accuracy_by_hand():
    # Differences 0.01, 0.02, 0.03: mean 0.02, sample standard deviation 0.01.
    mean, std, differences = diff([0.80, 0.81, 0.83, 0.86], kind="accuracy")
    assert mean == pytest.approx(0.02)
    assert std == pytest.approx(0.01)
    np.testing.assert_allclose(differences, [0.01, 0.02, 0.03])


def test_diff_of_loss_by_hand_uses_the_sample_standard_deviation():
    # Improvements 50 % then 0 %: mean 25, sample std 25 * sqrt(2).
    result = diff(pd.Series([2.0, 1.0, 1.0]))
    assert result.mean == pytest.approx(25.0)
    assert result.std == pytest.approx(25.0 * math.sqrt(2.0))


def test_diff_rejects_bad_input():
    with pytest.raises(ValueError, match=r"kind must be one of \('loss', 'accuracy'\); got 'acc'"):
        diff([1.0, 2.0, 3.0], kind="acc")
    with pytest.raises(ValueError, match="values must have at least 3 values; got 2"):
        diff([1.0, 2.0])
    with pytest.raises(ValueError, match=r"values must be positive .*values\[1\] = 0.0"):
        diff([1.0, 0.0, 2.0], kind="loss")
    with pytest.raises(ValueError, match=r"values must be finite; values\[2\] = nan"):
        diff([0.1, 0.2, np.nan], kind="accuracy")


# --------------------------------------------------------------------------------------------
# Power-law fit
# --------------------------------------------------------------------------------------------

BUDGETS = np.array([50.0, 100.0, 150.0, 200.0])


@pytest.mark.parametrize(("a", "b"), [(-3.9, -1.66), (0.5, 0.016), (2.0, 0.0001)])
def test_power_fit_recovers_an_exact_power_law(a, b):
    fit = power_fit(BUDGETS, np.exp(a) * BUDGETS**b)
    assert isinstance(fit, PowerFit)
    assert fit.a == pytest.approx(a, abs=1e-10)
    assert fit.b == pytest.approx(b, abs=1e-10)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.adj_r2 == pytest.approx(1.0)
    assert fit.p_value == pytest.approx(0.0, abs=1e-8)
    np.testing.assert_allclose(fit.predict(BUDGETS), np.exp(a) * BUDGETS**b, rtol=1e-9)


def test_power_fit_by_hand_on_a_pure_exponent():
    # y = N exactly on budgets 1, e, e^2: A = 0, B = 1.
    fit = power_fit([1.0, math.e, math.e**2], [1.0, math.e, math.e**2])
    assert (fit.a, fit.b, fit.r2) == pytest.approx((0.0, 1.0, 1.0), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_power_fit_matches_scipy_and_statsmodels(seed):
    rng = np.random.default_rng(seed)
    values = 0.3 * BUDGETS**-0.8 * np.exp(rng.normal(0, 0.3, BUDGETS.size))
    fit = power_fit(BUDGETS, values)

    reference = stats.linregress(np.log(BUDGETS), np.log(values))
    assert fit.b == pytest.approx(reference.slope, rel=1e-10)
    assert fit.a == pytest.approx(reference.intercept, rel=1e-10)
    assert fit.r2 == pytest.approx(reference.rvalue**2, rel=1e-10)
    assert fit.p_value == pytest.approx(reference.pvalue, rel=1e-8)

    ols = sm.OLS(np.log(values), sm.add_constant(np.log(BUDGETS))).fit()
    assert fit.r2 == pytest.approx(ols.rsquared, rel=1e-10)
    assert fit.adj_r2 == pytest.approx(ols.rsquared_adj, rel=1e-10)
    assert fit.p_value == pytest.approx(ols.pvalues[1], rel=1e-8)
    assert ols.df_resid == 2


def test_power_fit_of_constant_values_has_no_r2():
    fit = power_fit(BUDGETS, [0.5, 0.5, 0.5, 0.5])
    assert fit.b == 0.0
    assert fit.a == pytest.approx(math.log(0.5))
    assert math.isnan(fit.r2) and math.isnan(fit.adj_r2) and math.isnan(fit.p_value)


def test_power_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="same length; got 4 and 3"):
        power_fit(BUDGETS, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="budgets must have at least 3 values; got 2"):
        power_fit([50, 100], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"budgets must be positive .*budgets\[0\] = 0.0"):
        power_fit([0, 50, 100], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"values must be positive .*values\[2\] = -3.0"):
        power_fit([25, 50, 100], [1.0, 2.0, -3.0])
    with pytest.raises(ValueError, match=r"budgets must not all be equal; got \[50.0, 50.0"):
        power_fit([50, 50, 50], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"values must be finite; values\[1\] = inf"):
        power_fit(BUDGETS, [1.0, np.inf, 2.0, 3.0])


# ---------------------------------------------------------------------------- p-value, no scipy


def test_power_fit_needs_no_scipy(monkeypatch):
    # With scipy made unimportable, power_fit still gives the p-value scipy gives.
    import sys

    rng = np.random.default_rng(3)
    values = 0.3 * BUDGETS**-0.8 * np.exp(rng.normal(0, 0.3, BUDGETS.size))
    expected = power_fit(BUDGETS, values).p_value
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    assert power_fit(BUDGETS, values).p_value == expected
    reference = stats.linregress(np.log(BUDGETS), np.log(values)).pvalue
    assert expected == pytest.approx(reference, rel=1e-10)


@pytest.mark.parametrize("dof", [1, 2, 3, 7.5, 30, 400])
@pytest.mark.parametrize("t", [0.0, 0.01, 0.7, -1.3, 2.5, 12.0, -80.0])
def test_student_t_p_value_against_scipy(t, dof):
    from hyperlr.metrics import student_t_two_sided_p

    expected = 2.0 * stats.t.sf(abs(t), dof)
    assert student_t_two_sided_p(t, dof) == pytest.approx(expected, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (1.0, 0.5), (3.7, 12.0), (50.0, 0.5), (200.0, 300.0)])
@pytest.mark.parametrize("x", [0.0, 1e-8, 0.1, 0.45, 0.9, 0.999999, 1.0])
def test_regularized_incomplete_beta_against_scipy(a, b, x):
    from scipy import special

    from hyperlr.metrics import regularized_incomplete_beta

    assert regularized_incomplete_beta(a, b, x) == pytest.approx(
        special.betainc(a, b, x), rel=1e-11, abs=1e-300
    )


def test_student_t_p_value_by_hand():
    # dof = 1 is the Cauchy distribution: P(|T| >= t) = 1 - 2 atan(t) / pi; dof = 2 has
    # P(|T| >= t) = 1 - t / sqrt(2 + t^2).
    from hyperlr.metrics import student_t_two_sided_p

    for t in (0.3, 1.0, 4.0):
        assert student_t_two_sided_p(t, 1) == pytest.approx(1 - 2 * math.atan(t) / math.pi)
        assert student_t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t))
