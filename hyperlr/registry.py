"""The schedules the paper compares, by their codes, with the paper's default settings.

``make_scheduler("H", optimizer, epochs=100)`` builds the schedule exactly as the paper's
"compare" runs parameterise it (``../PAPER.md`` §2). Settings that depend on the budget (a
polynomial's ``total_iters``, cosine's ``T_max``, the hyperbola's ``max_iter``, warmup lengths)
are derived from ``epochs``; everything else can be overridden by keyword.

Two codes (``OC``, ``CY``) step once per optimizer step, as their authors intended; all others
step once per epoch, after validation. :func:`is_per_batch` tells a training loop which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim import lr_scheduler as torch_schedulers
from torch.optim.lr_scheduler import LRScheduler

from .schedulers import ExpHyperbolicLR, HyperbolicLR
from .schedules import _is_int
from .wsd import WarmupStableDecayLR

__all__ = ["SCHEDULER_CODES", "SchedulerSpec", "is_per_batch", "make_scheduler", "scheduler_spec"]

#: The paper's infimum / ``eta_min`` default, shared by C, H, EH and their warmup variants.
PAPER_INFIMUM_LR = 1e-6
#: The paper's default hyperbola upper bound.
PAPER_UPPER_BOUND = 250


def _paper_warmup(steps: int) -> int:
    # The authors' 2026 warmup variants use max(1, N // 10) warmup epochs; a one-step budget
    # has no room for a warmup.
    return max(1, steps // 10) if steps > 1 else 0


@dataclass(frozen=True)
class SchedulerSpec:
    """One registry entry: what the code means, when it steps, and how it is built.

    ``defaults(steps)`` gives the overridable settings for a schedule of ``steps`` scheduler
    steps; ``build(optimizer, steps, settings)`` constructs it.
    """

    code: str
    description: str
    per_batch: bool
    defaults: Callable[[int], dict[str, Any]]
    build: Callable[[Optimizer, int, dict[str, Any]], LRScheduler]


def _hyperbolic(
    cls: Callable[..., LRScheduler], warmup: bool
) -> tuple[
    Callable[[int], dict[str, Any]], Callable[[Optimizer, int, dict[str, Any]], LRScheduler]
]:
    def defaults(steps: int) -> dict[str, Any]:
        return {
            "upper_bound": PAPER_UPPER_BOUND,
            "infimum_lr": PAPER_INFIMUM_LR,
            "warmup_epochs": _paper_warmup(steps) if warmup else 0,
        }

    def build(optimizer: Optimizer, steps: int, s: dict[str, Any]) -> LRScheduler:
        return cls(optimizer, max_iter=steps, **s)

    return defaults, build


def _warmup_cosine(optimizer: Optimizer, steps: int, s: dict[str, Any]) -> LRScheduler:
    if steps < 2:
        raise ValueError(f"epochs must be >= 2 for WC (a warmup, then cosine), got {steps}")
    warmup = s["warmup_epochs"]
    if not _is_int(warmup) or not 1 <= warmup < steps:
        raise ValueError(f"warmup_epochs must be an integer in [1, {steps}) for WC, got {warmup!r}")
    phases = [
        torch_schedulers.LinearLR(
            optimizer, start_factor=s["warmup_start_factor"], end_factor=1.0, total_iters=warmup
        ),
        torch_schedulers.CosineAnnealingLR(
            optimizer, T_max=steps - warmup, eta_min=s["infimum_lr"]
        ),
    ]
    return torch_schedulers.SequentialLR(optimizer, phases, milestones=[warmup])


def _one_cycle(optimizer: Optimizer, steps: int, s: dict[str, Any]) -> LRScheduler:
    # max_lr is each group's own lr, so per-group learning rates keep their ratios.
    max_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    return torch_schedulers.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=steps, **s)


def _cyclic(optimizer: Optimizer, steps: int, s: dict[str, Any]) -> LRScheduler:
    settings = dict(s)
    base_fraction = settings.pop("base_lr_fraction")
    max_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    return torch_schedulers.CyclicLR(
        optimizer,
        base_lr=[lr * base_fraction for lr in max_lrs],
        max_lr=max_lrs,
        **settings,
    )


_H_DEFAULTS, _H_BUILD = _hyperbolic(HyperbolicLR, warmup=False)
_EH_DEFAULTS, _EH_BUILD = _hyperbolic(ExpHyperbolicLR, warmup=False)
_WH_DEFAULTS, _WH_BUILD = _hyperbolic(HyperbolicLR, warmup=True)
_WEH_DEFAULTS, _WEH_BUILD = _hyperbolic(ExpHyperbolicLR, warmup=True)

_SPECS: tuple[SchedulerSpec, ...] = (
    SchedulerSpec(
        "N",
        "no schedule: the lr stays constant",
        False,
        lambda steps: {},
        lambda opt, steps, s: torch_schedulers.ConstantLR(opt, factor=1.0, total_iters=0),
    ),
    SchedulerSpec(
        "P",
        "PolynomialLR to zero at the budget (power 0.5)",
        False,
        lambda steps: {"power": 0.5},
        lambda opt, steps, s: torch_schedulers.PolynomialLR(opt, total_iters=steps, **s),
    ),
    SchedulerSpec(
        "C",
        "CosineAnnealingLR over the budget down to eta_min = 1e-6",
        False,
        lambda steps: {"eta_min": PAPER_INFIMUM_LR},
        lambda opt, steps, s: torch_schedulers.CosineAnnealingLR(opt, T_max=steps, **s),
    ),
    SchedulerSpec(
        "E",
        "ExponentialLR, gamma 0.96 per epoch (ignores the budget)",
        False,
        lambda steps: {"gamma": 0.96},
        lambda opt, steps, s: torch_schedulers.ExponentialLR(opt, **s),
    ),
    SchedulerSpec(
        "L",
        "LinearLR from the lr to zero at the budget",
        False,
        lambda steps: {"start_factor": 1.0, "end_factor": 0.0},
        lambda opt, steps, s: torch_schedulers.LinearLR(opt, total_iters=steps, **s),
    ),
    SchedulerSpec(
        "S",
        "StepLR, lr x 0.1 after each third of the budget",
        False,
        lambda steps: {"step_size": max(1, steps // 3), "gamma": 0.1},
        lambda opt, steps, s: torch_schedulers.StepLR(opt, **s),
    ),
    SchedulerSpec(
        "OC",
        "OneCycleLR peaking at the lr, stepped per batch (momentum not cycled)",
        True,
        lambda steps: {"pct_start": 0.3, "cycle_momentum": False},
        _one_cycle,
    ),
    SchedulerSpec(
        "CY",
        "CyclicLR (triangular2) between lr/10 and the lr, stepped per batch",
        True,
        lambda steps: {
            "base_lr_fraction": 0.1,
            "step_size_up": max(1, steps // 8),
            "mode": "triangular2",
            "cycle_momentum": False,
        },
        _cyclic,
    ),
    SchedulerSpec(
        "H",
        "HyperbolicLR (U = 250, infimum 1e-6)",
        False,
        _H_DEFAULTS,
        _H_BUILD,
    ),
    SchedulerSpec(
        "EH",
        "ExpHyperbolicLR (U = 250, infimum 1e-6)",
        False,
        _EH_DEFAULTS,
        _EH_BUILD,
    ),
    SchedulerSpec(
        "WH",
        "HyperbolicLR after a linear warmup of max(1, N // 10) epochs",
        False,
        _WH_DEFAULTS,
        _WH_BUILD,
    ),
    SchedulerSpec(
        "WEH",
        "ExpHyperbolicLR after a linear warmup of max(1, N // 10) epochs",
        False,
        _WEH_DEFAULTS,
        _WEH_BUILD,
    ),
    SchedulerSpec(
        "WC",
        "linear warmup of max(1, N // 10) epochs, then cosine to 1e-6 (SequentialLR)",
        False,
        lambda steps: {
            "warmup_epochs": _paper_warmup(steps),
            "warmup_start_factor": 0.01,
            "infimum_lr": PAPER_INFIMUM_LR,
        },
        _warmup_cosine,
    ),
    SchedulerSpec(
        "WSD",
        "warmup-stable-decay: warmup N // 10, constant, linear decay over the last N // 5",
        False,
        lambda steps: {
            "warmup_steps": _paper_warmup(steps),
            "decay_steps": max(1, steps // 5),
            "infimum_lr": PAPER_INFIMUM_LR,
        },
        lambda opt, steps, s: WarmupStableDecayLR(opt, total_steps=steps, **s),
    ),
)

_REGISTRY: dict[str, SchedulerSpec] = {spec.code: spec for spec in _SPECS}

#: Every registry code with a one-line description.
SCHEDULER_CODES: dict[str, str] = {spec.code: spec.description for spec in _SPECS}


def scheduler_spec(code: str) -> SchedulerSpec:
    """The registry entry for ``code``; a ``ValueError`` listing the known codes otherwise."""
    try:
        return _REGISTRY[code]
    except (KeyError, TypeError):
        known = ", ".join(_REGISTRY)
        raise ValueError(f"unknown scheduler code {code!r}; known codes: {known}") from None


def is_per_batch(code: str) -> bool:
    """Whether the schedule ``code`` steps once per optimizer step (else once per epoch)."""
    return scheduler_spec(code).per_batch


def make_scheduler(
    code: str,
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int = 1,
    **overrides: Any,
) -> LRScheduler:
    """Build the schedule ``code`` for a run of ``epochs`` epochs, with the paper's defaults.

    Args:
        code: a key of :data:`SCHEDULER_CODES`.
        optimizer: the optimizer whose param groups are scheduled (each from its own lr).
        epochs: the budget in epochs, at least 1.
        steps_per_epoch: optimizer steps per epoch; used only by per-batch codes
            (:func:`is_per_batch`), whose budget is ``epochs * steps_per_epoch``.
        **overrides: settings to change, by the scheduler's own keyword (e.g. ``power=2`` for
            ``P``, ``upper_bound=400`` for ``H``). Budget-derived settings are not overridable.

    Raises:
        ValueError: for an unknown code, a bad budget, or an override the schedule does not take.

    Example:
        >>> # xdoctest: +SKIP
        >>> scheduler = make_scheduler("EH", optimizer, epochs=100, infimum_lr=1e-5)
        >>> per_batch = is_per_batch("EH")  # False: call scheduler.step() once per epoch
    """
    spec = scheduler_spec(code)
    if not _is_int(epochs) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not _is_int(steps_per_epoch) or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be an integer >= 1, got {steps_per_epoch!r}")
    steps = epochs * steps_per_epoch if spec.per_batch else epochs
    settings = spec.defaults(steps)
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        accepted = ", ".join(sorted(settings)) or "none"
        raise ValueError(
            f"scheduler {code!r} does not take the override(s) {', '.join(unknown)}; "
            f"accepted: {accepted}"
        )
    settings.update(overrides)
    return spec.build(optimizer, steps, settings)
