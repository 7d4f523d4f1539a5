"""Time ``step()`` of HyperbolicLR and ExpHyperbolicLR against CosineAnnealingLR.

Each scheduler drives its own optimizer (AdamW, two param groups, the same parameters); rounds are
interleaved so that drift in the machine's speed affects every scheduler alike. The figure of merit
is the ratio of the median time per ``step()`` to cosine's (target: at most 1.2).

    python benchmarks/bench_schedulers.py [--steps 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

from hyperlr import ExpHyperbolicLR, HyperbolicLR


def time_steps(scheduler, steps: int) -> float:
    """Seconds per ``scheduler.step()``, averaged over ``steps`` calls."""
    start = time.perf_counter()
    for _ in range(steps):
        scheduler.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="step() calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per scheduler")
    args = parser.parse_args()

    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 1))
    model(torch.randn(4, 8)).sum().backward()

    def fresh_optimizer() -> torch.optim.Optimizer:
        # One optimizer per scheduler: the schedulers are chainable, so on a shared optimizer
        # each would scale the lr the others left and the timing would be of a chain.
        optimizer = torch.optim.AdamW(
            [
                {"params": model[0].parameters(), "lr": 1e-2},
                {"params": model[1].parameters(), "lr": 1e-3},
            ]
        )
        optimizer.step()  # so the schedulers see the usual optimizer-then-scheduler order
        return optimizer

    # One budget for all, larger than every step taken, so each step is on the schedule proper.
    budget = args.steps * args.rounds + 1
    make = {
        "CosineAnnealingLR": lambda o: CosineAnnealingLR(o, T_max=budget, eta_min=1e-6),
        "HyperbolicLR": lambda o: HyperbolicLR(o, upper_bound=budget, max_iter=budget),
        "ExpHyperbolicLR": lambda o: ExpHyperbolicLR(o, upper_bound=budget, max_iter=budget),
    }
    schedulers = {name: build(fresh_optimizer()) for name, build in make.items()}
    for scheduler in schedulers.values():
        time_steps(scheduler, 1_000)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in schedulers}
    for _ in range(args.rounds):
        for name, scheduler in schedulers.items():
            samples[name].append(time_steps(scheduler, args.steps))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["CosineAnnealingLR"]
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"python {platform.python_version()}; AdamW with 2 param groups; "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    print(f"{'scheduler':<20} {'us/step':>9} {'ratio vs cosine':>16}")
    for name, median in medians.items():
        print(f"{name:<20} {median * 1e6:>9.2f} {median / baseline:>16.3f}")


if __name__ == "__main__":
    main()
