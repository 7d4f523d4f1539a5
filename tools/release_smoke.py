"""Smoke test of an installed hyperlr (the release workflow runs it against the built wheel).

Run it outside the checkout so that ``import hyperlr`` finds the installed package:
``python tools/release_smoke.py [expected-version]``. It is also the user script that
``mypy --strict`` checks (tests/test_typing.py): every line is typed as a user would write it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch.optim.lr_scheduler import ChainedScheduler, LinearLR

import hyperlr
from hyperlr import ExpHyperbolicLR, HyperbolicLR, WarmupStableDecayLR, make_scheduler
from hyperlr.metrics import PowerFit, diff, power_fit, slcd


def main(expected_version: str | None = None) -> None:
    package_dir = Path(hyperlr.__file__).resolve().parent
    print(f"hyperlr {hyperlr.__version__} from {package_dir}")
    if expected_version is not None and hyperlr.__version__ != expected_version:
        raise SystemExit(f"version {hyperlr.__version__} != expected {expected_version}")
    if not (package_dir / "py.typed").is_file():
        raise SystemExit("py.typed is missing from the installed package")

    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = HyperbolicLR(optimizer, upper_bound=20, max_iter=20, infimum_lr=1e-3)
    for _ in range(20):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
    final_lr = float(scheduler.get_last_lr()[0])  # torch types it float | Tensor
    assert math.isclose(final_lr, 1e-3, rel_tol=1e-9), final_lr  # N = U ends at the infimum
    assert math.isclose(hyperlr.hyperbolic_lr(20, 0.1, 1e-3, 20, 20), 1e-3, rel_tol=1e-9)

    # Chained with a linear warmup: the lr is the product of the two factors.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    decay = ExpHyperbolicLR(optimizer, upper_bound=40, max_iter=20, infimum_lr=1e-4)
    warmup = LinearLR(optimizer, start_factor=0.5, total_iters=4)
    chained = ChainedScheduler([decay, warmup])
    for step in range(1, 10):
        optimizer.step()
        chained.step()
        expected = hyperlr.exp_hyperbolic_lr(step, 0.1, 1e-4, 20, 40) * (
            0.5 + 0.5 * min(step, 4) / 4
        )
        assert math.isclose(optimizer.param_groups[0]["lr"], expected, rel_tol=1e-9)

    wsd = WarmupStableDecayLR(torch.optim.SGD(model.parameters(), lr=0.1), 10, 2, 3)
    print(repr(wsd))
    for code in sorted(hyperlr.SCHEDULER_CODES):
        make_scheduler(code, torch.optim.SGD(model.parameters(), lr=0.1), epochs=10)

    budgets = np.array([50.0, 100.0, 150.0, 200.0])
    fit: PowerFit = power_fit(budgets, 2.0 * budgets**-0.5 * np.array([1.0, 1.02, 0.99, 1.01]))
    assert -0.6 < fit.b < -0.4 and 0.0 <= fit.p_value <= 1.0, fit
    change = diff([0.5, 0.45, 0.44, 0.43])
    distance = slcd(np.linspace(1.0, 0.2, 50), np.linspace(1.0, 0.1, 100))
    print(
        f"power_fit b={fit.b:.3f} p={fit.p_value:.3g}; diff {change.mean:.3f}; slcd {distance:.3f}"
    )
    print("smoke test passed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
