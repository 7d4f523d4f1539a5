"""hyperlr's schedulers inside ChainedScheduler and SequentialLR, resumed in either order, and
their small contracts (bad step, unknown keyword, repr, 0-d infimum).

The oracle is the product of each scheduler's factor, written here from the formulas (the
paper's hyperbola, WSD's piecewise line, LinearLR's ramp), not from hyperlr's code.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import ChainedScheduler, ExponentialLR, LinearLR, SequentialLR

from hyperlr import ExpHyperbolicLR, HyperbolicLR, WarmupStableDecayLR

INIT = (1e-2, 3e-3)
INFIMUM = 1e-5


def hyperbolic_factor(n, init, N, U, W, exponential):
    n = min(n, N)
    if n < W:
        return (INFIMUM + (init - INFIMUM) * n / W) / init
    budget, m = N - W, n - W
    h = math.sqrt((budget - m) * (2 * U - budget - m)) / U
    h0 = math.sqrt(budget * (2 * U - budget)) / U
    if exponential:
        return (init / INFIMUM) ** (h - h0)
    return (init + (init - INFIMUM) * (h - h0)) / init


def wsd_factor(n, init, N, W, D, infimum=INFIMUM):
    if n < W:
        fraction = n / W
    elif n < N - D:
        fraction = 1.0
    else:
        fraction = max(0.0, 1 - (n - (N - D)) / D)
    return (infimum + (init - infimum) * fraction) / init


def linear_factor(n, start, total):
    return start + (1 - start) * min(n, total) / total


# (name, budget in scheduler steps, how to build it, its factor at step n for a group's lr)
def kinds(budget):
    warm = budget // 10
    return {
        "hyperbolic": (
            lambda o: HyperbolicLR(
                o, upper_bound=2 * budget, max_iter=budget, infimum_lr=INFIMUM, warmup_epochs=warm
            ),
            lambda n, lr: hyperbolic_factor(n, lr, budget, 2 * budget, warm, False),
        ),
        "exp_hyperbolic": (
            lambda o: ExpHyperbolicLR(
                o, upper_bound=2 * budget, max_iter=budget, infimum_lr=INFIMUM
            ),
            lambda n, lr: hyperbolic_factor(n, lr, budget, 2 * budget, 0, True),
        ),
        "wsd": (
            lambda o: WarmupStableDecayLR(
                o,
                total_steps=budget,
                warmup_steps=warm,
                decay_steps=budget // 4,
                infimum_lr=INFIMUM,
            ),
            lambda n, lr: wsd_factor(n, lr, budget, warm, budget // 4),
        ),
    }


def make_optimizer(tensor_lr=True):
    groups = [
        {"params": [torch.nn.Parameter(torch.randn(2))], "lr": INIT[0]},
        {
            "params": [torch.nn.Parameter(torch.randn(2))],
            "lr": torch.tensor(INIT[1], dtype=torch.float64) if tensor_lr else INIT[1],
        },
    ]
    return torch.optim.SGD(groups)


def held_lrs(scheduler, optimizer, steps):
    held = []
    for _ in range(steps):
        held.append([float(group["lr"]) for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return np.array(held)


# per epoch: a 30-step budget run 15 steps past it; per step: 1,500 steps run 100 past it.
@pytest.mark.parametrize("budget,extra", [(30, 15), (1_500, 100)], ids=["per-epoch", "per-step"])
@pytest.mark.parametrize("kind", ["hyperbolic", "exp_hyperbolic", "wsd"])
@pytest.mark.parametrize("hyperlr_first", [True, False], ids=["hyperlr-first", "linear-first"])
def test_chained_with_linear_warmup_is_the_product_of_the_factors(
    budget, extra, kind, hyperlr_first
):
    build, factor = kinds(budget)[kind]
    ramp = budget // 5
    optimizer = make_optimizer()
    if hyperlr_first:
        ours = build(optimizer)
        linear = LinearLR(optimizer, start_factor=0.1, total_iters=ramp)
        chained = ChainedScheduler([ours, linear])
    else:
        linear = LinearLR(optimizer, start_factor=0.1, total_iters=ramp)
        ours = build(optimizer)
        chained = ChainedScheduler([linear, ours])
    assert isinstance(optimizer.param_groups[1]["lr"], torch.Tensor)
    held = held_lrs(chained, optimizer, budget + extra)
    for group, lr in enumerate(INIT):
        expected = [lr * factor(n, lr) * linear_factor(n, 0.1, ramp) for n in range(budget + extra)]
        np.testing.assert_allclose(held[:, group], expected, rtol=1e-9)
    # Past the budget both factors hold: the lr stays at the product of the final factors.
    np.testing.assert_allclose(held[budget:, 0], held[budget, 0], rtol=1e-12)


@pytest.mark.parametrize("kind", ["hyperbolic", "exp_hyperbolic", "wsd"])
def test_alone_and_in_sequential_lr_the_lr_is_the_closed_form(kind):
    budget = 40
    build, factor = kinds(budget)[kind]
    optimizer = make_optimizer()
    held = held_lrs(build(optimizer), optimizer, budget + 5)
    for group, lr in enumerate(INIT):
        expected = [lr * factor(n, lr) for n in range(budget + 5)]
        np.testing.assert_allclose(held[:, group], expected, rtol=1e-12)

    optimizer = make_optimizer()
    warm = LinearLR(optimizer, start_factor=0.2, total_iters=5)
    sequential = SequentialLR(optimizer, [warm, build(optimizer)], milestones=[5])
    held = held_lrs(sequential, optimizer, budget + 10)
    for group, lr in enumerate(INIT):
        np.testing.assert_allclose(
            held[:5, group], [lr * linear_factor(n, 0.2, 5) for n in range(5)], rtol=1e-12
        )
        np.testing.assert_allclose(
            held[5:, group], [lr * factor(n, lr) for n in range(budget + 5)], rtol=1e-12
        )


def test_a_zero_factor_continues_alone_and_refuses_an_lr_it_cannot_carry_on():
    # WSD with infimum_lr=0 starts its warmup at 0: alone it continues on its closed form.
    optimizer = make_optimizer(tensor_lr=False)
    wsd = WarmupStableDecayLR(optimizer, total_steps=20, warmup_steps=4, decay_steps=4)
    held = held_lrs(wsd, optimizer, 25)[:, 0]
    expected = [INIT[0] * wsd_factor(n, INIT[0], 20, 4, 4, infimum=0.0) for n in range(25)]
    assert expected[0] == 0.0 and expected[-1] == 0.0
    np.testing.assert_allclose(held, expected, rtol=1e-12, atol=0)
    # A non-zero lr set after a zero factor cannot be continued by a ratio: a clear error.
    optimizer = make_optimizer(tensor_lr=False)
    wsd = WarmupStableDecayLR(optimizer, total_steps=20, warmup_steps=4, decay_steps=4)
    optimizer.param_groups[0]["lr"] = 1e-3
    optimizer.step()
    with pytest.raises(ValueError, match="previous factor was 0"):
        wsd.step()


def test_chained_with_exponential_lr_before_it():
    optimizer = make_optimizer()
    gamma = ExponentialLR(optimizer, gamma=0.9)
    ours = HyperbolicLR(optimizer, upper_bound=40, max_iter=20, infimum_lr=INFIMUM)
    held = held_lrs(ChainedScheduler([gamma, ours]), optimizer, 25)
    for group, lr in enumerate(INIT):
        expected = [lr * hyperbolic_factor(n, lr, 20, 40, 0, False) * 0.9**n for n in range(25)]
        np.testing.assert_allclose(held[:, group], expected, rtol=1e-9)


# ---------------------------------------------------------------------------- resume


@pytest.mark.parametrize("kind", ["hyperbolic", "exp_hyperbolic", "wsd"])
@pytest.mark.parametrize(
    "optimizer_first", [False, True], ids=["documented-order", "optimizer-loaded-first"]
)
def test_resume_in_either_order_matches_an_uninterrupted_run(kind, optimizer_first):
    budget = 40
    build, _ = kinds(budget)[kind]
    reference_optimizer = make_optimizer()
    expected = held_lrs(build(reference_optimizer), reference_optimizer, budget + 5)

    optimizer = make_optimizer()
    scheduler = build(optimizer)
    first = held_lrs(scheduler, optimizer, 17)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=False)

    resumed_optimizer = make_optimizer()
    if optimizer_first:
        resumed_optimizer.load_state_dict(checkpoint["optimizer"])
        resumed = build(resumed_optimizer)
    else:
        resumed = build(resumed_optimizer)
        resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    np.testing.assert_allclose(
        [float(group["lr"]) for group in resumed_optimizer.param_groups], expected[17], rtol=1e-15
    )
    second = held_lrs(resumed, resumed_optimizer, budget + 5 - 17)
    np.testing.assert_allclose(np.vstack([first, second]), expected, rtol=1e-12)


# ---------------------------------------------------------------------------- small contracts


@pytest.mark.parametrize("cls", [HyperbolicLR, ExpHyperbolicLR])
def test_a_negative_epoch_is_a_clear_value_error(cls):
    scheduler = cls(make_optimizer(), upper_bound=20, max_iter=10)
    for bad in (-1, -5, 2.5):
        with pytest.raises(ValueError, match="epoch must be None or an integer >= 0"):
            scheduler.step(bad)
    wsd = WarmupStableDecayLR(make_optimizer(), total_steps=10, warmup_steps=2, decay_steps=2)
    with pytest.raises(ValueError, match="epoch"):
        wsd.step(-1)


@pytest.mark.parametrize("cls", [HyperbolicLR, ExpHyperbolicLR])
def test_an_unknown_keyword_names_the_public_class(cls):
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.__init__\(\) got an unexpected"):
        cls(make_optimizer(), max_iters=10)


def test_repr_shows_the_settings():
    scheduler = HyperbolicLR(
        make_optimizer(), upper_bound=250, max_iter=100, infimum_lr=1e-6, warmup_epochs=5
    )
    assert repr(scheduler) == (
        "HyperbolicLR(upper_bound=250.0, max_iter=100, infimum_lr=1e-06, warmup_epochs=5, "
        "last_epoch=0)"
    )
    exp = ExpHyperbolicLR(make_optimizer(), max_iter=10, infimum_lr=[1e-6, 1e-5])
    assert "infimum_lr=[1e-06, 1e-05]" in repr(exp) and repr(exp).startswith("ExpHyperbolicLR(")
    wsd = WarmupStableDecayLR(make_optimizer(), total_steps=10, warmup_steps=2, decay_steps=3)
    assert str(wsd) == (
        "WarmupStableDecayLR(total_steps=10, warmup_steps=2, decay_steps=3, "
        "infimum_lr=0.0, last_epoch=0)"
    )


@pytest.mark.parametrize(
    "infimum",
    [torch.tensor(1e-4, dtype=torch.float64), np.float64(1e-4), np.array(1e-4), np.float32(1e-4)],
)
@pytest.mark.parametrize("cls", [HyperbolicLR, ExpHyperbolicLR])
def test_infimum_lr_as_a_0d_tensor_or_numpy_scalar(cls, infimum):
    scheduler = cls(make_optimizer(), max_iter=10, upper_bound=10, infimum_lr=infimum)
    assert scheduler.infimum_lrs == [pytest.approx(1e-4, rel=1e-6)] * 2
    with pytest.raises(ValueError, match="infimum_lr"):
        cls(make_optimizer(), infimum_lr=torch.tensor([1e-4, 1e-5]))
