"""Grouped training against the same runs trained one after another.

Baseline: :func:`hyperlr.lab.train.train_run` called for each of ``K`` runs in turn. Contender:
:func:`hyperlr.lab.grouped.train_runs` training the same ``K`` runs as one group. The runs are
the studies' own: the 7 schedules of chapters 5 and 6 x 3 seeds (21 runs), for the same
number of epochs each, so both sides do the same arithmetic. Data are loaded once, before any
timing. The two sides alternate (group first in odd repeats, sequential first in even ones) so
that load from other processes on a shared machine hits both; each wall time printed is the
median over the repeats, the ratio is sequential / grouped.

Sizes: on the CPU the committed reduced studies (chapter 5: Fashion-MNIST subset 6,000 /
2,000, SimpleCNN with 32 channels, batch 128; chapter 6: oscillator subset 1,024 / 512 windows,
LSTM 32 units x 2 layers, batch 64). On CUDA the paper's sizes (full Fashion-MNIST with the
128-channel SimpleCNN; the full oscillator set with the 128-unit, 3-layer LSTM), and there also
the group's achieved TFLOP/s (training FLOPs counted by ``torch.utils.flop_counter`` on one
step of the model, times the steps trained) against the GPU's dense bf16 peak.

Run: ``python benchmarks/bench_grouped.py [--models cnn lstm] [--runs 21] [--epochs 1]
[--repeats 3] [--threads N] [--device auto]``. Fashion-MNIST must be available (see the README).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from hyperlr.lab.grouped import bf16_peak, train_runs, training_flops
from hyperlr.lab.train import RunConfig, load_data, resolve_device, train_run

SCHEDULES = ["N", "P", "C", "E", "H", "EH", "WSD"]
SEEDS = [89, 231, 928]
OVERRIDES = {"E": {"gamma": 0.6648}, "H": {"upper_bound": 25}, "EH": {"upper_bound": 25}}

#: The committed reduced studies (chapters 5 and 6's default parameters).
REDUCED = {
    "cnn": {
        "dataset": "fashion_mnist",
        "train_subset": 6000,
        "val_subset": 2000,
        "batch_size": 128,
        "model_options": {"channels": 32},
    },
    "lstm": {
        "dataset": "oscillator",
        "train_subset": 1024,
        "val_subset": 512,
        "batch_size": 64,
        "model_options": {"hidden_size": 32, "num_layers": 2},
    },
}
#: The paper's sizes: whole data sets, the models' defaults.
PAPER = {
    "cnn": {"dataset": "fashion_mnist", "batch_size": 128},
    "lstm": {"dataset": "oscillator", "batch_size": 64},
}


#: Dense bf16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets, by device-name fragment.
def configs_for(model: str, runs: int, epochs: int, sizes: dict, device: str) -> list[RunConfig]:
    seeds = SEEDS + list(range(1000, 1000 + runs))  # more seeds where K > 21
    grid = [(code, seed) for seed in seeds for code in SCHEDULES][:runs]
    return [
        RunConfig(
            scheduler=code,
            epochs=epochs,
            seed=seed,
            scheduler_overrides=OVERRIDES.get(code, {}),
            device=device,
            **sizes[model],
        )
        for code, seed in grid
    ]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(model: str, args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    sizes = PAPER if device.type == "cuda" else REDUCED
    configs = configs_for(model, args.runs, args.epochs, sizes, str(device))
    data = load_data(configs[0]).to(device)
    # Warm-up (allocators, lazy imports), untimed.
    train_runs(configs[:2], data, progress=False)
    train_run(configs[0], data, progress=False)

    def grouped() -> float:
        synchronize(device)
        start = time.perf_counter()
        train_runs(configs, data, group_size=None, progress=False)
        synchronize(device)
        return time.perf_counter() - start

    def sequential() -> float:
        synchronize(device)
        start = time.perf_counter()
        for config in configs:
            train_run(config, data, progress=False)
        synchronize(device)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"grouped": [], "sequential": []}
    for repeat in range(args.repeats):
        order = [grouped, sequential] if repeat % 2 == 0 else [sequential, grouped]
        for side in order:
            times[side.__name__].append(side())
    group_s = statistics.median(times["grouped"])
    alone_s = statistics.median(times["sequential"])
    first = configs[0]
    print(
        f"{model}: {len(configs)} runs x {args.epochs} epoch(s), {first.dataset} "
        f"train {data.n_train} / val {data.n_val}, {first.model} {dict(first.model_options)}, "
        f"batch {first.batch_size}, {args.repeats} repeats"
    )
    print(
        f"  sequential (train_run each): {alone_s:8.2f} s  "
        f"[{', '.join(f'{t:.2f}' for t in times['sequential'])}]"
    )
    print(
        f"  grouped (train_runs):        {group_s:8.2f} s  "
        f"[{', '.join(f'{t:.2f}' for t in times['grouped'])}]"
    )
    print(f"  ratio sequential / grouped:  {alone_s / group_s:8.2f}x")
    if device.type == "cuda":
        flops = training_flops(first, data) * args.epochs * len(configs)
        achieved = flops / group_s / 1e12
        peak = bf16_peak(device)
        against = f" = {100 * achieved / peak:.1f}% of the bf16 peak {peak:g}" if peak else ""
        print(f"  grouped training: {achieved:.2f} TFLOP/s{against} (validation not counted)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=["cnn", "lstm"], default=["lstm", "cnn"])
    parser.add_argument("--runs", type=int, default=21, help="runs K per group")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(f"device: {device} ({where}); torch {torch.__version__}")
    for model in args.models:
        bench(model, args)


if __name__ == "__main__":
    main()
