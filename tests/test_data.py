"""Tests of hyperlr.lab.data: loaders, subsets, missing-data errors and the batch augmentation."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperlr.lab import data as hdata
from hyperlr.lab.data import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    cifar10,
    digits,
    fashion_mnist,
    load_dataset,
    locate_fashion_mnist,
    random_crop_flip,
)


@pytest.fixture(scope="module")
def full_digits():
    return digits()


def test_digits_shapes_and_normalisation(full_digits):
    d = full_digits
    assert d.name == "digits" and "load_digits" in d.source
    assert d.n_train + d.n_val == 1797
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_val.shape[1:] == (1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.in_channels == 1 and d.image_size == (8, 8) and d.num_classes == 10
    assert abs(d.x_train.mean().item()) < 1e-5
    assert d.x_train.std().item() == pytest.approx(1.0, abs=1e-4)
    # Stratified: every class is in the validation set in about its share.
    counts = torch.bincount(d.y_val, minlength=10)
    assert counts.min() >= 30


def test_digits_split_is_seeded(full_digits):
    again = digits()
    assert torch.equal(again.x_train, full_digits.x_train)
    assert torch.equal(again.y_val, full_digits.y_val)
    other = digits(seed=1)
    assert not torch.equal(other.y_train, full_digits.y_train)


def test_subsets_are_seeded_subsets(full_digits):
    a = digits(train_subset=100, val_subset=40)
    b = digits(train_subset=100, val_subset=40)
    assert (a.n_train, a.n_val) == (100, 40)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    # Each subset image is one of the full split's images.
    full = full_digits.x_train.flatten(1)
    matches = (a.x_train.flatten(1)[:, None, :] == full[None]).all(-1).any(-1)
    assert matches.all()
    # The validation subset does not depend on the training subset.
    assert torch.equal(digits(val_subset=40).y_val, a.y_val)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"train_subset": 0}, "train_subset"),
        ({"train_subset": 10_000}, "train_subset"),
        ({"val_subset": True}, "val_subset"),
        ({"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_bad_digits_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        digits(**kwargs)


def test_image_data_to_same_device_is_identity(full_digits):
    assert full_digits.to("cpu") is full_digits
    expected = -torch.tensor(full_digits.mean) / torch.tensor(full_digits.std)
    assert torch.allclose(full_digits.pad_value, expected)


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as stream:
            stream.write(payload)
    else:
        path.write_bytes(payload)


def _fake_fashion_mnist(folder: Path, compress: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (30, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 30),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 12),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        _write_idx(folder / name, array, compress)
    return arrays


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Point the Debian folder and HYPERLR_DATA_DIR at empty places."""
    monkeypatch.setattr(hdata, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("HYPERLR_DATA_DIR", str(tmp_path / "no-data"))


@pytest.mark.parametrize(
    ("layout", "compress"),
    [(".", True), ("FashionMNIST/raw", False), ("usr/share/datasets/fashion-mnist", True)],
)
def test_fashion_mnist_from_idx_files(tmp_path, no_system_data, layout, compress):
    arrays = _fake_fashion_mnist(tmp_path / "fm" / layout, compress)
    data = fashion_mnist(tmp_path / "fm", download=False)
    assert data.name == "fashion_mnist" and str(tmp_path / "fm") in data.source
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_val.shape == (12, 1, 28, 28)
    expected = (arrays["train-images-idx3-ubyte"] / 255.0 - FASHION_MNIST_MEAN[0]) / (
        FASHION_MNIST_STD[0]
    )
    assert np.allclose(data.x_train[:, 0].numpy(), expected, atol=1e-6)
    assert data.y_val.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    sub = fashion_mnist(tmp_path / "fm", download=False, train_subset=7, val_subset=5)
    assert (sub.n_train, sub.n_val) == (7, 5)


def test_fashion_mnist_from_environment(tmp_path, monkeypatch, no_system_data):
    _fake_fashion_mnist(tmp_path / "env", compress=True)
    monkeypatch.setenv("HYPERLR_DATA_DIR", str(tmp_path / "env"))
    assert fashion_mnist(download=False).n_train == 30


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, no_system_data):
    with pytest.raises(FileNotFoundError) as error:
        fashion_mnist(tmp_path / "empty", download=False)
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "HYPERLR_DATA_DIR" in message and str(tmp_path / "empty") in message


def test_corrupt_idx_file_is_refused(tmp_path, no_system_data):
    _fake_fashion_mnist(tmp_path / "fm", compress=False)
    path = tmp_path / "fm" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="header declares"):
        fashion_mnist(tmp_path / "fm", download=False)


def test_real_fashion_mnist_when_installed():
    try:
        files = locate_fashion_mnist()
    except FileNotFoundError:
        pytest.skip(
            "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or its idx "
            "files in HYPERLR_DATA_DIR); the fake-file tests above cover the reader"
        )
    data = fashion_mnist(download=False, train_subset=50, val_subset=20)
    assert str(files["train_images"].parent) in data.source
    assert data.x_train.shape == (50, 1, 28, 28) and data.num_classes == 10


def test_missing_cifar10_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="HYPERLR_DATA_DIR"):
        cifar10(tmp_path, download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="digits, fashion_mnist, cifar10"):
        load_dataset("mnist")


def _windows(image: torch.Tensor, padding: int, fill: torch.Tensor) -> list[torch.Tensor]:
    """Every crop of the padded image and its mirror image (slow reference)."""
    c, h, w = image.shape
    padded = fill.view(c, 1, 1).expand(c, h + 2 * padding, w + 2 * padding).clone()
    padded[:, padding : padding + h, padding : padding + w] = image
    crops = [
        padded[:, top : top + h, left : left + w]
        for top in range(2 * padding + 1)
        for left in range(2 * padding + 1)
    ]
    return crops + [crop.flip(-1) for crop in crops]


def test_random_crop_flip_matches_a_crop_and_flip():
    images = torch.randn(16, 3, 6, 5)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=2, fill=fill)
    assert out.shape == images.shape and out.dtype == images.dtype
    for image, augmented in zip(images, out, strict=True):
        assert any(torch.equal(augmented, w) for w in _windows(image, 2, fill))


def test_random_crop_flip_is_seeded_and_varied():
    images = torch.randn(64, 1, 8, 8)
    a = random_crop_flip(images, torch.Generator().manual_seed(3))
    b = random_crop_flip(images, torch.Generator().manual_seed(3))
    c = random_crop_flip(images, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Without padding only the flip remains: about half the images are mirrored.
    flipped = random_crop_flip(images, torch.Generator().manual_seed(0), padding=0)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(1)
    unchanged = (flipped == images).flatten(1).all(1)
    assert (mirrored | unchanged).all()
    assert 16 <= int(mirrored.sum()) <= 48


def test_random_crop_flip_rejects_negative_padding():
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(torch.zeros(1, 1, 4, 4), torch.Generator(), padding=-1)


def test_chapter_subsets_follow_the_data_set_unless_given():
    from hyperlr.lab.data import CHAPTER_SUBSETS, DATASETS, chapter_subsets

    assert set(CHAPTER_SUBSETS) == set(DATASETS)
    assert chapter_subsets("fashion_mnist") == (6000, 2000)  # the committed runs' subsets
    assert chapter_subsets("digits") == (None, None)
    assert chapter_subsets("oscillator", "all", 64) == (None, 64)
    assert chapter_subsets("digits", 6000) == (6000, None)  # kept: the run names it if too big
    with pytest.raises(ValueError, match="dataset must be one of"):
        chapter_subsets("mnist")
    for bad in (0, 2.5, True, "half"):
        with pytest.raises(ValueError, match="train_subset must be None"):
            chapter_subsets("digits", bad)
