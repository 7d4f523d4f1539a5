"""The paper's models, sized from the data they are given.

:class:`SimpleCNN` is the CNN of the paper's CIFAR-10 task and :class:`LSTMSeq2Seq` the LSTM
encoder-decoder of its oscillator task; :func:`make_model` builds a model by name for a data
set's shapes, as the training loop and the results store refer to models by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .data import ImageData
    from .series import SeriesData

__all__ = ["MODELS", "LSTMSeq2Seq", "ModelSpec", "SimpleCNN", "make_model"]


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if min(height, width) < 1:
        raise ValueError(f"image_size must be positive, got {size!r}")
    return height, width


class SimpleCNN(nn.Module):
    """Three convolution blocks and a two-layer classifier (the paper's CIFAR-10 model).

    ``[Conv3x3(padding 1) -> ReLU -> MaxPool 2] x 3 -> Flatten -> Linear(F, hidden) -> ReLU ->
    Linear(hidden, num_classes)``, all blocks with ``channels`` filters. Each pooling halves
    each side (rounding down), so ``F = channels * (H // 8) * (W // 8)`` for images of 8 pixels
    or more:

    ========================  ===============  ======  ==========
    input                     sides            F       parameters
    ========================  ===============  ======  ==========
    3x32x32 (CIFAR-10)        32→16→8→4        2,048   1,352,970
    1x28x28 (Fashion-MNIST)   28→14→7→3        1,152     891,914
    1x8x8 (digits)            8→4→2→1            128      367,626
    ========================  ===============  ======  ==========

    On 8x8 digits the three poolings leave one pixel per channel: the last block sees the
    whole image and the classifier gets a 128-feature summary of it, which is still the
    paper's architecture and learns the digits well. A pooling is left out only where a side
    has already shrunk to 1 pixel (images smaller than 8x8), so any size of at least 1x1 works
    rather than failing on an empty feature map.

    Args:
        in_channels: channels of the input images.
        num_classes: number of output logits.
        image_size: input height and width (an int for square images); fixes ``F``.
        channels: filters in every convolution block.
        hidden: width of the hidden linear layer.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int | tuple[int, int] = 32,
        channels: int = 128,
        hidden: int = 512,
    ) -> None:
        super().__init__()
        self.image_size = _pair(image_size)
        height, width = self.image_size
        layers: list[nn.Module] = []
        block_in = in_channels
        for _ in range(3):
            layers += [nn.Conv2d(block_in, channels, kernel_size=3, padding=1), nn.ReLU()]
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            block_in = channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``N x num_classes`` for images ``N x C x H x W`` of the configured size."""
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"SimpleCNN was built for {self.image_size[0]}x{self.image_size[1]} images, "
                f"got input of shape {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))


class LSTMSeq2Seq(nn.Module):
    """The paper's LSTM encoder-decoder for multi-step forecasting.

    The encoder reads the ``history`` window; its final hidden and cell states start a decoder
    of the same shape, which runs autoregressively: its first input is zero, each later input is
    its own previous prediction, and a linear head maps every hidden state to one value. With
    ``hidden_size=128`` and ``num_layers=3`` it has 662,657 parameters, as in the paper.

    Args:
        input_size: features per time step (1 for a univariate series).
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers in the encoder and in the decoder.
        horizon: steps predicted.
    """

    def __init__(
        self, input_size: int = 1, hidden_size: int = 128, num_layers: int = 3, horizon: int = 50
    ) -> None:
        super().__init__()
        for name, value in {
            "input_size": input_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "horizon": horizon,
        }.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.horizon = horizon
        self.encoder = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.decoder = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, input_size)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, history, features)`` to ``(batch, horizon, features)``."""
        _, state = self.encoder(history)
        step_input = history.new_zeros(history.shape[0], 1, history.shape[2])
        predictions = []
        for _ in range(self.horizon):
            output, state = self.decoder(step_input, state)
            step_input = self.head(output)
            predictions.append(step_input)
        return torch.cat(predictions, dim=1)


@dataclass(frozen=True)
class ModelSpec:
    """A model the trainer can build by name: its class, its task, and what the data fixes.

    ``sized_by`` maps a data set to the constructor arguments its shapes determine; every other
    constructor argument is a setting a run may choose (``RunConfig.model_options``).
    """

    cls: type[nn.Module]
    task: str
    sized_by: Callable[[Any], dict[str, Any]]


#: Models by name.
MODELS: dict[str, ModelSpec] = {
    "simple_cnn": ModelSpec(
        SimpleCNN,
        "classification",
        lambda data: {
            "in_channels": data.in_channels,
            "num_classes": data.num_classes,
            "image_size": data.image_size,
        },
    ),
    "lstm_seq2seq": ModelSpec(
        LSTMSeq2Seq,
        "forecasting",
        lambda data: {"input_size": data.n_features, "horizon": data.horizon},
    ),
}


def make_model(name: str, data: ImageData | SeriesData, **options: Any) -> nn.Module:
    """Build the model ``name`` (a key of :data:`MODELS`) sized for ``data``.

    ``options`` are the model's own settings (``channels``, ``hidden`` for ``simple_cnn``;
    ``hidden_size``, ``num_layers`` for ``lstm_seq2seq``); the data fixes the rest.

    Raises:
        ValueError: an unknown model, or a setting it does not take (naming both).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    fixed = spec.sized_by(data)
    accepted = set(inspect.signature(spec.cls).parameters) - set(fixed)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"model_options: model {name!r} does not take {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted))}"
        )
    return spec.cls(**fixed, **options)
