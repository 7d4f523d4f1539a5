"""hyperlr.theory against independent computations: double sums, numeric minimisation, Monte
Carlo simulation of SGD, the registry's schedulers stepped by hand, sympy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from hyperlr import exp_hyperbolic_lr, hyperbolic_lr
from hyperlr.registry import make_scheduler
from hyperlr.theory import (
    NQM,
    REGIMES,
    average_rate_ratio,
    convex_bound,
    convex_bound_terms,
    convex_optimum,
    nqm_curve,
    nqm_loss,
    nqm_optimum,
    rescaled_rate,
    schedule_free_nqm_loss,
    schedule_lrs,
    transfer,
)


def bound_double_sum(eta, D=1.0, G=1.0) -> float:
    """THEORY.md §2 term by term, every sum recomputed: O(T^2)."""
    T = len(eta)
    total = sum(eta)
    value = D**2 / (2 * total) + G**2 * sum(e * e for e in eta) / (2 * total)
    for k in range(T - 1):  # k = 1..T-1 in the formula
        tail_after = sum(eta[k + 1 :])
        tail_from = sum(eta[k:])
        tail_sq = sum(e * e for e in eta[k:])
        value += G**2 / 2 * eta[k] / tail_after * tail_sq / tail_from
    return value


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1e-4, 10.0), min_size=1, max_size=40),
    st.floats(0.1, 10.0),
    st.floats(0.1, 10.0),
)
def test_bound_matches_the_double_sum(eta, D, G):
    assert convex_bound(eta, D, G) == pytest.approx(bound_double_sum(eta, D, G), rel=1e-10)


@pytest.mark.parametrize("code", ["N", "P", "L", "C", "E", "H", "EH", "WSD", "OC", "CY"])
@pytest.mark.parametrize("budget", [3, 10, 25])
def test_bound_of_registry_schedules_matches_the_double_sum(code, budget):
    rates = schedule_lrs(code, budget, steps_per_epoch=3, base_lr=0.1)
    assert convex_bound(rates, 2.0, 0.5) == pytest.approx(
        bound_double_sum(list(rates), 2.0, 0.5), rel=1e-10
    )


def test_bound_from_sympy_for_symbolic_rates():
    eta = sp.symbols("e1:6", positive=True)
    S = lambda k: sum(eta[k - 1 :])  # noqa: E731
    Q = lambda k: sum(e**2 for e in eta[k - 1 :])  # noqa: E731
    expr = 1 / (2 * S(1)) + Q(1) / (2 * S(1))
    expr += sp.Rational(1, 2) * sum(eta[k - 1] / S(k + 1) * Q(k) / S(k) for k in range(1, 5))
    values = [0.3, 1.7, 0.2, 0.9, 0.05]
    exact = float(expr.subs(dict(zip(eta, values, strict=True))))
    assert convex_bound(values) == pytest.approx(exact, rel=1e-12)


def test_constant_rate_has_the_harmonic_closed_form():
    # eta_t = gamma: A = D^2/(2T), B = G^2 (1 + H_{T-1}) / 2, by the sum telescoping to 1/(T-k).
    T, D, G = 37, 1.5, 0.7
    harmonic = sum(sp.Rational(1, j) for j in range(1, T))
    best = convex_optimum(np.ones(T), D, G)
    assert best.A == pytest.approx(D**2 / (2 * T))
    assert best.B == pytest.approx(G**2 * (1 + float(harmonic)) / 2)
    assert best.rate == pytest.approx(D / (G * math.sqrt(T * (1 + float(harmonic)))))


@pytest.mark.parametrize("code", ["N", "P", "C", "H", "EH", "WSD"])
@pytest.mark.parametrize("budget", [5, 40])
def test_closed_form_optimum_matches_numeric_minimisation(code, budget):
    shape = schedule_lrs(code, budget, 4) / 1e-3
    best = convex_optimum(shape, D=3.0, G=0.5)
    found = minimize_scalar(
        lambda x: convex_bound(math.exp(x) * shape, 3.0, 0.5),
        bounds=(-15, 10),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert best.rate == pytest.approx(math.exp(found.x), rel=1e-4)
    assert best.bound == pytest.approx(found.fun, rel=1e-9)
    A, B = convex_bound_terms(shape, 3.0, 0.5)
    assert A / best.rate + B * best.rate == pytest.approx(best.bound)


def test_fixed_shape_rate_scales_as_inverse_square_root():
    # Linear decay to zero, per step: gamma*(4T) / gamma*(T) tends to 1/2 (up to log factors).
    ratio = (
        convex_optimum(np.linspace(1, 0, 4001)[:-1]).rate
        / convex_optimum(np.linspace(1, 0, 1001)[:-1]).rate
    )
    assert ratio == pytest.approx(0.5, rel=0.05)


# ------------------------------------------------------------------------------------ NQM


def nqm_step_by_step(rates, model: NQM) -> float:
    h, m = model.curvatures, model.initial_moments.copy()
    for eta in rates:
        m = (1 - eta * h) ** 2 * m + eta**2 * model.sigma2 * h
    return 0.5 * float(h @ m)


@pytest.mark.parametrize("regime", ["easy", "hard"])
@pytest.mark.parametrize("code", ["C", "H", "WSD", "E"])
def test_nqm_run_length_updates_match_the_step_recursion(regime, code):
    rates = schedule_lrs(code, 12, steps_per_epoch=7, base_lr=0.8)
    assert nqm_loss(rates, regime) == pytest.approx(
        nqm_step_by_step(rates, REGIMES[regime]), rel=1e-9
    )
    curve = nqm_curve(rates, regime, every=7)
    assert curve.shape == (12,)
    assert curve[-1] == pytest.approx(nqm_loss(rates, regime), rel=1e-12)
    assert curve[4] == pytest.approx(nqm_step_by_step(rates[:35], REGIMES[regime]), rel=1e-9)


def test_nqm_starts_at_one_and_has_the_regime_parameters():
    for model in REGIMES.values():
        assert 0.5 * model.curvatures @ model.initial_moments == pytest.approx(1.0)
    assert REGIMES["easy"] == NQM(400, 1.0, 1.0, 1e-2)
    assert REGIMES["hard"] == NQM(400, 1.5, 0.0, 1e-4)


def test_nqm_matches_monte_carlo_sgd():
    model = NQM(dim=20, a=1.0, b=0.5, sigma2=0.05)
    rates = schedule_lrs("C", 10, steps_per_epoch=6, base_lr=0.7)
    rng = np.random.default_rng(0)
    replicas = 20_000
    h = model.curvatures
    theta = rng.standard_normal((replicas, model.dim)) * np.sqrt(model.initial_moments)
    for eta in rates:
        noise = rng.standard_normal(theta.shape) * np.sqrt(model.sigma2 * h)
        theta = theta - eta * (h * theta + noise)
    losses = 0.5 * (theta**2) @ h
    error = losses.std() / math.sqrt(replicas)
    assert abs(losses.mean() - nqm_loss(rates, model)) < 4 * error


def test_schedule_free_matches_monte_carlo():
    model = NQM(dim=15, a=1.0, b=0.0, sigma2=0.05)
    gamma, beta, steps = 0.6, 0.9, 50
    rng = np.random.default_rng(1)
    replicas = 20_000
    h = model.curvatures
    z = rng.standard_normal((replicas, model.dim)) * np.sqrt(model.initial_moments)
    x = z.copy()
    for t in range(1, steps + 1):
        y = (1 - beta) * z + beta * x
        noise = rng.standard_normal(z.shape) * np.sqrt(model.sigma2 * h)
        z = z - gamma * (h * y + noise)
        c = 1 / (t + 1)
        x = (1 - c) * x + c * z
    losses = 0.5 * (x**2) @ h
    error = losses.std() / math.sqrt(replicas)
    exact = schedule_free_nqm_loss(gamma, steps, model, beta)
    assert abs(losses.mean() - exact) < 4 * error


@pytest.mark.parametrize("regime", ["easy", "hard"])
def test_nqm_optimum_matches_numeric_minimisation(regime):
    shape = schedule_lrs("C", 30, steps_per_epoch=5) / 1e-3
    rate, loss = nqm_optimum(shape, regime)
    limit = REGIMES[regime].stability_limit / shape.max()
    found = minimize_scalar(
        lambda x: nqm_loss(math.exp(x) * shape, regime),
        bounds=(math.log(limit) - 12, math.log(limit)),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert loss == pytest.approx(found.fun, rel=1e-4)
    assert loss <= found.fun * (1 + 1e-9)
    assert rate == pytest.approx(math.exp(found.x), rel=0.02)


# ------------------------------------------------------------------------------ schedules


def by_hand(code, epochs, steps_per_epoch, lr, per_batch, **settings):
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], lr=lr)
    scheduler = make_scheduler(code, optimizer, epochs, steps_per_epoch, **settings)
    seen = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if per_batch:
                scheduler.step()
        if not per_batch:
            scheduler.step()
    return np.array(seen)


@pytest.mark.parametrize(
    ("code", "settings", "per_batch"),
    [
        ("C", {}, False),
        ("H", {"upper_bound": 30}, False),
        ("EH", {"infimum_lr": 1e-5}, False),
        ("WSD", {}, False),
        ("E", {"gamma": 0.8}, False),
        ("OC", {}, True),
        ("CY", {}, True),
    ],
)
def test_schedule_lrs_is_the_registry_stepped_as_in_training(code, settings, per_batch):
    got = schedule_lrs(code, 20, 3, base_lr=0.01, **settings)
    np.testing.assert_allclose(got, by_hand(code, 20, 3, 0.01, per_batch, **settings), rtol=1e-12)


def test_per_step_stepping_stretches_the_durations():
    got = schedule_lrs("H", 10, 4, base_lr=0.1, per_step=True, upper_bound=20)
    np.testing.assert_allclose(got, hyperbolic_lr(np.arange(40), 0.1, 1e-6, 40, 80), rtol=1e-9)
    per_epoch = schedule_lrs("H", 10, 4, base_lr=0.1, upper_bound=20)
    np.testing.assert_allclose(per_epoch[::4], got[::4], rtol=1e-9)  # they agree at epoch starts
    e_step = schedule_lrs("E", 5, 4, base_lr=1.0, per_step=True, gamma=0.5)
    np.testing.assert_allclose(e_step[::4], 0.5 ** np.arange(5), rtol=1e-12)
    assert np.all(schedule_lrs("SF", 3, 2, base_lr=0.2) == 0.2)


def test_average_rates_of_h_and_eh():
    x = np.array([0.1, 0.25, 0.5, 0.8, 1.0])
    for xv, h_avg, eh_avg in zip(
        x, average_rate_ratio(x, "H", 1e-3), average_rate_ratio(x, "EH", 1e-3), strict=True
    ):
        N = 20_000
        steps = np.arange(N + 1)  # the trapezoid rule over the budget
        for schedule, exact in ((hyperbolic_lr, h_avg), (exp_hyperbolic_lr, eh_avg)):
            values = schedule(steps, 1.0, 1e-3, N, N / xv)
            assert exact == pytest.approx(np.trapezoid(values) / N, rel=1e-5)
    assert average_rate_ratio(np.array([1.0]), "H", 0.0)[0] == pytest.approx(0.5)
    w, c = sp.symbols("w c", positive=True)
    area = sp.integrate(sp.sqrt(w**2 - c**2), (w, c, 1))
    h0 = sp.sqrt(1 - c**2)
    closed = (h0 - c**2 * sp.log((1 + h0) / c)) / 2
    for value in (sp.Rational(1, 5), sp.Rational(1, 2), sp.Rational(9, 10)):
        assert float(area.subs(c, value)) == pytest.approx(float(closed.subs(c, value)), rel=1e-12)


# ------------------------------------------------------------------- protocol and helper


def test_transfer_convex_bound():
    result = transfer(
        ["C", "H", "SF", "C+sqrt"],
        "convex",
        tune_budget=10,
        budgets=(10, 20, 40),
        steps_per_epoch=2,
        grids={"C": {"eta_min": (1e-6,)}, "H": {"upper_bound": (40, 80)}, "SF": {}},
    )
    for row in result.rows:
        assert row.regret >= -1e-9
        if row.schedule != "SF":
            assert row.gap >= row.regret - 1e-9
            assert row.gap == pytest.approx(row.loss / row.envelope - 1)
        if row.budget == 10:
            assert row.regret == pytest.approx(0, abs=1e-9)
    # Schedule-free: bound D^2/(2 gamma T) + gamma G^2/2, so regret (sqrt(k) + 1/sqrt(k))/2 - 1.
    for k in (2, 4):
        sf = result.row("SF", 10 * k)
        assert sf.regret == pytest.approx((math.sqrt(k) + 1 / math.sqrt(k)) / 2 - 1)
        assert math.isnan(sf.gap)
    assert result.exponents["SF"] == pytest.approx(-0.5)
    assert -0.6 < result.exponents["C"] < -0.4
    assert result.row("C+sqrt", 40).rate == pytest.approx(result.row("C", 40).rate / 2)
    assert result.row("C+sqrt", 40).regret < result.row("C", 40).regret
    # The retuned loss is the minimum over the grid, recomputed here from the closed form.
    best = min(
        convex_optimum(schedule_lrs("H", 40, 2, upper_bound=u) / 1e-3).bound for u in (40, 80)
    )
    assert result.row("H", 40).retuned_loss == pytest.approx(best)
    assert result.row("H", 40).envelope == min(result.row(s, 40).retuned_loss for s in ("C", "H"))


def test_transfer_hard_regime_sits_at_the_stability_limit():
    result = transfer(
        ["WSD", "C"], "hard", tune_budget=10, budgets=(10, 20), steps_per_epoch=50,
        grids={"WSD": {"infimum_lr": (1e-6,)}, "C": {"eta_min": (1e-6,)}},
    )  # fmt: skip
    for row in result.rows:
        assert row.optimal_rate == pytest.approx(REGIMES["hard"].stability_limit, rel=0.01)
        assert row.regret == pytest.approx(0, abs=1e-6)


def test_rescaled_rate():
    advice = rescaled_rate("C", 3e-3, 50, 200, steps_per_epoch=10)
    assert advice.sqrt_rule == pytest.approx(1.5e-3)
    assert advice.bound == pytest.approx(advice.sqrt_rule, rel=0.1)
    assert advice.bound_exponent == pytest.approx(-0.5, abs=0.05)
    hyperbolic = rescaled_rate("H", 3e-3, 50, 200, upper_bound=250)
    assert hyperbolic.bound > advice.bound  # H lowers its own average rate
    assert rescaled_rate("SF", 1e-2, 10, 40).bound == pytest.approx(5e-3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: convex_bound([]), "lrs"),
        (lambda: convex_bound([0.1, -1.0]), "lrs"),
        (lambda: convex_bound([0.1], D=0), "D"),
        (lambda: nqm_loss([0.1], "medium"), "regime"),
        (lambda: nqm_curve([0.1] * 5, "easy", every=2), "every"),
        (lambda: NQM(dim=0), "dim"),
        (lambda: schedule_lrs("XYZ", 10), "name"),
        (lambda: schedule_lrs("C", 0), "budget"),
        (lambda: schedule_lrs("C", 5, steps_per_epoch=1.5), "steps_per_epoch"),
        (lambda: schedule_lrs("SF", 5, power=2), "SF"),
        (lambda: transfer(["C"], "lunar"), "model"),
        (lambda: transfer("C"), "schedules"),
        (lambda: transfer(["S"]), "grid"),
        (lambda: transfer(["SF+sqrt"]), "square-root"),
        (lambda: average_rate_ratio(1.5), "x"),
        (lambda: average_rate_ratio(0.5, "P"), "kind"),
        (lambda: rescaled_rate("C", -1.0, 5, 10), "tuned_lr"),
    ],
)
def test_errors_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()
