"""The registry: every code builds, uses the paper's defaults, and rejects bad input clearly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_schedulers

from hyperlr import (
    SCHEDULER_CODES,
    ExpHyperbolicLR,
    HyperbolicLR,
    WarmupStableDecayLR,
    is_per_batch,
    make_scheduler,
)

PAPER_CODES = ["N", "P", "C", "E", "L", "S", "OC", "CY", "H", "EH", "WH", "WEH", "WC"]


def optimizer_with_two_groups():
    return torch.optim.AdamW(
        [
            {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 1e-2},
            {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 1e-3},
        ]
    )


def held_lrs(code, epochs, steps_per_epoch=1, **overrides):
    optimizer = optimizer_with_two_groups()
    scheduler = make_scheduler(code, optimizer, epochs, steps_per_epoch, **overrides)
    steps = epochs * steps_per_epoch if is_per_batch(code) else epochs
    held = []
    for _ in range(steps):
        held.append([float(group["lr"]) for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return scheduler, np.array(held)


def test_every_paper_code_and_wsd_is_registered_with_a_description():
    assert list(SCHEDULER_CODES) == PAPER_CODES + ["WSD"]
    assert all(isinstance(text, str) and text for text in SCHEDULER_CODES.values())


@pytest.mark.parametrize("code", list(SCHEDULER_CODES))
@pytest.mark.parametrize("epochs", [2, 10, 200])
def test_every_code_builds_and_gives_finite_per_group_rates(code, epochs):
    scheduler, held = held_lrs(code, epochs, steps_per_epoch=4)
    assert isinstance(scheduler, torch_schedulers.LRScheduler)
    assert np.all(np.isfinite(held)) and np.all(held >= 0)
    # Each group keeps its own scale: group 1 started 10x lower and stays 10x lower (schedules
    # with an absolute floor such as eta_min or an infimum are compared away from the floor).
    ratio = held[:, 0] / held[:, 1]
    assert ratio[0] == pytest.approx(10.0, rel=1e-6) or code in {"WH", "WEH", "WSD"}


def test_only_one_cycle_and_cyclic_step_per_batch():
    assert {code for code in SCHEDULER_CODES if is_per_batch(code)} == {"OC", "CY"}
    _, held = held_lrs("OC", epochs=5, steps_per_epoch=10)
    assert len(held) == 50 and held[:, 0].max() == pytest.approx(1e-2, rel=1e-3)


def test_paper_defaults():
    optimizer = optimizer_with_two_groups()
    polynomial = make_scheduler("P", optimizer, 100)
    assert (polynomial.total_iters, polynomial.power) == (100, 0.5)
    cosine = make_scheduler("C", optimizer_with_two_groups(), 150)
    assert (cosine.T_max, cosine.eta_min) == (150, 1e-6)
    assert make_scheduler("E", optimizer_with_two_groups(), 50).gamma == 0.96
    hyper = make_scheduler("H", optimizer_with_two_groups(), 200)
    assert isinstance(hyper, HyperbolicLR)
    assert (hyper.max_iter, hyper.upper_bound, hyper.infimum_lrs) == (200, 250, [1e-6, 1e-6])
    exp_hyper = make_scheduler("WEH", optimizer_with_two_groups(), 100)
    assert isinstance(exp_hyper, ExpHyperbolicLR) and exp_hyper.warmup_epochs == 10
    assert isinstance(make_scheduler("WSD", optimizer_with_two_groups(), 100), WarmupStableDecayLR)


def test_overrides_reach_the_scheduler():
    scheduler = make_scheduler("H", optimizer_with_two_groups(), 100, upper_bound=400)
    assert scheduler.upper_bound == 400
    _, held = held_lrs("P", 10, power=2.0)
    assert held[5, 0] == pytest.approx(1e-2 * (1 - 5 / 10) ** 2)


def test_hyperbolic_codes_follow_the_closed_form():
    _, held = held_lrs("EH", 100)
    h = lambda n: math.sqrt((100 - n) * (500 - 100 - n)) / 250  # noqa: E731
    assert held[37, 1] == pytest.approx(1e-3 * (1e-3 / 1e-6) ** (h(37) - h(0)), rel=1e-12)


def test_warmup_cosine_is_a_warmup_then_cosine():
    _, held = held_lrs("WC", 20)
    assert held[0, 0] == pytest.approx(1e-4)
    assert held[2, 0] == pytest.approx(1e-2)
    expected = 1e-6 + (1e-2 - 1e-6) * (1 + math.cos(math.pi * 9 / 18)) / 2
    assert held[11, 0] == pytest.approx(expected, rel=1e-9)


def test_wsd_warms_up_holds_and_decays_to_the_infimum():
    _, held = held_lrs("WSD", 20)
    lr = held[:, 0]
    assert lr[0] == pytest.approx(1e-6)
    np.testing.assert_allclose(lr[2:16], 1e-2)
    assert np.all(np.diff(lr[16:]) < 0)
    optimizer = optimizer_with_two_groups()
    scheduler = make_scheduler("WSD", optimizer, 20)
    for _ in range(25):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-6)


def test_unknown_code_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown scheduler code 'X'.*N, P, C"):
        make_scheduler("X", optimizer_with_two_groups(), 10)
    with pytest.raises(ValueError, match="unknown scheduler code"):
        is_per_batch("cosine")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(code="H", epochs=0), "epochs"),
        (dict(code="H", epochs=2.0), "epochs"),
        (dict(code="H", epochs=10, steps_per_epoch=0), "steps_per_epoch"),
        (dict(code="H", epochs=300), "upper_bound"),
        (dict(code="C", epochs=10, power=2), r"does not take the override\(s\) power"),
        (dict(code="N", epochs=10, gamma=0.5), "accepted: none"),
        (dict(code="WC", epochs=1), "epochs must be >= 2 for WC"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, message):
    code = kwargs.pop("code")
    epochs = kwargs.pop("epochs")
    with pytest.raises(ValueError, match=message):
        make_scheduler(code, optimizer_with_two_groups(), epochs, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(total_steps=0, warmup_steps=0, decay_steps=1), "total_steps"),
        (dict(total_steps=10, warmup_steps=-1, decay_steps=1), "warmup_steps"),
        (dict(total_steps=10, warmup_steps=1, decay_steps=0), "decay_steps"),
        (dict(total_steps=10, warmup_steps=5, decay_steps=6), "warmup_steps \\+ decay_steps"),
        (dict(total_steps=10, warmup_steps=1, decay_steps=2, infimum_lr=1.0), "infimum_lr"),
    ],
)
def test_wsd_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        WarmupStableDecayLR(optimizer_with_two_groups(), **kwargs)
