"""Image data sets as whole tensors, ready for fast training.

Each loader returns an :class:`ImageData`: the training and validation images as one float32
tensor each (``N x C x H x W``, normalised per channel) and their labels as int64, plus the
dataset's name and where it was read from, which every results file records. The data sets are
small enough (CIFAR-10's 50,000 training images are 600 MB as float32) to live on the training
device for the whole run: :meth:`ImageData.to` moves them once, batches are then indexed on the
device, and :func:`random_crop_flip` augments a whole batch there without a per-image loop.

Sources, offline first (a missing data set is an error that says how to get it, never a silent
switch to another one):

* :func:`digits`: scikit-learn's ``load_digits``, 1,797 real 8x8 digits shipped inside the wheel,
  split into training and validation sets by a seeded, stratified split.
* :func:`fashion_mnist`: the four idx files (``.gz`` or not) in a folder given by ``root`` or
  ``HYPERLR_DATA_DIR`` (flat, torchvision's ``FashionMNIST/raw`` layout, or Debian's package
  unpacked there with ``dpkg -x``), else Debian's installed ``dataset-fashion-mnist`` package
  (:data:`DEBIAN_FASHION_MNIST_DIR`), else torchvision's download where the network allows.
* :func:`cifar10`: torchvision's ``cifar-10-batches-py`` folder under ``root`` or
  ``HYPERLR_DATA_DIR``, downloaded there by torchvision where the network allows.

Nothing here touches the disk or the network at import time.
"""

from __future__ import annotations

import gzip
import inspect
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .operator import OperatorData, integral_operator
from .series import SeriesData, oscillator_windows, sunspots_windows
from .splits import TrainValTensors, check_subset_size, data_dir

__all__ = [
    "CHAPTER_SUBSETS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATASETS",
    "DATASET_TASKS",
    "DEBIAN_FASHION_MNIST_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "ImageData",
    "OperatorData",
    "SeriesData",
    "chapter_subsets",
    "cifar10",
    "data_dir",
    "digits",
    "fashion_mnist",
    "load_dataset",
    "locate_fashion_mnist",
    "random_crop_flip",
    "read_idx",
]

#: Per-channel normalisation of CIFAR-10 exactly as the paper's transforms use it.
CIFAR10_MEAN: tuple[float, ...] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, ...] = (0.2023, 0.1994, 0.2010)
#: Pixel mean and standard deviation of the 60,000 Fashion-MNIST training images (in [0, 1]).
FASHION_MNIST_MEAN: tuple[float, ...] = (0.2860,)
FASHION_MNIST_STD: tuple[float, ...] = (0.3530,)
#: Where Debian's ``dataset-fashion-mnist`` package puts the four idx files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
# Sub-folders of a data folder that may hold the idx files: the folder itself, torchvision's
# layout, the names people give an unpacked copy, and the Debian package unpacked without
# installing it (`dpkg -x dataset-fashion-mnist_*.deb <folder>`).
_FASHION_MNIST_LAYOUTS = (
    ".",
    "FashionMNIST/raw",
    "fashion-mnist",
    "fashion_mnist",
    "usr/share/datasets/fashion-mnist",
)


@dataclass(frozen=True, eq=False)
class ImageData(TrainValTensors):
    """A classification data set held as whole tensors.

    Attributes:
        name: the data set's name, a key of :data:`DATASETS`.
        source: where the images were read from (a path, package or download), for the record.
        x_train, x_val: float32 images, ``N x C x H x W``, normalised as
            :math:`(x - \\mu_c) / \\sigma_c` with ``x`` in [0, 1].
        y_train, y_val: int64 class labels in ``[0, num_classes)``.
        num_classes: the number of classes.
        mean, std: the per-channel :math:`\\mu_c`, :math:`\\sigma_c` used to normalise.
        augment: whether the paper trains this set with :func:`random_crop_flip`
            (CIFAR-10 only).
    """

    name: str
    source: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False

    @property
    def in_channels(self) -> int:
        """Channels per image."""
        return self.x_train.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        """Height and width of an image."""
        return (self.x_train.shape[2], self.x_train.shape[3])

    @property
    def pad_value(self) -> Tensor:
        """The normalised value of a black pixel, :math:`-\\mu_c / \\sigma_c`, per channel.

        torchvision's ``RandomCrop(padding=4)`` pads raw images with zeros before they are
        normalised; padding normalised images with this value gives the same pixels.
        """
        mean = torch.tensor(self.mean, dtype=self.x_train.dtype, device=self.device)
        std = torch.tensor(self.std, dtype=self.x_train.dtype, device=self.device)
        return -mean / std


def _subset(x: Tensor, y: Tensor, size: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random subset of ``size`` examples, kept in their original order."""
    if size is None or size == len(x):
        return x, y
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(x), generator=generator)[:size].sort().values
    return x[index], y[index]


def _normalise(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``(images - mean) / std`` per channel, in place, for float images in [0, 1]."""
    shape = (1, len(mean), 1, 1)
    mean_t = torch.tensor(mean, dtype=images.dtype).view(shape)
    std_t = torch.tensor(std, dtype=images.dtype).view(shape)
    return images.sub_(mean_t).div_(std_t)


def _from_uint8(
    name: str,
    source: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    augment: bool,
    train_subset: int | None,
    val_subset: int | None,
    seed: int,
) -> ImageData:
    """Build an :class:`ImageData` from uint8 images (``N x C x H x W``) and integer labels."""
    check_subset_size("train_subset", train_subset, len(train[0]))
    check_subset_size("val_subset", val_subset, len(val[0]))
    # Subset before converting, so a small subset of a large set costs little memory.
    x_train, y_train = _subset(
        torch.from_numpy(train[0]), torch.from_numpy(train[1]), train_subset, seed
    )
    x_val, y_val = _subset(torch.from_numpy(val[0]), torch.from_numpy(val[1]), val_subset, seed)
    return ImageData(
        name=name,
        source=source,
        x_train=_normalise(x_train.float().div_(255.0), mean, std).contiguous(),
        y_train=y_train.long(),
        x_val=_normalise(x_val.float().div_(255.0), mean, std).contiguous(),
        y_val=y_val.long(),
        num_classes=num_classes,
        mean=mean,
        std=std,
        augment=augment,
    )


def digits(
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> ImageData:
    """scikit-learn's 1,797 handwritten 8x8 digits (10 classes), one channel.

    The training/validation split is stratified by class and seeded by ``seed`` (the same seed
    gives the same split); pixels (0-16) are scaled to [0, 1] and normalised with the mean and
    standard deviation of the training split.

    Args:
        val_fraction: share of the images held out for validation, in (0, 1).
        seed: seeds the split and the subsets.
        train_subset, val_subset: keep a seeded random subset of this many images.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "digits() needs scikit-learn: pip install scikit-learn (or hyperlr[book])"
        ) from error

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16.0
    labels = torch.from_numpy(bunch.target).long()
    train_idx, val_idx = train_test_split(
        np.arange(len(labels)),
        test_size=val_fraction,
        random_state=seed,
        stratify=bunch.target,
    )
    train_idx, val_idx = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(val_idx))
    check_subset_size("train_subset", train_subset, len(train_idx))
    check_subset_size("val_subset", val_subset, len(val_idx))
    mean = (images[train_idx].mean().item(),)
    std = (images[train_idx].std().item(),)
    x_train, y_train = _subset(images[train_idx], labels[train_idx], train_subset, seed)
    x_val, y_val = _subset(images[val_idx], labels[val_idx], val_subset, seed)
    return ImageData(
        name="digits",
        source=f"sklearn.datasets.load_digits (scikit-learn {_version('scikit-learn')})",
        x_train=_normalise(x_train, mean, std).contiguous(),
        y_train=y_train,
        x_val=_normalise(x_val, mean, std).contiguous(),
        y_val=y_val,
        num_classes=10,
        mean=mean,
        std=std,
    )


def read_idx(path: Path) -> np.ndarray:
    """An idx file of unsigned bytes (``.gz`` or not) as an array of its declared shape.

    Raises:
        ValueError: the file is unreadable, not an idx file of bytes, or truncated.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            # A writable buffer, so the tensors made from it own ordinary writable memory.
            raw = bytearray(stream.read())
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: cannot be read as an idx file ({error})") from error
    # Header: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions,
    # then each dimension as a big-endian uint32.
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an idx file of unsigned bytes")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: holds {data.size} values, its header declares {shape}")
    return data.reshape(shape)


def _find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four Fashion-MNIST idx files in ``folder`` or one of its known layouts, if all exist."""
    for layout in _FASHION_MNIST_LAYOUTS:
        base = folder / layout
        found = {}
        for role, stem in _FASHION_MNIST_FILES.items():
            # Prefer the uncompressed file (torchvision leaves both after a download).
            candidates = [base / stem, base / f"{stem}.gz"]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                break
            found[role] = path
        else:
            return found
    return None


def _fashion_mnist_help(searched: list[Path]) -> str:
    where = "\n".join(f"  - {p}" for p in searched)
    return (
        "Fashion-MNIST was not found. Looked in:\n"
        f"{where}\n"
        "Get it in one of these ways:\n"
        "  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
        f"(puts the files in {DEBIAN_FASHION_MNIST_DIR}), or without root: "
        "apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb DIR "
        "and set HYPERLR_DATA_DIR=DIR;\n"
        "  - put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in a folder and pass it as "
        "root= or set HYPERLR_DATA_DIR to it;\n"
        "  - with network access, fashion_mnist(download=True) lets torchvision download them."
    )


def _fashion_mnist_folders(root: str | os.PathLike[str] | None) -> list[Path]:
    return [Path(root)] if root is not None else [data_dir(), DEBIAN_FASHION_MNIST_DIR]


def locate_fashion_mnist(root: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Paths of the four Fashion-MNIST idx files, without downloading.

    With ``root``, only that folder is searched (an explicit choice is never second-guessed);
    otherwise ``HYPERLR_DATA_DIR`` (or the cache of :func:`data_dir`), then
    :data:`DEBIAN_FASHION_MNIST_DIR`.

    Returns:
        ``{"train_images", "train_labels", "val_images", "val_labels"}`` mapped to paths.

    Raises:
        FileNotFoundError: none of the folders holds all four files; the message says how to
            get them.
    """
    folders = _fashion_mnist_folders(root)
    for folder in folders:
        found = _find_idx_files(folder)
        if found is not None:
            return found
    raise FileNotFoundError(_fashion_mnist_help(folders))


def fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> ImageData:
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 greyscale images, 10 classes.

    The test split is the validation set, as in the paper's protocol. Images are normalised
    with :data:`FASHION_MNIST_MEAN` and :data:`FASHION_MNIST_STD`.

    Args:
        root: a folder holding the idx files (see :func:`locate_fashion_mnist`); default: search
            ``HYPERLR_DATA_DIR`` / the cache, then Debian's package folder.
        download: when the files are found nowhere, let torchvision download them into
            ``root`` (or :func:`data_dir`); where the network is blocked this fails with the
            error below.
        seed: seeds the subsets.
        train_subset, val_subset: keep a seeded random subset of this many images.

    Raises:
        FileNotFoundError: the files are missing (and not downloadable); says how to get them.
    """
    try:
        files = locate_fashion_mnist(root)
        source = str(files["train_images"].parent)
    except FileNotFoundError:
        if not download:
            raise
        target = Path(root) if root is not None else data_dir()
        _torchvision_download(
            "FashionMNIST", target, _fashion_mnist_help(_fashion_mnist_folders(root))
        )
        files = locate_fashion_mnist(target)
        source = f"torchvision download into {files['train_images'].parent}"
    if files["train_images"].parent == DEBIAN_FASHION_MNIST_DIR:
        source += " (Debian package dataset-fashion-mnist)"

    def images(path: Path) -> np.ndarray:
        return read_idx(path)[:, None]  # N x 1 x 28 x 28

    return _from_uint8(
        "fashion_mnist",
        source,
        (images(files["train_images"]), read_idx(files["train_labels"])),
        (images(files["val_images"]), read_idx(files["val_labels"])),
        num_classes=10,
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        augment=False,
        train_subset=train_subset,
        val_subset=val_subset,
        seed=seed,
    )


def _cifar10_help(folder: Path) -> str:
    return (
        f"CIFAR-10 was not found in {folder} (expected {folder / 'cifar-10-batches-py'}).\n"
        "No package ships it. Get it in one of these ways:\n"
        "  - with network access, cifar10(download=True) lets torchvision download it "
        "(170 MB) into root= or HYPERLR_DATA_DIR;\n"
        "  - copy an unpacked cifar-10-python.tar.gz (the cifar-10-batches-py folder) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html into a folder and pass it as root= or set "
        "HYPERLR_DATA_DIR to it."
    )


def cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> ImageData:
    """CIFAR-10: 50,000 training and 10,000 test 32x32 colour images, 10 classes (the paper's).

    The test split is the validation set; images are normalised with the paper's
    :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD`, and ``augment`` is set: the paper trains with
    a random crop (padding 4) and a horizontal flip, see :func:`random_crop_flip`.

    Args:
        root: the folder holding ``cifar-10-batches-py`` (or that folder itself); default
            :func:`data_dir`.
        download: when missing, let torchvision download it into ``root`` (where the network
            allows; otherwise this fails with the error below).
        seed: seeds the subsets.
        train_subset, val_subset: keep a seeded random subset of this many images.

    Raises:
        FileNotFoundError: the data is missing (and not downloadable); says how to get it.
    """
    folder = Path(root) if root is not None else data_dir()
    if folder.name == "cifar-10-batches-py":
        folder = folder.parent
    from torchvision.datasets import CIFAR10

    def split(train: bool) -> tuple[np.ndarray, np.ndarray]:
        # torchvision checks the files' md5 sums, so a truncated copy is refused here.
        dataset = CIFAR10(str(folder), train=train, download=False)
        return dataset.data.transpose(0, 3, 1, 2), np.asarray(dataset.targets, dtype=np.int64)

    if not (folder / "cifar-10-batches-py").is_dir():
        if not download:
            raise FileNotFoundError(_cifar10_help(folder))
        _torchvision_download("CIFAR10", folder, _cifar10_help(folder))
    try:
        train, val = split(True), split(False)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(f"{error}\n{_cifar10_help(folder)}") from error
    return _from_uint8(
        "cifar10",
        str(folder / "cifar-10-batches-py"),
        train,
        val,
        num_classes=10,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        augment=True,
        train_subset=train_subset,
        val_subset=val_subset,
        seed=seed,
    )


def _torchvision_download(dataset: str, folder: Path, help_text: str) -> None:
    """Let torchvision download ``dataset`` into ``folder``; a failure says how else to get it."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, dataset)
    try:
        for train in (True, False):
            cls(str(folder), train=train, download=True)
    except Exception as error:  # network errors come in many types (URLError, OSError, ...)
        raise FileNotFoundError(f"download failed ({error!r}).\n{help_text}") from error


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


#: Loaders by data set name; each takes ``seed``, ``train_subset`` and ``val_subset``. The image
#: sets are classification tasks; ``oscillator`` and ``sunspots`` (:mod:`hyperlr.lab.series`) are
#: forecasting tasks; ``integral`` (:mod:`hyperlr.lab.operator`) is the operator-learning task.
DATASETS: dict[str, Callable[..., ImageData | SeriesData | OperatorData]] = {
    "digits": digits,
    "fashion_mnist": fashion_mnist,
    "cifar10": cifar10,
    "oscillator": oscillator_windows,
    "sunspots": sunspots_windows,
    "integral": integral_operator,
}

#: The task of each data set: what the model predicts and how it is scored.
DATASET_TASKS: dict[str, str] = {
    "digits": "classification",
    "fashion_mnist": "classification",
    "cifar10": "classification",
    "oscillator": "forecasting",
    "sunspots": "forecasting",
    "integral": "operator",
}

_FILE_BASED = {"fashion_mnist", "cifar10"}

#: The experiment chapters' default subsets of each data set, (training, validation), in
#: examples (images or windows); ``None`` is the whole split. Large enough to separate the
#: schedules, small enough to train every chapter on a laptop CPU. The committed results hold
#: the runs of these values.
CHAPTER_SUBSETS: dict[str, tuple[int | None, int | None]] = {
    "digits": (None, None),  # 1437 / 360 images
    "fashion_mnist": (6000, 2000),
    "cifar10": (6000, 2000),
    "oscillator": (1024, 512),
    "sunspots": (None, None),  # about 220 / 55 windows
    "integral": (500, 250),  # functions, of 8,000 / 2,000
}


def chapter_subsets(
    dataset: str, train_subset: int | str | None = None, val_subset: int | str | None = None
) -> tuple[int | None, int | None]:
    """Resolve a chapter's ``train_subset`` and ``val_subset`` parameters for ``dataset``.

    Each is ``None`` for the data set's default (:data:`CHAPTER_SUBSETS`), ``"all"`` for the
    whole split, or a number of examples, kept as given: a number the data set cannot supply
    stops the run that loads it, with an error naming the parameter. So changing only a
    chapter's data set keeps its subsets fitting, and an explicit choice is never overridden.

    Returns:
        ``(train_subset, val_subset)`` as the runs take them: an integer, or ``None`` for the
        whole split.

    Raises:
        ValueError: for an unknown ``dataset``, or a subset that is neither ``None``,
            ``"all"`` nor an integer >= 1, naming the parameter.
    """
    if dataset not in CHAPTER_SUBSETS:
        raise ValueError(f"dataset must be one of {', '.join(CHAPTER_SUBSETS)}, got {dataset!r}")
    resolved = []
    for name, value, default in zip(
        ("train_subset", "val_subset"),
        (train_subset, val_subset),
        CHAPTER_SUBSETS[dataset],
        strict=True,
    ):
        if value is None:
            resolved.append(default)
        elif value == "all":
            resolved.append(None)
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            resolved.append(value)
        else:
            raise ValueError(
                f'{name} must be None (the data set\'s default), "all" or an integer >= 1, '
                f"got {value!r}"
            )
    return resolved[0], resolved[1]


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    **options: Any,
) -> ImageData | SeriesData:
    """Load the data set ``name`` (a key of :data:`DATASETS`) with the given subsets.

    ``root`` and ``download`` are passed to the file-based sets (Fashion-MNIST, CIFAR-10) and
    ignored by the others. ``options`` are the loader's own settings, e.g. ``zeta``,
    ``history``, ``horizon`` or ``stride`` for the series; a setting the loader does not take
    is a ``ValueError`` naming it.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    loader = DATASETS[name]
    accepted = set(inspect.signature(loader).parameters) - {
        "seed",
        "train_subset",
        "val_subset",
        "root",
        "download",
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"data_options: dataset {name!r} does not take {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    kwargs: dict[str, Any] = {"seed": seed, "train_subset": train_subset, "val_subset": val_subset}
    if name in _FILE_BASED:
        kwargs.update(root=root, download=download)
    return loader(**kwargs, **options)


def random_crop_flip(
    images: Tensor,
    generator: torch.Generator,
    *,
    padding: int = 4,
    fill: Tensor | float = 0.0,
) -> Tensor:
    """The paper's augmentation on a whole batch: a random crop after padding, then a flip.

    Each image is padded by ``padding`` pixels of ``fill`` on every side, an ``H x W`` window is
    cut at an offset drawn uniformly from :math:`\\{0, \\dots, 2p\\}^2`, and the window is
    mirrored left-right with probability 1/2 -- the distribution of torchvision's
    ``RandomCrop(size, padding=p)`` followed by ``RandomHorizontalFlip()``. All images are
    cropped and flipped at once by one gather, on the batch's device.

    Args:
        images: a batch ``N x C x H x W``.
        generator: the source of randomness, on the same device as ``images``.
        padding: pixels added on each side, ``p >= 0``.
        fill: the padding value, a scalar or one value per channel (use
            :attr:`ImageData.pad_value` for normalised images, so padding is black as in
            torchvision).

    Returns:
        A new tensor of the same shape, dtype and device.
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, c, h, w = images.shape
    device = images.device
    fill = torch.as_tensor(fill, dtype=images.dtype, device=device).reshape(-1, 1, 1)
    padded = fill.expand(c, h + 2 * padding, w + 2 * padding).repeat(n, 1, 1, 1)
    padded[:, :, padding : padding + h, padding : padding + w] = images

    top = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=device)
    flip = torch.rand((n, 1), generator=generator, device=device) < 0.5
    rows = top + torch.arange(h, device=device)  # n x h
    columns = torch.arange(w, device=device)
    # A flipped crop reads its window's columns right to left.
    cols = left + torch.where(flip, w - 1 - columns, columns)  # n x w
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
