"""What a run *is*: its configuration (:class:`RunConfig`) and its record (:class:`RunResult`).

These belong to no training loop: :func:`hyperlr.lab.train.train_run` trains one run,
:func:`hyperlr.lab.grouped.train_runs` trains many together, and :mod:`hyperlr.lab.results`
stores either's results under :attr:`RunConfig.key`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import torch

from ..registry import SCHEDULER_CODES
from .data import DATASET_TASKS, DATASETS
from .models import MODELS

__all__ = [
    "DEFAULT_MODELS",
    "HISTORY_KEYS",
    "OPTIMIZERS",
    "RunConfig",
    "RunResult",
    "history_keys",
]

#: The per-epoch curves of a run, by task, in the order a results file lists them. ``epoch``
#: counts from 1; ``lr`` is the first param group's learning rate at the epoch's first batch;
#: the losses are label-smoothed cross-entropies (classification) or Huber losses with
#: delta 1 on the normalised series (forecasting) or mean squared errors of the integral at the
#: query points (operator), train as the mean over the epoch's batches as trained, validation
#: as the mean over the validation set after the epoch; the metric is the validation accuracy
#: or the validation mean absolute error (normalised units);
#: ``epoch_time_s`` is the epoch's wall time, validation included (for a run trained in a group,
#: its share: the group's epoch wall time divided by the runs training in that epoch).
HISTORY_KEYS: dict[str, tuple[str, ...]] = {
    "classification": ("epoch", "train_loss", "val_loss", "val_accuracy", "lr", "epoch_time_s"),
    "forecasting": ("epoch", "train_loss", "val_loss", "val_mae", "lr", "epoch_time_s"),
    "operator": ("epoch", "train_loss", "val_loss", "val_mae", "lr", "epoch_time_s"),
}


def _schedulefree_adamw(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
    import schedulefree

    return schedulefree.AdamWScheduleFree(params, **kwargs)


#: Optimizers by name, each built as ``cls(params, lr=, weight_decay=)`` with its other
#: settings at their defaults: AdamW, the paper's, and schedule-free AdamW (Defazio et al.,
#: 2024), a competitor that needs no decaying schedule (pair it with code ``N``).
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "schedulefree_adamw": _schedulefree_adamw,
}

#: The model a run uses when its config names none, by task.
DEFAULT_MODELS: dict[str, str] = {
    "classification": "simple_cnn",
    "forecasting": "lstm_seq2seq",
    "operator": "deeponet",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json_copy(value: Any) -> dict[str, Any] | None:
    """A JSON round-trip copy of a str-keyed mapping, or None when it is not one."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        return None
    try:
        return json.loads(json.dumps(dict(value), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError):
        return None


@functools.cache
def _field_defaults() -> dict[str, Any]:
    """RunConfig's field defaults (``model``'s ``None`` never survives construction)."""
    defaults = {}
    for f in fields(RunConfig):
        if f.default is not MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def history_keys(dataset: str) -> tuple[str, ...]:
    """The per-epoch curves recorded for a run on ``dataset`` (see :data:`HISTORY_KEYS`)."""
    return HISTORY_KEYS[DATASET_TASKS[dataset]]


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what one training run computes.

    Two runs with equal configurations (``device`` aside) are the same experiment and share a
    :attr:`key`. The fields are validated on construction; a bad value raises ``ValueError``
    naming the field and what it accepts.

    Attributes:
        dataset: a key of :data:`hyperlr.lab.data.DATASETS`: ``digits``, ``fashion_mnist``,
            ``cifar10`` (classification), ``oscillator``, ``sunspots`` (forecasting) or
            ``integral`` (operator learning).
        scheduler: a code of :data:`hyperlr.registry.SCHEDULER_CODES`.
        epochs: the budget :math:`N`, in epochs.
        seed: seeds the model's initialisation, the shuffling and the augmentation.
        model: a key of :data:`hyperlr.lab.models.MODELS` solving the data set's task; ``None``
            picks the task's default (:data:`DEFAULT_MODELS`).
        scheduler_overrides: keyword settings for the schedule (e.g. ``{"upper_bound": 400}``),
            passed to :func:`hyperlr.registry.make_scheduler`; JSON values only.
        lr: the optimizer's initial learning rate :math:`\\eta_{init}`.
        weight_decay: AdamW's decoupled weight decay.
        batch_size: training batch size.
        label_smoothing: the cross-entropy's label smoothing (classification only).
        train_subset, val_subset: train / validate on a seeded random subset of this many
            images (``None``: all).
        data_seed: seeds the subsets (and the digits split); kept apart from ``seed`` so that
            all seeds of an experiment see the same data.
        augment: apply the paper's random crop and flip; ``None`` follows the data set
            (on for CIFAR-10 only).
        model_options: the model's own settings, e.g. ``{"channels": 32}`` for a narrower
            SimpleCNN or ``{"hidden_size": 32, "num_layers": 2}`` for the LSTM (JSON values).
        data_options: the data loader's own settings, e.g. ``{"zeta": 0.01, "stride": 5}``
            for the oscillator (JSON values).
        optimizer: a key of :data:`OPTIMIZERS`: ``"adamw"`` (the paper's) or
            ``"schedulefree_adamw"``.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            Not part of :attr:`key`: where a run was computed does not change what it is.
    """

    dataset: str
    scheduler: str
    epochs: int
    seed: int = 0
    model: str | None = None
    scheduler_overrides: Mapping[str, Any] = field(default_factory=dict)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 128
    label_smoothing: float = 0.1
    train_subset: int | None = None
    val_subset: int | None = None
    data_seed: int = 0
    augment: bool | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)
    data_options: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str = "adamw"
    device: str = "auto"

    def __post_init__(self) -> None:
        def fail(name: str, accepted: str) -> None:
            raise ValueError(f"{name} must be {accepted}, got {getattr(self, name)!r}")

        if self.dataset not in DATASETS:
            fail("dataset", f"one of {', '.join(DATASETS)}")
        if self.scheduler not in SCHEDULER_CODES:
            fail("scheduler", f"a scheduler code, one of {', '.join(SCHEDULER_CODES)}")
        task = DATASET_TASKS[self.dataset]
        if self.model is None:
            object.__setattr__(self, "model", DEFAULT_MODELS[task])
        elif self.model not in MODELS or MODELS[self.model].task != task:
            solving = [name for name, spec in MODELS.items() if spec.task == task]
            fail(
                "model",
                f"a model of the {task} task for {self.dataset!r}: one of {', '.join(solving)}",
            )
        for name in ("epochs", "batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        for name in ("seed", "data_seed"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "an integer >= 0")
        for name in ("train_subset", "val_subset"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                fail(name, "None or an integer >= 1")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        if not _is_real(self.lr) or self.lr <= 0:
            fail("lr", "a finite number > 0")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "a finite number >= 0")
        if not _is_real(self.label_smoothing) or not 0 <= self.label_smoothing < 1:
            fail("label_smoothing", "a number in [0, 1)")
        if self.augment is not None and not isinstance(self.augment, bool):
            fail("augment", "None, True or False")
        if not isinstance(self.device, str):
            fail("device", 'a device string such as "auto", "cpu" or "cuda"')
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                fail("device", '"auto" or a torch device string such as "cpu" or "cuda:0"')
        # A JSON round trip both checks the settings and copies them, so the config cannot
        # change behind its key.
        for name in ("scheduler_overrides", "model_options", "data_options"):
            copied = _json_copy(getattr(self, name))
            if copied is None:
                fail(name, "a mapping from setting names (str) to JSON values")
            object.__setattr__(self, name, copied)
        # Canonical number types, so that lr=1 and lr=1.0 are the same experiment.
        for name in ("lr", "weight_decay", "label_smoothing"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def __hash__(self) -> int:
        # The generated hash would fail on the overrides dict; equal configs have equal keys.
        return hash((self.key, self.device))

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON values."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("scheduler_overrides", "model_options", "data_options"):
            data[name] = dict(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """The config of :meth:`to_dict`'s output; unknown or missing fields raise ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown RunConfig field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:  # a required field is missing
            raise ValueError(f"incomplete RunConfig: {error}") from None

    def canonical_json(self) -> str:
        """The configuration as one canonical JSON string, ``device`` excluded.

        Keys sorted, no spaces, numbers in Python's shortest round-trip form: equal
        configurations give equal strings on every machine. Fields at their default value are
        left out, so that a field added later (with a default that keeps the old behaviour)
        leaves the keys of every stored run unchanged. The flip side, a rule for maintainers:
        never change a field's default; add a new field instead.
        """
        data = self.to_dict()
        del data["device"]
        defaults = _field_defaults()
        kept = {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}
        return json.dumps(kept, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def key(self) -> str:
        """The first 16 hex digits of the SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunResult:
    """One finished run: its configuration, curves and provenance.

    Attributes:
        config: what was run.
        history: the per-epoch curves, :data:`HISTORY_KEYS` mapped to lists of ``epochs``
            values (``nan`` where a loss diverged).
        wall_time_s: wall time of the whole run (data transfer, model setup and training); for
            a run trained in a group, its share of the group's time (each epoch's wall time
            divided by the runs training in it, plus an equal share of the setup), so that the
            runs' times add up to the time spent.
        device: the device used (``"cpu"``, ``"cuda:0"``).
        device_name: the accelerator's or processor's name, with the CPU thread count.
        precision: ``"float32"`` or ``"bfloat16-autocast"``.
        dataset: the data set's name.
        dataset_source: where its files came from.
        versions: python, torch, torchvision and hyperlr versions.
        finished_at: UTC time the run finished, ISO 8601.
        forecasts: forecasting runs only: the trained model's predictions for a few fixed
            validation windows (``val_index``: their positions in the validation set;
            ``prediction``: one list of ``horizon`` normalised values per window), so that a
            chapter can draw forecasts against the truth without retraining; ``None`` otherwise.
        group_size: how many runs were trained together with this one, itself included
            (:func:`hyperlr.lab.grouped.train_runs`); 1 for a run trained alone.
    """

    config: RunConfig
    history: dict[str, list[float]]
    wall_time_s: float
    device: str
    device_name: str
    precision: str
    dataset: str
    dataset_source: str
    versions: dict[str, str]
    finished_at: str
    forecasts: dict[str, list] | None = None
    group_size: int = 1

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's values."""
        return {name: values[-1] for name, values in self.history.items()}
