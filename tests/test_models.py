"""Tests of hyperlr.models: the paper's parameter count and shapes for every data set."""

from __future__ import annotations

import pytest
import torch

from hyperlr.models import SimpleCNN, make_model


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_cifar10_shape_has_the_papers_parameter_count():
    model = SimpleCNN()
    assert n_parameters(model) == 1_352_970
    assert model.classifier[1].in_features == 2048
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    ("channels", "size", "features", "parameters"),
    [(1, 28, 128 * 3 * 3, 891_914), (1, 8, 128, 367_626), (1, 4, 128, 367_626)],
)
def test_adapts_to_small_greyscale_images(channels, size, features, parameters):
    model = SimpleCNN(in_channels=channels, image_size=size)
    assert model.classifier[1].in_features == features
    assert n_parameters(model) == parameters
    assert model(torch.zeros(5, channels, size, size)).shape == (5, 10)


def test_rectangular_images_and_class_count():
    model = SimpleCNN(in_channels=2, num_classes=4, image_size=(16, 24))
    assert model(torch.zeros(3, 2, 16, 24)).shape == (3, 4)


def test_wrong_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match="built for 8x8"):
        SimpleCNN(1, image_size=8)(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="image_size"):
        SimpleCNN(image_size=0)


def test_make_model():
    model = make_model("simple_cnn", in_channels=1, num_classes=10, image_size=(8, 8))
    assert isinstance(model, SimpleCNN)
    with pytest.raises(ValueError, match="simple_cnn"):
        make_model("resnet", in_channels=1, num_classes=10, image_size=8)
