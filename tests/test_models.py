"""Tests of hyperlr.lab.models: the paper's parameter count and shapes for every data set."""

from __future__ import annotations

import pytest
import torch

from hyperlr.lab.data import digits
from hyperlr.lab.models import LSTMSeq2Seq, SimpleCNN, make_model
from hyperlr.lab.series import oscillator_windows


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


def test_make_model_sizes_the_model_from_the_data():
    images = digits()
    model = make_model("simple_cnn", images)
    assert isinstance(model, SimpleCNN) and model.image_size == (8, 8)
    narrow = make_model("simple_cnn", images, channels=16)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="simple_cnn"):
        make_model("resnet", images)
    with pytest.raises(ValueError, match=r"model_options: .* does not take width"):
        make_model("simple_cnn", images, width=3)


def test_lstm_seq2seq_has_the_papers_parameter_count_and_shapes():
    model = LSTMSeq2Seq(input_size=1, hidden_size=128, num_layers=3, horizon=50)
    assert sum(p.numel() for p in model.parameters()) == 662_657
    assert model(torch.zeros(4, 50, 1)).shape == (4, 50, 1)
    series = oscillator_windows(train_subset=8, val_subset=4)
    small = make_model("lstm_seq2seq", series, hidden_size=8, num_layers=1)
    assert small(series.x_val).shape == series.y_val.shape
    with pytest.raises(ValueError, match="hidden_size"):
        LSTMSeq2Seq(hidden_size=0)


def test_lstm_decodes_autoregressively():
    # Each predicted step depends only on the history and the earlier predictions: changing the
    # history changes every step, and the first step does not see the future targets at all.
    torch.manual_seed(0)
    model = LSTMSeq2Seq(hidden_size=8, num_layers=2, horizon=5)
    history = torch.rand(2, 10, 1)
    out = model(history)
    assert not torch.allclose(out, model(history + 0.5))
    first_only = LSTMSeq2Seq(hidden_size=8, num_layers=2, horizon=1)
    first_only.load_state_dict(model.state_dict())
    torch.testing.assert_close(first_only(history), out[:, :1])
