"""The paper's own studies at the paper's own scale, as lists of runs.

:data:`PAPER_STUDIES` names the two studies of the paper that the book can run here: the image
study (full Fashion-MNIST, since CIFAR-10 cannot be downloaded on the project's machines, with the
paper's 128-channel SimpleCNN) and the sequence study (the full oscillator set with the paper's
3-layer, 128-unit LSTM). Each has the paper's schedules at their paper defaults (U = 250, E's
gamma 0.96, infimum 1e-6), lr 1e-3 (lr/10 = 1e-4 for the constant schedule N, as in the paper),
budgets 50, 100, 150 and 200 epochs and the five seeds: 7 x 4 x 5 = 140 runs each.
:func:`paper_scale_configs` turns one into run configurations; ``tools/gpu_study.py`` trains them
on a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .runs import RunConfig
from .sweep import expand_grid

__all__ = [
    "PAPER_BUDGETS",
    "PAPER_LR",
    "PAPER_SCHEDULERS",
    "PAPER_SEEDS",
    "PAPER_STUDIES",
    "PaperStudy",
    "paper_scale_configs",
]

PAPER_SCHEDULERS = ("N", "P", "C", "E", "H", "EH", "WSD")
PAPER_BUDGETS = (50, 100, 150, 200)
PAPER_SEEDS = (89, 231, 928, 814, 269)
PAPER_LR = 1e-3


@dataclass(frozen=True)
class PaperStudy:
    """One of the paper's studies: its data set, its fixed run settings and where it is stored.

    Attributes:
        name: the study's key in :data:`PAPER_STUDIES`.
        dataset: the data set every run trains on.
        results_folder: its folder under the repository's ``results/``.
        settings: the :class:`~hyperlr.lab.runs.RunConfig` fields shared by every run.
    """

    name: str
    dataset: str
    results_folder: str
    settings: Mapping[str, Any] = field(default_factory=dict)


PAPER_STUDIES: dict[str, PaperStudy] = {
    "image": PaperStudy(
        name="image",
        dataset="fashion_mnist",
        results_folder="image_classification_paper_scale",
        settings={"batch_size": 128},  # whole sets (60,000 / 10,000), SimpleCNN defaults
    ),
    "sequence": PaperStudy(
        name="sequence",
        dataset="oscillator",
        results_folder="sequence_forecasting_paper_scale",
        settings={"batch_size": 64},  # all windows, 80/20 split, the paper's LSTM
    ),
}


def paper_scale_configs(
    study: str,
    *,
    budgets: tuple[int, ...] = PAPER_BUDGETS,
    seeds: tuple[int, ...] = PAPER_SEEDS,
    **settings: Any,
) -> list[RunConfig]:
    """The 140 runs of one of the paper's studies (see :data:`PAPER_STUDIES`).

    Args:
        study: ``"image"`` or ``"sequence"``.
        budgets, seeds: the paper's unless given (a quick check of the plumbing uses fewer).
        **settings: RunConfig fields to set on every run on top of the study's own (for
            example ``device="cuda"``, or smaller subsets).

    Raises:
        ValueError: an unknown study, or a setting expand_grid refuses.
    """
    if study not in PAPER_STUDIES:
        raise ValueError(f"study: must be one of {', '.join(PAPER_STUDIES)}, got {study!r}")
    spec = PAPER_STUDIES[study]
    lr = {code: PAPER_LR / 10 if code == "N" else PAPER_LR for code in PAPER_SCHEDULERS}
    return expand_grid(
        datasets=spec.dataset,
        schedulers=PAPER_SCHEDULERS,
        budgets=budgets,
        seeds=seeds,
        lr=lr,
        **{**spec.settings, **settings},
    )
