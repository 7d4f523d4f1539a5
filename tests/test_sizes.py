"""The data sets' sizes from their settings alone agree with the loaders' real splits."""

from __future__ import annotations

import numpy as np
import pytest

from hyperlr.lab import operator
from hyperlr.lab.data import DATASETS, load_dataset, locate_fashion_mnist
from hyperlr.lab.models import make_model
from hyperlr.lab.sizes import IMAGE_SPLITS, data_shape

MODEL_OF_TASK = {
    "digits": ("simple_cnn", {"channels": 4, "hidden": 8}),
    "fashion_mnist": ("simple_cnn", {"channels": 4, "hidden": 8}),
    "cifar10": ("simple_cnn", {"channels": 4, "hidden": 8}),
    "oscillator": ("lstm_seq2seq", {"hidden_size": 8, "num_layers": 1}),
    "sunspots": ("lstm_seq2seq", {"hidden_size": 8, "num_layers": 1}),
    "integral": ("deeponet", {"width": 8, "depth": 2, "basis": 4}),
}


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    # The operator task is generated into a folder of its own, never the user's cache.
    monkeypatch.setenv("HYPERLR_DATA_DIR", str(tmp_path / "data"))
    operator._cached_arrays.cache_clear()
    yield
    operator._cached_arrays.cache_clear()


def _parameters(network) -> int:
    return sum(p.numel() for p in network.parameters())


def _agrees(name: str, **settings) -> None:
    """``data_shape`` gives the loader's counts and shapes, and sizes the model alike."""
    data = load_dataset(name, **settings)
    shape = data_shape(name, **settings)
    assert (shape.n_train, shape.n_val) == (data.n_train, data.n_val)
    for attribute in ("in_channels", "image_size", "num_classes", "n_features", "horizon"):
        if hasattr(data, attribute):
            assert getattr(shape, attribute) == getattr(data, attribute), attribute
    if hasattr(data, "n_sensors"):
        assert shape.n_sensors == data.n_sensors
        np.testing.assert_allclose(shape.query_points, data.query_points, rtol=0, atol=1e-15)
    model, options = MODEL_OF_TASK[name]
    expected = _parameters(make_model(model, data, **options))
    assert _parameters(make_model(model, shape, **options)) == expected


@pytest.mark.usefixtures("private_cache")
def test_every_data_set_has_a_size_rule():
    assert set(MODEL_OF_TASK) == set(DATASETS)
    for name in DATASETS:
        shape = data_shape(name)
        assert shape.name == name and shape.n_train > shape.n_val >= 1


@pytest.mark.parametrize(
    "settings",
    [{}, {"val_fraction": 0.3, "seed": 4}, {"train_subset": 100, "val_subset": 50}],
)
def test_digits(settings):
    _agrees("digits", **settings)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"history": 20, "horizon": 7, "stride": 3, "zeta": 0.01},
        {"stride": 11, "train_subset": 300, "val_subset": 100},
    ],
)
def test_oscillator(settings):
    _agrees("oscillator", **settings)


@pytest.mark.parametrize("settings", [{}, {"history": 10, "horizon": 5, "stride": 2}])
def test_sunspots(settings):
    pytest.importorskip("statsmodels", reason="the sunspots ship with statsmodels (book extra)")
    _agrees("sunspots", **settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"n_functions": 60, "n_grid": 200, "sensor_stride": 7, "n_queries": 13},
        {"n_functions": 41, "n_grid": 50, "val_fraction": 0.35, "train_subset": 20},
    ],
)
@pytest.mark.usefixtures("private_cache")
def test_integral(settings):
    _agrees("integral", **settings)


def test_the_integral_defaults_are_the_papers():
    shape = data_shape("integral")
    assert (shape.n_train, shape.n_val, shape.n_sensors) == (8000, 2000, 100)
    np.testing.assert_allclose(shape.query_points, np.linspace(0, 1, 100))


def test_fashion_mnist_when_installed():
    try:
        locate_fashion_mnist()
    except FileNotFoundError:
        pytest.skip(
            "Fashion-MNIST is not installed here (apt-get install dataset-fashion-mnist, or "
            "HYPERLR_DATA_DIR), so its split table cannot be compared with the files"
        )
    _agrees("fashion_mnist", download=False)
    _agrees("fashion_mnist", download=False, train_subset=6000, val_subset=2000)


def test_cifar10_when_present():
    from hyperlr.lab.data import data_dir

    if not (data_dir() / "cifar-10-batches-py").is_dir():
        pytest.skip(f"CIFAR-10 is not in {data_dir()}, so its split table cannot be compared")
    _agrees("cifar10", download=False)


def test_the_image_tables_state_the_published_splits():
    # The data sets' own papers: Fashion-MNIST 60,000 + 10,000, CIFAR-10 50,000 + 10,000.
    assert (IMAGE_SPLITS["fashion_mnist"].n_train, IMAGE_SPLITS["fashion_mnist"].n_val) == (
        60_000,
        10_000,
    )
    assert (IMAGE_SPLITS["cifar10"].n_train, IMAGE_SPLITS["cifar10"].n_val) == (50_000, 10_000)


@pytest.mark.parametrize(
    "name, settings, message",
    [
        ("imagenet", {}, "unknown dataset 'imagenet'"),
        ("oscillator", {"zeta": 0.0, "sigma": 1}, "does not take sigma"),
        ("digits", {"train_subset": 2000}, "train_subset must be None or an integer in"),
        ("fashion_mnist", {"val_subset": 10_001}, r"val_subset .* \[1, 10000\]"),
        ("sunspots", {"history": 300, "horizon": 20}, "must be shorter than the series"),
        ("integral", {"n_functions": 1}, "n_functions must be an integer >= 2"),
        ("digits", {"val_fraction": 1.5}, "val_fraction must be in"),
    ],
)
def test_bad_settings_are_refused_as_the_loaders_refuse_them(name, settings, message):
    with pytest.raises(ValueError, match=message):
        data_shape(name, **settings)


@pytest.mark.usefixtures("private_cache")
def test_a_runs_data_shape_is_that_of_its_loaded_data():
    from hyperlr.lab.sizes import run_data_shape
    from hyperlr.lab.train import RunConfig, load_data

    config = RunConfig(
        dataset="integral",
        scheduler="N",
        epochs=1,
        model="deeponet",
        train_subset=30,
        val_subset=10,
        data_options={"n_functions": 50, "n_grid": 100, "sensor_stride": 3, "n_queries": 9},
    )
    shape, data = run_data_shape(config), load_data(config)
    assert (shape.n_train, shape.n_val, shape.n_sensors) == (30, 10, data.n_sensors) == (30, 10, 34)
