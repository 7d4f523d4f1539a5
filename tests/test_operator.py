"""The operator-learning task: the random-field generator, the integral, the two models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.interpolate import CubicHermiteSpline
from torch.func import functional_call, stack_module_state, vmap

from hyperlr.lab import operator
from hyperlr.lab.data import load_dataset
from hyperlr.lab.models import DeepONet, TraONet, make_model
from hyperlr.lab.operator import (
    conditioning_error,
    gaussian_random_field,
    hermite_integral,
    integral_operator,
    operator_arrays,
    se_kernel,
)
from hyperlr.lab.train import RunConfig, train_run

GRID = np.linspace(0.0, 1.0, 1000)
QUERIES = np.linspace(0.0, 1.0, 100)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Each test generates into its own cache folder, never the user's.
    monkeypatch.setenv("HYPERLR_DATA_DIR", str(tmp_path / "data"))
    operator._cached_arrays.cache_clear()
    yield
    operator._cached_arrays.cache_clear()


def test_sample_covariance_matches_the_kernel_within_sampling_error():
    n = 4000
    grid, u, scales = gaussian_random_field(n, n_grid=40, length_scale=(0.15, 0.15), seed=3)
    kernel = se_kernel(grid, grid, np.array([0.15]))[0]
    sample = u.T @ u / n  # the field has mean zero
    # Var of the product of two unit Gaussians with correlation k is 1 + k^2.
    standard_error = np.sqrt((1 + kernel**2) / n)
    assert np.abs(sample - kernel).max() < 5 * standard_error.max()
    assert np.abs(u.mean(axis=0)).max() < 5 / np.sqrt(n)
    assert np.all(scales == 0.15)


def test_length_scales_are_uniform_and_conditioning_is_exact_to_the_jitter():
    _, _, scales = gaussian_random_field(2000, n_grid=20, seed=1)
    assert 0.1 <= scales.min() and scales.max() <= 0.4
    assert abs(scales.mean() - 0.25) < 0.01
    # The covariance lost by sampling on 64 points and conditioning to 1000 is of the order of
    # the jitter (1e-10) even at the shortest length scale.
    assert conditioning_error(0.1) < 1e-9
    assert conditioning_error(0.1, coarse_points=16) > 1e-4  # too coarse a grid is detected


@pytest.mark.parametrize(
    ("u", "integral", "tolerance"),
    [
        (lambda x: 3 * x**2 - 2 * x + 0.5, lambda y: y**3 - y**2 + 0.5 * y, 1e-13),
        (
            lambda x: np.sin(2 * np.pi * x),
            lambda y: (1 - np.cos(2 * np.pi * y)) / (2 * np.pi),
            1e-10,
        ),
        (lambda x: np.cos(7 * x), lambda y: np.sin(7 * y) / 7, 1e-10),
        # A cubic: central-difference slopes err by h^2 u'''/6, the integral by O(h^4).
        (lambda x: x**3, lambda y: y**4 / 4, 1e-11),
    ],
)
def test_integral_against_exact_integrals(u, integral, tolerance):
    values = np.stack([u(GRID), 2 * u(GRID)])
    got = hermite_integral(values, GRID, QUERIES)
    assert np.abs(got[0] - integral(QUERIES)).max() < tolerance
    np.testing.assert_allclose(got[1], 2 * got[0], rtol=1e-12, atol=1e-15)


def test_integral_equals_scipys_hermite_antiderivative():
    rng = np.random.default_rng(0)
    u = rng.standard_normal(1000).cumsum() / 30
    slopes = np.gradient(u, GRID[1] - GRID[0], edge_order=2)
    expected = CubicHermiteSpline(GRID, u, slopes).antiderivative()(QUERIES)
    np.testing.assert_allclose(hermite_integral(u, GRID, QUERIES), expected, atol=1e-12)


def test_data_set_is_the_normalised_field_its_integral_and_an_80_20_split():
    data = integral_operator(n_functions=300, seed=5)
    assert (data.n_train, data.n_val, data.n_sensors) == (240, 60, 100)
    assert len(data.query_points) == 100 and data.name == "integral"
    grid, u, _ = gaussian_random_field(300, seed=5)
    maxima, minima = u.max(axis=1), u.min(axis=1)
    s_plus, s_minus = maxima.mean() + maxima.std(), minima.mean() - minima.std()
    normalised = 2 * (u - s_minus) / (s_plus - s_minus) - 1
    arrays = operator_arrays(n_functions=300, seed=5)
    np.testing.assert_allclose(arrays["sensors"], normalised[:, ::10], atol=1e-6)
    np.testing.assert_allclose(
        arrays["targets"], hermite_integral(normalised, grid, QUERIES), atol=1e-6
    )
    # Every function lands on exactly one side of the split.
    rows = {tuple(row) for row in torch.cat([data.x_train, data.x_val]).numpy().round(5)}
    assert len(rows) == 300
    subset = integral_operator(n_functions=300, seed=5, train_subset=50, val_subset=20)
    assert (subset.n_train, subset.n_val) == (50, 20)
    assert {tuple(r) for r in subset.x_train.numpy().round(5)} <= {
        tuple(r) for r in data.x_train.numpy().round(5)
    }


def test_generation_is_seeded_and_cached(tmp_path):
    first = operator_arrays(n_functions=50, seed=1)
    assert operator_arrays(n_functions=50, seed=1) is first  # in memory
    assert len(list((tmp_path / "data" / "operator").glob("*.npz"))) == 1
    operator._cached_arrays.cache_clear()
    again = operator_arrays(n_functions=50, seed=1)  # from the cache folder
    assert again is not first
    np.testing.assert_array_equal(again["targets"], first["targets"])
    other = operator_arrays(n_functions=50, seed=2)
    assert not np.allclose(other["sensors"], first["sensors"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_functions": 0}, "n_functions must be an integer >= 2"),
        ({"n_functions": 10.5}, "n_functions must be an integer"),
        ({"length_scale": (0.4, 0.1)}, "length_scale must satisfy"),
        ({"length_scale": 0.2}, "length_scale must be a pair"),
        ({"sensor_stride": 1000}, "sensor_stride must be < n_grid"),
        ({"val_fraction": 1.5}, "val_fraction must be a number in"),
        ({"train_subset": 10_000}, "train_subset must be None or an integer in"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_invalid_arguments_fail_before_generating(settings, message, monkeypatch):
    def no_generation(**kwargs):
        raise AssertionError("generated despite invalid arguments")

    monkeypatch.setattr(operator, "_generate", no_generation)
    settings = {"n_functions": 100, **settings}
    with pytest.raises(ValueError, match=message):
        integral_operator(**settings)


def test_parameter_counts_at_the_papers_defaults():
    assert sum(p.numel() for p in DeepONet().parameters()) == 8_604_773
    assert sum(p.numel() for p in TraONet().parameters()) == 1_389_185


TINY_OPTIONS = {
    "deeponet": {"width": 16, "depth": 2, "basis": 8},
    "traonet": {"d_model": 8, "n_heads": 2, "d_ff": 16, "n_layers": 1},
}


# CPU attention has no vmap batching rule yet: torch loops over the models, correctly but slowly.
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
@pytest.mark.parametrize("name", ["deeponet", "traonet"])
def test_models_run_under_vmap_over_stacked_parameters(name):
    data = integral_operator(n_functions=40, seed=0)
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(make_model(name, data, **TINY_OPTIONS[name]).eval())
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return functional_call(template, (p, b), (x,))

    x = data.x_val[:5]
    grouped = vmap(forward, in_dims=(0, 0, None))(params, buffers, x)
    assert grouped.shape == (3, 5, 100)
    for i, model in enumerate(models):
        torch.testing.assert_close(grouped[i], model(x), atol=1e-5, rtol=1e-5)


def test_models_reject_unknown_or_invalid_options():
    data = integral_operator(n_functions=20, seed=0)
    with pytest.raises(ValueError, match="does not take channels"):
        make_model("traonet", data, channels=3)
    with pytest.raises(ValueError, match="must be a multiple of n_heads"):
        make_model("traonet", data, d_model=9, n_heads=2)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        make_model("deeponet", data, width=0)


@pytest.mark.parametrize("name", ["deeponet", "traonet"])
def test_train_run_on_the_operator_task(name):
    config = RunConfig(
        dataset="integral",
        scheduler="EH",
        epochs=2,
        model=name,
        model_options=TINY_OPTIONS[name],
        data_options={"n_functions": 80},
        batch_size=16,
        device="cpu",
    )
    result = train_run(config, progress=False)
    assert set(result.history) == {
        "epoch",
        "train_loss",
        "val_loss",
        "val_mae",
        "lr",
        "epoch_time_s",
    }
    assert all(np.isfinite(result.history["val_loss"]))
    # The loss is the MSE: it cannot be below the squared mean absolute error.
    assert all(
        loss >= mae**2
        for loss, mae in zip(result.history["val_loss"], result.history["val_mae"], strict=True)
    )
    assert RunConfig(dataset="integral", scheduler="N", epochs=1).model == "deeponet"


def test_load_dataset_passes_generator_options_and_rejects_unknown_ones():
    data = load_dataset("integral", n_functions=40, train_subset=10)
    assert data.n_train == 10 and data.n_val == 8
    with pytest.raises(ValueError, match="does not take zeta"):
        load_dataset("integral", zeta=0.1)


def test_the_protocol_accepts_the_operator_task(tmp_path):
    from hyperlr.lab.tune import protocol

    result = protocol(
        ["H"],
        tune_budget=1,
        n_trials=1,
        tune_seeds=[0],
        budgets=[1, 2],
        seeds=[0],
        results_dir=tmp_path / "runs",
        dataset="integral",
        model="deeponet",
        model_options=TINY_OPTIONS["deeponet"],
        data_options={"n_functions": 40},
        batch_size=16,
        device="cpu",
    )
    assert len(result.runs) == 2
    assert all(r.dataset == "integral" for r in result.runs)


def test_a_damaged_cache_file_is_regenerated(tmp_path):
    first = operator_arrays(n_functions=30, seed=4)
    (path,) = (tmp_path / "data" / "operator").glob("*.npz")
    path.write_bytes(b"not a zip file")
    operator._cached_arrays.cache_clear()
    again = operator_arrays(n_functions=30, seed=4)
    np.testing.assert_array_equal(again["sensors"], first["sensors"])
