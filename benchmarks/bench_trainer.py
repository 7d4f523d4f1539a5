"""Throughput of hyperlr's trainer against a training loop written the usual way.

Baseline ("the usual way"): torchvision's ``FashionMNIST`` dataset with ``ToTensor`` and
``Normalize`` transforms, a shuffling ``DataLoader`` (batch 128), ``.to(device)`` on every batch
and ``loss.item()`` read every batch. Contender: :func:`hyperlr.lab.train.train_run`, which keeps
the data set on the device, shuffles there and reads the losses back once per epoch. Both train
the same :class:`hyperlr.lab.models.SimpleCNN` with AdamW and label-smoothed cross-entropy on the
same images (bfloat16 autocast on CUDA for both, so the ratio measures the data path and the
synchronisation, not the precision), for ``--epochs`` epochs of ``--batches`` batches; the
first epoch is a warm-up, the others are timed. The trainer's time includes its per-epoch
validation (128 images), and so does the usual loop's. The two loops alternate
``--repeats`` times (in alternating order) and the median ratio is reported, which keeps the
result usable on a machine shared with other work.

Images: Fashion-MNIST when installed (see :mod:`hyperlr.lab.data`), otherwise scikit-learn's 8x8
digits upsampled to 28x28 (``--size``) and repeated to the needed count; either way they are
written as idx files into a temporary folder that both loops read, so the baseline runs
torchvision's own dataset class. On the CPU a 28x28 SimpleCNN step is compute-bound and the
two loops should be about equally fast; ``--size 8`` shows the overhead-bound regime, and a
GPU (where the usual loop waits on the host every batch) the case the trainer is built for.

Usage::

    python benchmarks/bench_trainer.py                 # CPU, and CUDA when present
    python benchmarks/bench_trainer.py --data digits --size 8 --batches 40 --devices cpu
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from hyperlr.lab.data import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    fashion_mnist,
    locate_fashion_mnist,
    read_idx,
)
from hyperlr.lab.models import SimpleCNN
from hyperlr.lab.train import RunConfig, train_run

BATCH_SIZE = 128
VAL_IMAGES = 128


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _digits(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits as ``size`` x ``size`` uint8 images (bilinear upsampling), repeated."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.round().clamp(0, 255).to(torch.uint8).squeeze(1).numpy()
    index = np.arange(n) % len(images)
    return images[index], bunch.target[index]


def prepare_images(kind: str, n: int, size: int, folder: Path) -> tuple[str, int]:
    """Write ``n`` training and 128 validation images in torchvision's FashionMNIST layout.

    Returns:
        A description of the images and their side.
    """
    if kind == "auto":
        try:
            locate_fashion_mnist()
            kind = "fashion_mnist"
        except FileNotFoundError:
            kind = "digits"
    if kind == "fashion_mnist":
        files = locate_fashion_mnist()
        train_x, train_y = read_idx(files["train_images"]), read_idx(files["train_labels"])
        val_x, val_y = read_idx(files["val_images"]), read_idx(files["val_labels"])
        if n > len(train_x):
            raise ValueError(f"--batches asks for {n} images, Fashion-MNIST has {len(train_x)}")
        description, size = f"Fashion-MNIST 28x28, {n} images", 28
    else:
        x, y = _digits(n + VAL_IMAGES, size)
        train_x, train_y, val_x, val_y = x[:n], y[:n], x[n:], y[n:]
        description = f"digits at {size}x{size}, {n} images (repeated)"
    raw = folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", train_x[:n])
    _write_idx(raw / "train-labels-idx1-ubyte", train_y[:n])
    _write_idx(raw / "t10k-images-idx3-ubyte", val_x[:VAL_IMAGES])
    _write_idx(raw / "t10k-labels-idx1-ubyte", val_y[:VAL_IMAGES])
    return description, size


def time_trainer(folder: Path, n: int, epochs: int, device: str) -> float:
    """Images per second of ``train_run`` over the epochs after the first."""
    data = fashion_mnist(folder, download=False)
    config = RunConfig(
        "fashion_mnist", "N", epochs, train_subset=n, val_subset=VAL_IMAGES, device=device
    )
    result = train_run(config, data, progress=False)
    return n * (epochs - 1) / sum(result.history["epoch_time_s"][1:])


def time_usual_loop(
    folder: Path, n: int, size: int, epochs: int, device: str, workers: int
) -> float:
    """Images per second of the usual Dataset + DataLoader loop over the epochs after the first.

    Like the trainer, each epoch ends with a validation pass over the 128 validation images.
    """
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)]
    )
    train_set = Subset(
        datasets.FashionMNIST(str(folder), train=True, transform=transform), range(n)
    )
    val_set = datasets.FashionMNIST(str(folder), train=False, transform=transform)
    on_cuda = device.startswith("cuda")
    loader = DataLoader(
        train_set, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers, pin_memory=on_cuda
    )
    val_loader = DataLoader(val_set, batch_size=1024, num_workers=workers, pin_memory=on_cuda)
    torch.manual_seed(0)
    model = SimpleCNN(in_channels=1, image_size=size).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    elapsed = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        running_loss = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        model.eval()
        val_loss, correct = 0.0, 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device), y.to(device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
                    logits = model(x)
                val_loss += F.cross_entropy(logits.float(), y, label_smoothing=0.1).item()
                correct += (logits.argmax(1) == y).sum().item()
        if epoch > 0:
            elapsed += time.perf_counter() - start
    return n * (epochs - 1) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["auto", "fashion_mnist", "digits"], default="auto")
    parser.add_argument(
        "--size", type=int, default=28, help="side of the digits images (8: unscaled)"
    )
    parser.add_argument("--batches", type=int, default=8, help="batches of 128 per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs, the first untimed (>= 2)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each loop")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument(
        "--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when absent"
    )
    args = parser.parse_args()
    if args.epochs < 2 or args.batches < 1 or args.repeats < 1:
        parser.error("--epochs must be >= 2, --batches and --repeats >= 1")
    devices = [d for d in args.devices.split(",") if d == "cpu" or torch.cuda.is_available()]
    n = args.batches * BATCH_SIZE

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        description, size = prepare_images(args.data, n, args.size, folder)
        print(f"SimpleCNN, batch {BATCH_SIZE}, {description}, {args.epochs - 1} timed epochs")
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
            f"DataLoader workers {args.workers}"
        )
        print(f"{'device':<8}{'trainer img/s':>15}{'DataLoader img/s':>18}{'ratio':>8}")
        for device in devices:
            ratios = []
            for repeat in range(args.repeats):
                # Alternate the order, so a slow spell of a shared machine hits both loops.
                trainer, usual = 0.0, 0.0
                for which in (("trainer", "usual"), ("usual", "trainer"))[repeat % 2]:
                    if which == "trainer":
                        trainer = time_trainer(folder, n, args.epochs, device)
                    else:
                        usual = time_usual_loop(folder, n, size, args.epochs, device, args.workers)
                ratios.append(trainer / usual)
                print(f"{device:<8}{trainer:>15.0f}{usual:>18.0f}{ratios[-1]:>7.2f}x")
            print(
                f"{device}: trainer / DataLoader loop = {statistics.median(ratios):.2f}x (median)"
            )


if __name__ == "__main__":
    main()
