"""HyperbolicLR / ExpHyperbolicLR against the paper's formula and the LRScheduler contract."""

from __future__ import annotations

import copy
import io
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import ConstantLR, ExponentialLR, LinearLR, SequentialLR

from hyperlr import ExpHyperbolicLR, HyperbolicLR, exp_hyperbolic_lr, hyperbolic_lr
from hyperlr.wsd import WarmupStableDecayLR

SCHEDULERS = [HyperbolicLR, ExpHyperbolicLR]


# An independent numpy transcription of PAPER.md §1 (written from the paper's equations, not from
# hyperlr.schedules), used as the oracle.
def paper_lr(kind, n, init, infimum, N, U, W=0):
    n = np.asarray(n, dtype=np.float64)
    n_eff = np.minimum(n, N)
    budget = N - W
    m = np.clip(n_eff - W, 0, budget)
    h = np.sqrt((budget - m) / U * (2 - (budget + m) / U))
    h0 = np.sqrt(budget / U * (2 - budget / U))
    if kind is HyperbolicLR:
        decay = init + (init - infimum) * (h - h0)
    else:
        decay = init * (init / infimum) ** (h - h0)
    warm = infimum + (init - infimum) * n / max(W, 1)
    return np.where(n < W, warm, decay)


def make_optimizer(lrs=(1e-2,), tensor_lr_group=None, optimizer=torch.optim.AdamW):
    groups = []
    for index, lr in enumerate(lrs):
        param = torch.nn.Parameter(torch.randn(3))
        lr_value = torch.tensor(lr) if index == tensor_lr_group else lr
        groups.append({"params": [param], "lr": lr_value})
    return optimizer(groups)


def run(scheduler, optimizer, steps):
    """The lr of every group during each of ``steps`` optimizer steps."""
    held = []
    for _ in range(steps):
        held.append([float(group["lr"]) for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return np.array(held)


CONFIGS = [
    # init, infimum, N, U, W
    (1e-2, 1e-6, 100, 250, 0),
    (1e-3, 1e-5, 50, 50, 0),
    (5e-2, 1e-7, 200, 400, 0),
    (1e-2, 1e-4, 30, 1000, 5),
    (3e-4, 3e-6, 10, 11, 9),
]


@pytest.mark.parametrize("cls", SCHEDULERS)
@pytest.mark.parametrize("config", CONFIGS)
def test_every_step_matches_the_paper_formula(cls, config):
    init, infimum, N, U, W = config
    optimizer = make_optimizer((init,))
    scheduler = cls(optimizer, upper_bound=U, max_iter=N, infimum_lr=infimum, warmup_epochs=W)
    held = run(scheduler, optimizer, N + 1)[:, 0]
    expected = paper_lr(cls, np.arange(N + 1), init, infimum, N, U, W)
    np.testing.assert_allclose(held, expected, rtol=1e-12, atol=0)


def test_reference_numbers_of_the_paper():
    # PAPER.md §1: eta_init 1e-2, eta_inf 1e-6, N 100, U 250 (h(0) = 0.8 exactly).
    args = dict(init_lr=1e-2, infimum_lr=1e-6, max_iter=100, upper_bound=250)
    assert hyperbolic_lr(1, **args) == pytest.approx(0.009949948401685303, rel=1e-12)
    assert hyperbolic_lr(100, **args) == pytest.approx(0.0020008, rel=1e-12)
    assert exp_hyperbolic_lr(1, **args) == pytest.approx(0.00954942799556501, rel=1e-12)
    assert exp_hyperbolic_lr(100, **args) == pytest.approx(6.30957344480193e-06, rel=1e-12)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_first_step_trains_at_the_initial_lr(cls):
    optimizer = make_optimizer((1e-2,))
    cls(optimizer, upper_bound=250, max_iter=100)
    assert optimizer.param_groups[0]["lr"] == 1e-2


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_warmup_starts_at_the_infimum(cls):
    optimizer = make_optimizer((1e-2,))
    cls(optimizer, upper_bound=250, max_iter=100, infimum_lr=1e-5, warmup_epochs=10)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5, rel=1e-12)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_each_group_decays_from_its_own_lr_including_a_tensor_lr(cls):
    optimizer = make_optimizer((1e-2, 1e-3), tensor_lr_group=1)
    scheduler = cls(optimizer, upper_bound=250, max_iter=100, infimum_lr=[1e-6, 1e-7])
    held = run(scheduler, optimizer, 101)
    n = np.arange(101)
    np.testing.assert_allclose(held[:, 0], paper_lr(cls, n, 1e-2, 1e-6, 100, 250), rtol=1e-12)
    # float32 tensor lr: the group's own storage limits the precision.
    np.testing.assert_allclose(held[:, 1], paper_lr(cls, n, 1e-3, 1e-7, 100, 250), rtol=1e-6)
    assert isinstance(optimizer.param_groups[1]["lr"], torch.Tensor)
    assert held[-1, 0] != held[-1, 1]


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_past_the_budget_the_lr_holds_its_final_value(cls):
    optimizer = make_optimizer((1e-2,))
    scheduler = cls(optimizer, upper_bound=120, max_iter=100, infimum_lr=1e-6)
    held = run(scheduler, optimizer, 400)[:, 0]
    assert np.all(np.isfinite(held))
    np.testing.assert_array_equal(held[100:], held[100])
    assert held[100] == pytest.approx(paper_lr(cls, 100, 1e-2, 1e-6, 100, 120), rel=1e-12)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_final_value_reaches_the_infimum_only_when_the_budget_equals_the_upper_bound(cls):
    optimizer = make_optimizer((1e-2,))
    scheduler = cls(optimizer, upper_bound=100, max_iter=100, infimum_lr=1e-6)
    assert run(scheduler, optimizer, 101)[-1, 0] == pytest.approx(1e-6, rel=1e-9)
    optimizer = make_optimizer((1e-2,))
    scheduler = cls(optimizer, upper_bound=200, max_iter=100, infimum_lr=1e-6)
    assert run(scheduler, optimizer, 101)[-1, 0] > 1e-6 * 1.5


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_state_dict_round_trip_mid_run_into_a_differently_built_scheduler(cls):
    kwargs = dict(upper_bound=300, max_iter=120, infimum_lr=[1e-6, 1e-5], warmup_epochs=7)
    reference_optimizer = make_optimizer((1e-2, 2e-3))
    reference = cls(reference_optimizer, **kwargs)
    expected = run(reference, reference_optimizer, 150)

    optimizer = make_optimizer((1e-2, 2e-3))
    scheduler = cls(optimizer, **kwargs)
    first = run(scheduler, optimizer, 40)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=False)

    resumed_optimizer = make_optimizer((0.5, 0.5))
    resumed = cls(resumed_optimizer, upper_bound=10, max_iter=5, infimum_lr=1e-3)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    second = run(resumed, resumed_optimizer, 110)
    np.testing.assert_array_equal(np.vstack([first, second]), expected)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_scheduler_pickles_and_continues(cls):
    optimizer = make_optimizer((1e-2,))
    scheduler = cls(optimizer, upper_bound=250, max_iter=100)
    run(scheduler, optimizer, 10)
    clone = pickle.loads(pickle.dumps(scheduler))
    assert run(clone, clone.optimizer, 50).tolist() == run(scheduler, optimizer, 50).tolist()
    assert copy.deepcopy(scheduler).last_epoch == scheduler.last_epoch


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_as_the_second_phase_of_sequential_lr(cls):
    optimizer = make_optimizer((1e-2, 1e-3))
    warm = LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=5)
    decay = cls(optimizer, upper_bound=60, max_iter=50, infimum_lr=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation or ordering warning on the normal path
        sequential = SequentialLR(optimizer, [warm, decay], milestones=[5])
        held = run(sequential, optimizer, 60)
    np.testing.assert_allclose(held[:5, 0], 1e-2 * np.linspace(0.1, 1.0, 6)[:5], rtol=1e-12)
    for group, lr in enumerate((1e-2, 1e-3)):
        expected = paper_lr(cls, np.arange(55), lr, 1e-6, 50, 60)
        np.testing.assert_allclose(held[5:, group], expected, rtol=1e-12)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_as_the_first_phase_of_sequential_lr(cls):
    optimizer = make_optimizer((1e-2,))
    decay = cls(optimizer, upper_bound=20, max_iter=20, infimum_lr=1e-4)
    hold = ConstantLR(optimizer, factor=1e-2, total_iters=1000)
    sequential = SequentialLR(optimizer, [decay, hold], milestones=[20])
    held = run(sequential, optimizer, 25)[:, 0]
    expected = paper_lr(cls, np.arange(20), 1e-2, 1e-4, 20, 20)
    np.testing.assert_allclose(held[:20], expected, rtol=1e-12)
    np.testing.assert_allclose(held[20:], 1e-4, rtol=1e-12)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_per_optimizer_step_use_with_a_large_budget(cls):
    steps = 5_000
    optimizer = make_optimizer((1e-3,), optimizer=torch.optim.SGD)
    scheduler = cls(optimizer, upper_bound=6_000, max_iter=steps, infimum_lr=1e-6)
    held = run(scheduler, optimizer, steps + 10)[:, 0]
    expected = paper_lr(cls, np.arange(steps + 10), 1e-3, 1e-6, steps, 6_000)
    np.testing.assert_allclose(held, expected, rtol=1e-12)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_chained_with_a_multiplicative_scheduler_accumulates_its_factors(cls):
    # Chainable get_lr: a multiplicative scheduler after it scales the lr by gamma ** n.
    optimizer = make_optimizer((1e-2,))
    hyper = cls(optimizer, upper_bound=100, max_iter=50, infimum_lr=1e-6)
    gamma = ExponentialLR(optimizer, gamma=0.5)
    chained = torch.optim.lr_scheduler.ChainedScheduler([hyper, gamma])
    held = run(chained, optimizer, 8)[:, 0]
    expected = paper_lr(cls, np.arange(8), 1e-2, 1e-6, 50, 100) * 0.5 ** np.arange(8)
    np.testing.assert_allclose(held, expected, rtol=1e-12)
    assert "ChainedScheduler" in (cls.__doc__ or "") + (HyperbolicLR.__doc__ or "")


# ---------------------------------------------------------------------------- validation


BAD_ARGUMENTS = [
    (dict(max_iter=0), "max_iter"),
    (dict(max_iter=2.5), "max_iter"),
    (dict(max_iter=True), "max_iter"),
    (dict(upper_bound=50, max_iter=100), "upper_bound"),
    (dict(upper_bound=float("inf")), "upper_bound"),
    (dict(upper_bound=float("nan")), "upper_bound"),
    (dict(infimum_lr=1e-2), "infimum_lr"),
    (dict(infimum_lr=0.5), "infimum_lr"),
    (dict(infimum_lr=-1e-6), "infimum_lr"),
    (dict(infimum_lr=float("nan")), "infimum_lr"),
    (dict(infimum_lr=[1e-6, 1e-6]), "infimum_lr"),
    (dict(warmup_epochs=-1), "warmup_epochs"),
    (dict(warmup_epochs=100), "warmup_epochs"),
    (dict(warmup_epochs=1.5), "warmup_epochs"),
]


@pytest.mark.parametrize("cls", SCHEDULERS)
@pytest.mark.parametrize(("kwargs", "name"), BAD_ARGUMENTS)
def test_bad_arguments_raise_before_anything_changes(cls, kwargs, name):
    optimizer = make_optimizer((1e-2,))
    before = copy.deepcopy(optimizer.param_groups[0])
    full = dict(upper_bound=250, max_iter=100, infimum_lr=1e-6) | kwargs
    with pytest.raises(ValueError, match=name):
        cls(optimizer, **full)
    assert "initial_lr" not in optimizer.param_groups[0]
    assert optimizer.param_groups[0]["lr"] == before["lr"]


def test_the_message_quotes_the_bad_value():
    with pytest.raises(ValueError, match=r"max_iter must be an integer >= 1, got -3"):
        HyperbolicLR(make_optimizer(), max_iter=-3)
    with pytest.raises(ValueError, match=r"param group 1"):
        HyperbolicLR(make_optimizer((1e-2, 1e-7)), upper_bound=250, max_iter=100)


def test_zero_infimum_is_fine_for_hyperbolic_but_not_for_exp_hyperbolic():
    HyperbolicLR(make_optimizer(), upper_bound=250, max_iter=100, infimum_lr=0.0)
    with pytest.raises(ValueError, match="infimum_lr must be > 0"):
        ExpHyperbolicLR(make_optimizer(), upper_bound=250, max_iter=100, infimum_lr=0.0)


def test_not_an_optimizer_is_a_type_error():
    with pytest.raises(TypeError, match="optimizer"):
        HyperbolicLR(object(), max_iter=10)


@pytest.mark.parametrize("function", [hyperbolic_lr, exp_hyperbolic_lr])
def test_array_functions_validate_too(function):
    with pytest.raises(ValueError, match="upper_bound"):
        function(np.arange(10), 1e-2, 1e-6, max_iter=100, upper_bound=10)
    with pytest.raises(ValueError, match="infimum_lr"):
        function(np.arange(10), 1e-2, 1e-1, max_iter=100, upper_bound=200)
    with pytest.raises(ValueError, match="step must hold whole numbers"):
        function([0.5], 1e-2, 1e-6, max_iter=100, upper_bound=200)
    with pytest.raises(ValueError, match="step must be >= 0"):
        function([3, -1], 1e-2, 1e-6, max_iter=100, upper_bound=200)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_array_function_and_scheduler_agree_exactly(cls):
    function = hyperbolic_lr if cls is HyperbolicLR else exp_hyperbolic_lr
    optimizer = make_optimizer((2e-3,))
    scheduler = cls(optimizer, upper_bound=90, max_iter=80, infimum_lr=1e-6, warmup_epochs=4)
    held = run(scheduler, optimizer, 100)[:, 0]
    array = function(np.arange(100), 2e-3, 1e-6, max_iter=80, upper_bound=90, warmup_epochs=4)
    np.testing.assert_array_equal(held, array)


# ---------------------------------------------------------------------------- properties


@st.composite
def valid_configs(draw):
    N = draw(st.integers(1, 400))
    U = draw(st.floats(N, 4 * N + 10, allow_nan=False))
    init = draw(st.floats(1e-5, 1.0))
    infimum = draw(st.floats(1e-9, init * 0.999))
    W = draw(st.integers(0, N - 1))
    return init, infimum, N, U, W


@pytest.mark.parametrize("function", [hyperbolic_lr, exp_hyperbolic_lr])
@settings(max_examples=150, deadline=None)
@given(config=valid_configs())
def test_properties_for_random_valid_arguments(function, config):
    init, infimum, N, U, W = config
    steps = np.arange(N + 20)
    lr = function(steps, init, infimum, max_iter=N, upper_bound=U, warmup_epochs=W)
    assert np.all(np.isfinite(lr))
    after_warmup = lr[W:]
    assert np.all(np.diff(after_warmup) <= 1e-15 * init)  # non-increasing after the warmup
    final = lr[N]
    assert np.all(after_warmup >= final * (1 - 1e-12))  # bounded below by eta(N) ...
    # ... which is never below the infimum (up to the rounding of init - (init - inf))
    assert final >= infimum - 1e-12 * init
    assert np.all(lr <= init * (1 + 1e-12))  # and above by the initial lr
    assert lr[W] == pytest.approx(init, rel=1e-12)
    kind = HyperbolicLR if function is hyperbolic_lr else ExpHyperbolicLR
    np.testing.assert_allclose(
        lr, paper_lr(kind, steps, init, infimum, N, U, W), rtol=1e-9, atol=1e-300
    )


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 300), extra=st.floats(0, 300))
def test_initial_slope_against_the_asymptote(N, extra):
    # PAPER.md §1 property 3: h'(0) = -1/sqrt(N (2U - N)); check the discrete first step of the
    # hyperbola against it, for the schedule with infimum 0 and init 1 (lr = 1 + h(n) - h(0)).
    U = N + extra
    lr = hyperbolic_lr(np.array([0, 1]), 1.0, 0.0, max_iter=N, upper_bound=U)
    h0 = math.sqrt(N * (2 * U - N)) / U
    h1 = math.sqrt((N - 1) * (2 * U - N - 1)) / U
    assert lr[1] - lr[0] == pytest.approx(h1 - h0, rel=1e-9, abs=1e-15)


def test_hyperbola_is_the_papers_h():
    from hyperlr.schedules import hyperbola

    N, U = 100, 250
    n = np.arange(N + 1)
    expected = np.sqrt((N - n) / U * (2 - (N + n) / U))
    np.testing.assert_allclose([hyperbola(k, N, U) for k in n], expected, rtol=1e-12, atol=1e-15)
    assert hyperbola(0, N, U) == pytest.approx(0.8, rel=1e-15)
    for outside in (101, 450):  # 450 > 2U - N would silently give the other branch
        with pytest.raises(ValueError, match="n must be <= max_iter"):
            hyperbola(outside, N, U)


ALL_THREE = [
    (HyperbolicLR, dict(upper_bound=250, max_iter=100)),
    (ExpHyperbolicLR, dict(upper_bound=250, max_iter=100)),
    (WarmupStableDecayLR, dict(total_steps=100, warmup_steps=5, decay_steps=10)),
]


@pytest.mark.parametrize(("cls", "kwargs"), ALL_THREE)
@pytest.mark.parametrize("bad_lr", [float("nan"), float("inf"), 0.0, -1e-3])
@pytest.mark.parametrize("tensor", [False, True])
def test_a_nan_infinite_or_non_positive_optimizer_lr_is_refused_untouched(
    cls, kwargs, bad_lr, tensor
):
    optimizer = make_optimizer((1e-2, bad_lr), tensor_lr_group=1 if tensor else None)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\] must be a finite number > 0"):
        cls(optimizer, infimum_lr=1e-6, **kwargs)
    assert all("initial_lr" not in group for group in optimizer.param_groups)
    assert optimizer.param_groups[0]["lr"] == 1e-2


@pytest.mark.parametrize(("cls", "kwargs"), ALL_THREE)
def test_a_list_of_parameters_instead_of_an_optimizer_is_a_type_error(cls, kwargs):
    params = [torch.nn.Parameter(torch.randn(3))]
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        cls(params, **kwargs)
