"""What every data set of the trainer shares: training and validation tensors on one device, the
check of a subset's size, and the folder where data sets are looked for and cached.

:mod:`hyperlr.lab.data` and the generators (:mod:`hyperlr.lab.series`,
:mod:`hyperlr.lab.operator`) all import from here and never from each other's modules, so the
laboratory's data modules have no import cycle.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor

__all__ = ["TrainValTensors", "check_subset_size", "data_dir"]

Self = TypeVar("Self", bound="TrainValTensors")


class TrainValTensors:
    """Mixin for frozen dataclasses with fields ``x_train``, ``y_train``, ``x_val``, ``y_val``."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return self.x_train.shape[0]

    @property
    def n_val(self) -> int:
        """Number of validation examples."""
        return self.x_val.shape[0]

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.x_train.device

    def to(self: Self, device: str | torch.device) -> Self:
        """The same data on ``device`` (itself when it is already there)."""
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
        )


def check_subset_size(name: str, size: int | None, available: int) -> None:
    """A subset size must be ``None`` (everything) or an integer in ``[1, available]``."""
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= available:
        raise ValueError(f"{name} must be None or an integer in [1, {available}], got {size!r}")


def data_dir() -> Path:
    """The folder where data sets are looked for and downloaded, and generated ones cached.

    ``HYPERLR_DATA_DIR`` when set, else ``$XDG_CACHE_HOME/hyperlr`` (``~/.cache/hyperlr``).
    """
    explicit = os.environ.get("HYPERLR_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "hyperlr"
