"""The paper's models, sized from the data they are given.

:class:`SimpleCNN` is the CNN of the paper's CIFAR-10 task, :class:`LSTMSeq2Seq` the LSTM
encoder-decoder of its oscillator task, and :class:`DeepONet` and :class:`TraONet` the two
operator networks of its integral-operator task; :func:`make_model` builds a model by name for a
data set's shapes, as the training loop and the results store refer to models by name.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from .data import ImageData
    from .operator import OperatorData
    from .series import SeriesData
    from .sizes import DataShape

__all__ = [
    "MODELS",
    "DeepONet",
    "LSTMSeq2Seq",
    "ModelSpec",
    "SimpleCNN",
    "TraONet",
    "make_model",
]


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


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _query_buffer(query_points: Sequence[float]) -> Tensor:
    points = torch.as_tensor(query_points, dtype=torch.float32).flatten()
    if points.numel() < 1 or not torch.isfinite(points).all():
        raise ValueError("query_points must be a non-empty sequence of finite numbers")
    return points


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with GELU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (size_in, size_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(nn.GELU())
        layers.append(nn.Linear(size_in, size_out))
    return nn.Sequential(*layers)


class DeepONet(nn.Module):
    r"""The paper's DeepONet (Lu et al., 2021): a branch net for ``u``, a trunk net for ``y``.

    .. math:: G(u)(y) \approx \sum_{p=1}^{P} b_p(u(x_1), \dots, u(x_m))\, t_p(y) + b_0

    The branch is an MLP ``n_sensors -> width x depth -> basis`` and the trunk an MLP
    ``1 -> width x depth -> basis``, both with GELU; :math:`b_0` is a learned scalar bias. At the
    defaults (100 sensors, width 1024, depth 5, 50 basis functions) it has 8,604,773 parameters.
    The query points are the same for every function, so the trunk runs once per batch on them
    (a buffer) rather than once per function: the same outputs at a fraction of the cost.

    Args:
        n_sensors: values of ``u`` read per function.
        query_points: the points :math:`y` predicted, the same for every function.
        width: units of each hidden layer.
        depth: hidden layers of each net.
        basis: the number :math:`P` of basis functions.
    """

    def __init__(
        self,
        n_sensors: int = 100,
        query_points: Sequence[float] = tuple(i / 99 for i in range(100)),
        width: int = 1024,
        depth: int = 5,
        basis: int = 50,
    ) -> None:
        super().__init__()
        _check_sizes(n_sensors=n_sensors, width=width, depth=depth, basis=basis)
        self.register_buffer("query_points", _query_buffer(query_points), persistent=False)
        self.branch = _mlp([n_sensors, *[width] * depth, basis])
        self.trunk = _mlp([1, *[width] * depth, basis])
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, sensors: Tensor) -> Tensor:
        """Map sensor values ``(batch, n_sensors)`` to ``(batch, n_queries)``."""
        coefficients = self.branch(sensors)  # batch x basis
        basis = self.trunk(self.query_points.unsqueeze(-1))  # queries x basis
        return coefficients @ basis.T + self.bias


def _sinusoidal_positions(length: int, d_model: int) -> Tensor:
    """The transformer's positions: sin / cos of ``position / 10000^(2i/d_model)``."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return table


class _Attention(nn.Module):
    """Multi-head attention from plain layers (the parameters of ``nn.MultiheadAttention``)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        key, value = self.key_value(memory).chunk(2, dim=-1)
        attended = F.scaled_dot_product_attention(
            self._heads(self.query(x)), self._heads(key), self._heads(value)
        )
        return self.out(attended.transpose(1, 2).flatten(2))


class _Block(nn.Module):
    """A post-norm transformer layer: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, cross: bool) -> None:
        super().__init__()
        self.self_attention = _Attention(d_model, n_heads)
        self.norm_self = nn.LayerNorm(d_model)
        self.cross_attention = _Attention(d_model, n_heads) if cross else None
        self.norm_cross = nn.LayerNorm(d_model) if cross else None
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model)
        )
        self.norm_out = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, memory: Tensor | None = None) -> Tensor:
        x = self.norm_self(x + self.self_attention(x, x))
        if self.cross_attention is not None:
            x = self.norm_cross(x + self.cross_attention(x, memory))
        return self.norm_out(x + self.feed_forward(x))


class TraONet(nn.Module):
    r"""The paper's transformer operator network: an encoder over the sensors, a decoder over ``y``.

    Each sensor value is embedded by ``Linear(1, d_model)``, scaled by :math:`\sqrt{d_{model}}`
    and given sinusoidal positions; ``n_layers`` post-norm encoder layers (self-attention,
    feed-forward ``d_ff``, ReLU, no dropout) read the sequence. Each query point :math:`y` is
    embedded by another ``Linear(1, d_model)``; ``n_layers`` decoder layers (self-attention over
    the queries without a mask, cross-attention to the encoder, feed-forward) and a final
    ``Linear(d_model, 1)`` give :math:`G(u)(y)`. Built from plain layers and
    ``F.scaled_dot_product_attention`` so that it also runs under ``torch.func.vmap``. At the
    defaults (``d_model`` 128, 2 heads, ``d_ff`` 512, 3 layers each) it has 1,389,185
    parameters, as ``nn.Transformer`` layers of that size.

    Args:
        query_points: the points :math:`y` predicted, the same for every function.
        d_model: the model width (a multiple of ``n_heads``).
        n_heads: attention heads.
        d_ff: the feed-forward width.
        n_sensors: values of ``u`` read per function (the encoder's sequence length).
        n_layers: encoder layers, and as many decoder layers.
    """

    def __init__(
        self,
        query_points: Sequence[float] = tuple(i / 99 for i in range(100)),
        d_model: int = 128,
        n_heads: int = 2,
        d_ff: int = 512,
        n_layers: int = 3,
        n_sensors: int = 100,
    ) -> None:
        super().__init__()
        _check_sizes(d_model=d_model, n_heads=n_heads, d_ff=d_ff, n_layers=n_layers)
        _check_sizes(n_sensors=n_sensors)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.scale = math.sqrt(d_model)
        self.register_buffer("query_points", _query_buffer(query_points), persistent=False)
        self.register_buffer(
            "positions", _sinusoidal_positions(n_sensors, d_model), persistent=False
        )
        self.embed_sensor = nn.Linear(1, d_model)
        self.embed_query = nn.Linear(1, d_model)
        self.encoder = nn.ModuleList(
            _Block(d_model, n_heads, d_ff, cross=False) for _ in range(n_layers)
        )
        self.decoder = nn.ModuleList(
            _Block(d_model, n_heads, d_ff, cross=True) for _ in range(n_layers)
        )
        self.head = nn.Linear(d_model, 1)

    def forward(self, sensors: Tensor) -> Tensor:
        """Map sensor values ``(batch, n_sensors)`` to ``(batch, n_queries)``."""
        memory = self.embed_sensor(sensors.unsqueeze(-1)) * self.scale + self.positions
        for layer in self.encoder:
            memory = layer(memory)
        queries = self.embed_query(self.query_points.unsqueeze(-1))
        x = queries.expand(sensors.shape[0], -1, -1)
        for layer in self.decoder:
            x = layer(x, memory)
        return self.head(x).squeeze(-1)


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
    "deeponet": ModelSpec(
        DeepONet,
        "operator",
        lambda data: {"n_sensors": data.n_sensors, "query_points": data.query_points},
    ),
    "traonet": ModelSpec(
        TraONet,
        "operator",
        lambda data: {"n_sensors": data.n_sensors, "query_points": data.query_points},
    ),
}


def make_model(
    name: str, data: ImageData | SeriesData | OperatorData | DataShape, **options: Any
) -> nn.Module:
    """Build the model ``name`` (a key of :data:`MODELS`) sized for ``data``.

    ``data`` may be the loaded data set or its :class:`~hyperlr.lab.sizes.DataShape`, which
    sizes the model alike without loading anything.

    ``options`` are the model's own settings (``channels``, ``hidden`` for ``simple_cnn``;
    ``hidden_size``, ``num_layers`` for ``lstm_seq2seq``; ``width``, ``depth``, ``basis`` for
    ``deeponet``; ``d_model``, ``n_heads``, ``d_ff``, ``n_layers`` for ``traonet``); the data
    fixes the rest.

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
