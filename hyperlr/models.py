"""The paper's image classifier, sized from the data it is given.

:class:`SimpleCNN` is the CNN of the paper's CIFAR-10 task; :func:`make_model` builds a model by
name for a data set's shapes, as the training loop and the results store refer to models by name.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["MODELS", "SimpleCNN", "make_model"]


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


#: Models by name; each is built as ``cls(in_channels=, num_classes=, image_size=)``.
MODELS: dict[str, Callable[..., nn.Module]] = {"simple_cnn": SimpleCNN}


def make_model(
    name: str, *, in_channels: int, num_classes: int, image_size: int | tuple[int, int]
) -> nn.Module:
    """Build the model ``name`` (a key of :data:`MODELS`) for images of the given shape."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](in_channels=in_channels, num_classes=num_classes, image_size=image_size)
