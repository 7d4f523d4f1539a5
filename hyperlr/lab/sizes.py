"""Each data set's sizes from its settings alone: no file read, no download, nothing generated.

What a report needs of a run's data -- how many examples it trained on, and the shapes its
model is built for -- follows from the data set's name and settings. :func:`data_shape`
computes them the way each loader of :mod:`hyperlr.lab.data` cuts its splits, so that the book
can count parameters and optimizer updates of stored runs on a machine without the data sets
(Fashion-MNIST and CIFAR-10 are files a user fetches; the oscillator and the operator task are
generated, the latter in seconds). ``tests/test_sizes.py`` checks every entry against the real
loaders.

The split sizes, with :math:`f` the validation fraction:

* image sets: fixed training and test splits (:data:`IMAGE_SPLITS`); ``digits`` splits its
  1,797 images as scikit-learn's ``train_test_split`` does, :math:`n_{val} = \\lceil f n \\rceil`;
* series: :math:`w = \\lfloor (L - h - H) / s \\rfloor + 1` windows of ``history`` :math:`h` and
  ``horizon`` :math:`H` starting every ``stride`` :math:`s` samples of a series of :math:`L`
  samples, :math:`n_{val} = \\max(1, \\operatorname{round}(f w))`;
* the operator task: :math:`n_{val} = \\max(1, \\operatorname{round}(f n))` of ``n_functions``;

and a run's ``train_subset`` / ``val_subset`` replace the whole split when given.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import DATASETS
from .series import damped_oscillator, window_dataset
from .splits import check_subset_size

__all__ = [
    "DIGITS_IMAGES",
    "IMAGE_SPLITS",
    "SUNSPOT_YEARS",
    "DataShape",
    "ImageSplit",
    "data_shape",
    "run_data_shape",
]


@dataclass(frozen=True)
class ImageSplit:
    """A fixed image data set: its training and test split sizes and its images' shape."""

    n_train: int
    n_val: int
    in_channels: int
    image_size: tuple[int, int]
    num_classes: int


#: The image sets with fixed splits (the test split is the validation set).
IMAGE_SPLITS: dict[str, ImageSplit] = {
    "fashion_mnist": ImageSplit(60_000, 10_000, 1, (28, 28), 10),
    "cifar10": ImageSplit(50_000, 10_000, 3, (32, 32), 10),
}
#: Images in scikit-learn's ``load_digits`` (8x8, one channel, 10 classes).
DIGITS_IMAGES = 1_797
#: Yearly sunspot numbers shipped with statsmodels, 1700-2008.
SUNSPOT_YEARS = 2008 - 1700 + 1


@dataclass(frozen=True)
class DataShape:
    """What a data set's settings fix, without its tensors.

    It has the attributes :func:`hyperlr.lab.models.make_model` sizes a model by, so
    ``make_model(name, data_shape(...))`` builds the same network as the loaded data would;
    attributes of another task's data are ``None``.

    Attributes:
        name: the data set.
        n_train, n_val: training and validation examples (after the subsets).
        in_channels, image_size, num_classes: image sets.
        n_features, horizon: series (values per time step, steps predicted).
        n_sensors, query_points: the operator task.
    """

    name: str
    n_train: int
    n_val: int
    in_channels: int | None = None
    image_size: tuple[int, int] | None = None
    num_classes: int | None = None
    n_features: int | None = None
    horizon: int | None = None
    n_sensors: int | None = None
    query_points: tuple[float, ...] | None = None


# Parameters of a loader that are not the data set's own settings.
_RUN_PARAMETERS = {"seed", "train_subset", "val_subset", "root", "download"}


def _defaults(function: Callable[..., Any]) -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def _settings(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The loader's defaults overridden by ``options``; unknown options are refused as the
    loader refuses them (:func:`hyperlr.lab.data.load_dataset`)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    defaults = {
        key: value for key, value in _defaults(DATASETS[name]).items() if key not in _RUN_PARAMETERS
    }
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"data_options: dataset {name!r} does not take {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(defaults)) or 'none'}"
        )
    return {**defaults, **options}


def _fraction(value: Any) -> float:
    if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
        raise ValueError(f"val_fraction must be in (0, 1), got {value!r}")
    return float(value)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _windows(length: int, settings: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
    history = _positive("history", settings["history"])
    horizon = _positive("horizon", settings["horizon"])
    stride = _positive("stride", settings["stride"])
    span = history + horizon
    if length < span + 1:
        raise ValueError(
            f"history + horizon ({span}) must be shorter than the series ({length} samples)"
        )
    windows = len(range(0, length - span + 1, stride))
    fraction = _fraction(_defaults(window_dataset)["val_fraction"])
    n_val = max(1, round(fraction * windows))
    return windows - n_val, n_val, {"n_features": 1, "horizon": horizon}


def _full_splits(name: str, settings: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """Training and validation examples of the whole splits, and the model's sizes."""
    if name in IMAGE_SPLITS:
        split = IMAGE_SPLITS[name]
        shapes = {
            "in_channels": split.in_channels,
            "image_size": split.image_size,
            "num_classes": split.num_classes,
        }
        return split.n_train, split.n_val, shapes
    if name == "digits":
        n_val = math.ceil(_fraction(settings["val_fraction"]) * DIGITS_IMAGES)
        shapes = {"in_channels": 1, "image_size": (8, 8), "num_classes": 10}
        return DIGITS_IMAGES - n_val, n_val, shapes
    if name == "oscillator":
        motion = _defaults(damped_oscillator)
        return _windows(round(motion["t_max"] / motion["dt"]) + 1, settings)
    if name == "sunspots":
        return _windows(SUNSPOT_YEARS, settings)
    if name == "integral":
        n_functions = settings["n_functions"]
        if isinstance(n_functions, bool) or not isinstance(n_functions, int) or n_functions < 2:
            raise ValueError(f"n_functions must be an integer >= 2, got {n_functions!r}")
        n_val = max(1, round(_fraction(settings["val_fraction"]) * n_functions))
        if n_val >= n_functions:
            fraction = settings["val_fraction"]
            raise ValueError(f"val_fraction {fraction} leaves no training functions")
        n_grid = _positive("n_grid", settings["n_grid"])
        stride = _positive("sensor_stride", settings["sensor_stride"])
        queries = _positive("n_queries", settings["n_queries"])
        shapes = {
            "n_sensors": len(range(0, n_grid, stride)),
            "query_points": tuple(np.linspace(0.0, 1.0, queries).tolist()),
        }
        return n_functions - n_val, n_val, shapes
    raise ValueError(f"dataset {name!r} has no size rule in hyperlr.lab.sizes")  # pragma: no cover


def data_shape(
    name: str,
    *,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    **options: Any,
) -> DataShape:
    """The sizes :func:`hyperlr.lab.data.load_dataset` would return, without loading anything.

    Takes the arguments of ``load_dataset``; ``seed`` moves which examples a split holds, never
    how many, and ``root`` and ``download`` say where files would come from: all three are
    accepted so that a call to the loader can be turned into one to this function, and ignored.

    Raises:
        ValueError: an unknown data set or option, or a subset the split cannot supply, as the
            loader would raise it.
    """
    del seed, root, download  # the sizes do not depend on them
    settings = _settings(name, options)
    n_train, n_val, shapes = _full_splits(name, settings)
    check_subset_size("train_subset", train_subset, n_train)
    check_subset_size("val_subset", val_subset, n_val)
    return DataShape(
        name=name,
        n_train=n_train if train_subset is None else train_subset,
        n_val=n_val if val_subset is None else val_subset,
        **shapes,
    )


def run_data_shape(config: Any) -> DataShape:
    """:func:`data_shape` of a run's data: ``config`` is a :class:`hyperlr.lab.runs.RunConfig`
    (or anything with its ``dataset``, ``data_seed``, ``train_subset``, ``val_subset`` and
    ``data_options``)."""
    return data_shape(
        config.dataset,
        seed=config.data_seed,
        train_subset=config.train_subset,
        val_subset=config.val_subset,
        **config.data_options,
    )
