"""The oscillator integrator against exact solutions, and the windowing of series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import find_peaks

from hyperlr.lab.series import (
    damped_oscillator,
    oscillator_windows,
    sunspots,
    sunspots_windows,
    window_dataset,
)


def test_paper_defaults_shape_and_initial_state():
    series = damped_oscillator(0.0)
    assert list(series.columns) == ["t", "x", "v", "a"]
    assert len(series) == 10_001
    assert series.iloc[0].tolist() == [0.0, 0.1, 0.0, -20.0]
    assert series["t"].iloc[-1] == pytest.approx(10.0)


def test_every_sample_satisfies_the_equation_of_motion():
    zeta, k, m = 0.02, 200.0, 1.0
    series = damped_oscillator(zeta)
    c = 2 * zeta * math.sqrt(k * m)
    residual = m * series["a"] + c * series["v"] + k * series["x"]
    assert np.abs(residual).max() < 1e-12


def test_undamped_amplitude_and_period_match_the_exact_solution():
    series = damped_oscillator(0.0)
    t, x, v = (series[name].to_numpy() for name in "txv")
    omega = math.sqrt(200.0)
    # The average-acceleration scheme conserves energy exactly: the amplitude never changes.
    energy = 0.5 * v**2 + 0.5 * 200.0 * x**2
    assert np.ptp(energy) < 1e-12 * energy[0]
    # Period from the maxima over 10 s (about 22 periods), against 2*pi/omega; the scheme's
    # period elongation is (omega*dt)^2/12, about 1.7e-5.
    peaks, _ = find_peaks(x)
    measured = np.mean(np.diff(t[peaks]))
    assert measured == pytest.approx(2 * math.pi / omega, rel=1e-3)
    assert np.abs(x - 0.1 * np.cos(omega * t)).max() < 5e-4  # phase drift only


def test_damped_decay_rate_matches_zeta_omega():
    zeta = 0.02
    series = damped_oscillator(zeta)
    t, x = series["t"].to_numpy(), series["x"].to_numpy()
    peaks, _ = find_peaks(x)
    slope = np.polyfit(t[peaks], np.log(x[peaks]), 1)[0]
    assert slope == pytest.approx(-zeta * math.sqrt(200.0), rel=1e-2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(zeta=-0.1), "zeta"),
        (dict(zeta=0.0, dt=0.0), "dt"),
        (dict(zeta=0.0, m=-1.0), "m"),
        (dict(zeta=float("nan")), "zeta"),
        (dict(zeta=0.0, t_max=float("inf")), "t_max"),
    ],
)
def test_bad_oscillator_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        damped_oscillator(**kwargs)


def test_windows_follow_the_series_and_split_80_20():
    values = np.arange(200, dtype=float)
    data = window_dataset(values, name="ramp", source="test", history=5, horizon=3, seed=1)
    total = 200 - 8 + 1
    assert len(data.x_train) + len(data.x_val) == total
    assert len(data.x_val) == round(0.2 * total)
    assert data.x_train.shape[1:] == (5, 1) and data.y_train.shape[1:] == (3, 1)
    # Each target continues its own history: a ramp stays a ramp across the cut.
    window = np.concatenate([data.x_train[7, :, 0].numpy(), data.y_train[7, :, 0].numpy()])
    np.testing.assert_allclose(np.diff(window), 1 / 199, rtol=1e-5)
    restored = data.denormalise(data.x_val).numpy()
    assert restored.min() >= 0 and restored.max() <= 199


def test_split_is_seeded():
    values = np.sin(np.linspace(0, 20, 300))
    first = window_dataset(values, name="s", source="t", history=10, horizon=5, seed=3)
    again = window_dataset(values, name="s", source="t", history=10, horizon=5, seed=3)
    other = window_dataset(values, name="s", source="t", history=10, horizon=5, seed=4)
    assert first.x_val.equal(again.x_val)
    assert not first.x_val.equal(other.x_val)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(history=0, horizon=5), "history"),
        (dict(history=5, horizon=0), "horizon"),
        (dict(history=200, horizon=5), "history \\+ horizon"),
        (dict(history=5, horizon=5, val_fraction=1.0), "val_fraction"),
        (dict(history=5, horizon=5, stride=0), "stride"),
    ],
)
def test_bad_window_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        window_dataset(np.arange(100.0), name="x", source="t", **kwargs)


def test_subsets_come_from_their_own_side_of_the_split():
    values = np.arange(300, dtype=float)
    full = window_dataset(values, name="r", source="t", history=4, horizon=2, seed=2)
    small = window_dataset(
        values, name="r", source="t", history=4, horizon=2, seed=2, train_subset=50, val_subset=9
    )
    assert small.n_train == 50 and small.n_val == 9
    train_starts = {float(w[0, 0]) for w in full.x_train}
    assert {float(w[0, 0]) for w in small.x_train} <= train_starts
    assert not {float(w[0, 0]) for w in small.x_val} & train_starts
    with pytest.raises(ValueError, match="train_subset"):
        window_dataset(values, name="r", source="t", history=4, horizon=2, train_subset=10**6)


def test_paper_oscillator_windows():
    data = oscillator_windows()
    assert len(data.x_train) + len(data.x_val) == 10_001 - 100 + 1
    assert data.x_train.shape[1:] == (50, 1) and data.y_val.shape[1:] == (50, 1)
    assert float(data.x_train.min()) >= 0 and float(data.x_train.max()) <= 1


def test_sunspots_are_the_real_yearly_series():
    series = sunspots()
    assert series.index[0] == 1700 and series.index[-1] == 2008
    assert series.max() == pytest.approx(190.2)
    data = sunspots_windows()
    assert data.x_train.shape[1:] == (24, 1) and data.y_train.shape[1:] == (12, 1)
