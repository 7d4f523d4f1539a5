"""One training run of an experiment: configuration, loop and record.

A run is fully described by a :class:`RunConfig` (task, model, schedule, budget, seed, optimiser
settings, subsets); :func:`train_run` trains it and returns a :class:`RunResult` with its
per-epoch curves, which :mod:`hyperlr.lab.results` stores under a hash of the configuration.

The loop is written for speed on small models: the whole data set lives on the training device,
each epoch's shuffle and augmentation happen there, and the losses are summed on the device and
read back once per epoch, so the host never waits for the device inside an epoch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..registry import SCHEDULER_CODES, is_per_batch, make_scheduler
from .data import DATASET_TASKS, DATASETS, ImageData, load_dataset, random_crop_flip
from .models import MODELS, make_model
from .series import SeriesData

__all__ = [
    "DEFAULT_MODELS",
    "HISTORY_KEYS",
    "RunConfig",
    "RunResult",
    "load_data",
    "resolve_device",
    "history_keys",
    "train_run",
]

#: The per-epoch curves of a run, by task, in the order a results file lists them. ``epoch``
#: counts from 1; ``lr`` is the first param group's learning rate at the epoch's first batch;
#: the losses are label-smoothed cross-entropies (classification) or Huber losses with
#: delta 1 on the normalised series (forecasting) or mean squared errors of the integral at the
#: query points (operator), train as the mean over the epoch's batches as trained, validation
#: as the mean over the validation set after the epoch; the metric is the validation accuracy
#: or the validation mean absolute error (normalised units);
#: ``epoch_time_s`` is the epoch's wall time, validation included.
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

# Validation runs without gradients, so it can take larger batches than training.
_EVAL_BATCH_SIZE = 1024


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
            fail("model", f"a {task} model for {self.dataset!r}, one of {', '.join(solving)}")
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
        wall_time_s: wall time of the whole run (data transfer, model setup and training).
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

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's values."""
        return {name: values[-1] for name, values in self.history.items()}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` becomes CUDA when available, else CPU; anything else is taken as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_data(
    config: RunConfig, *, root: str | PathLike[str] | None = None, download: bool = True
) -> ImageData | SeriesData:
    """The data set of ``config``, with its subsets and options (on the CPU)."""
    return load_dataset(
        config.dataset,
        seed=config.data_seed,
        train_subset=config.train_subset,
        val_subset=config.val_subset,
        root=root,
        download=download,
        **config.data_options,
    )


def _check_data(config: RunConfig, data: ImageData | SeriesData) -> None:
    # Catches data loaded for another run being passed in by mistake.
    mismatches = [
        f"{what}: config {wanted}, data {got}"
        for what, wanted, got in (
            ("dataset", config.dataset, data.name),
            ("train_subset", config.train_subset, data.n_train),
            ("val_subset", config.val_subset, data.n_val),
        )
        if wanted is not None and wanted != got
    ]
    if mismatches:
        raise ValueError("data does not match the config: " + "; ".join(mismatches))


def _versions() -> dict[str, str]:
    import torchvision

    try:
        hyperlr_version = version("hyperlr")
    except PackageNotFoundError:
        hyperlr_version = "unknown"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "hyperlr": hyperlr_version,
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    plural = "" if threads == 1 else "s"
    return f"{platform.processor() or platform.machine()} ({threads} thread{plural})"


def _summed_loss(config: RunConfig, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The task's loss summed over the batch (per example: mean over its elements)."""
    if DATASET_TASKS[config.dataset] == "classification":
        return F.cross_entropy(
            output.float(), target, label_smoothing=config.label_smoothing, reduction="sum"
        )
    if DATASET_TASKS[config.dataset] == "operator":  # the paper's MSE
        per_element = F.mse_loss(output.float(), target, reduction="none")
    else:
        per_element = F.huber_loss(output.float(), target, delta=1.0, reduction="none")
    return per_element.flatten(1).mean(dim=1).sum()


def _summed_metric(output: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """Correct predictions (classification) or summed per-example mean absolute error."""
    if task == "classification":
        return (output.argmax(dim=1) == target).sum().float()
    return (output.float() - target).abs().flatten(1).mean(dim=1).sum()


#: How many validation windows a forecasting run keeps predictions for.
FORECAST_EXAMPLES = 4


@torch.no_grad()
def _example_forecasts(model: torch.nn.Module, data: SeriesData, autocast: Any) -> dict:
    """The model's forecasts for evenly spaced validation windows (first feature only)."""
    model.eval()
    index = torch.linspace(0, data.n_val - 1, min(FORECAST_EXAMPLES, data.n_val)).long()
    with autocast():
        prediction = model(data.x_val[index.to(data.device)])
    return {
        "val_index": index.tolist(),
        "prediction": prediction[..., 0].float().cpu().tolist(),
    }


@torch.no_grad()
def _evaluate(
    model: torch.nn.Module, data: ImageData | SeriesData, config: RunConfig, autocast: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed validation loss and summed metric, as device tensors."""
    model.eval()
    task = DATASET_TASKS[config.dataset]
    loss_sum = torch.zeros((), device=data.device)
    metric_sum = torch.zeros((), device=data.device)
    for start in range(0, data.n_val, _EVAL_BATCH_SIZE):
        x = data.x_val[start : start + _EVAL_BATCH_SIZE]
        y = data.y_val[start : start + _EVAL_BATCH_SIZE]
        with autocast():
            output = model(x)
        loss_sum += _summed_loss(config, output, y)
        metric_sum += _summed_metric(output, y, task)
    return loss_sum, metric_sum


def train_run(
    config: RunConfig,
    data: ImageData | SeriesData | None = None,
    *,
    progress: bool = True,
    data_root: str | PathLike[str] | None = None,
    download: bool = True,
) -> RunResult:
    """Train one run of ``config`` and record its per-epoch curves.

    The model is trained with the config's optimizer (AdamW by default: ``lr``,
    ``weight_decay``, PyTorch's other defaults; schedule-free AdamW is switched between its
    training and evaluation modes around each validation). For classification the loss is the
    label-smoothed cross-entropy

    .. math:: \\ell(z, y) = -\\sum_k q_k \\log \\operatorname{softmax}(z)_k,\\quad
              q_k = (1 - \\varepsilon)\\,[k = y] + \\varepsilon / K,

    with :math:`\\varepsilon` = ``label_smoothing`` and :math:`K` classes; for forecasting it
    is the Huber loss with :math:`\\delta = 1` averaged over the predicted steps, as in the
    paper's oscillator task. The schedule comes
    from :func:`hyperlr.registry.make_scheduler` and steps once per batch where
    :func:`hyperlr.registry.is_per_batch` says so, otherwise once per epoch after validation
    (the paper's order), so epoch :math:`e` (0-based) trains at :math:`\\eta(e)`. Each epoch
    shuffles the training set (the last batch may be smaller) and, for augmented sets, applies
    :func:`hyperlr.lab.data.random_crop_flip` to each batch.

    Repeatability: the model is initialised from ``seed`` (without touching the global RNG)
    and one generator on the training device, seeded from ``seed``, drives shuffling and
    augmentation; on the CPU the same config gives identical curves.

    Precision: on CUDA the forward pass runs under bfloat16 autocast (convolutions and matmuls
    in bfloat16; the losses, the weights, their gradients and AdamW's state in float32).
    bfloat16 keeps float32's exponent range, so no loss scaling is needed, and the schedule
    acts on float32 weights exactly as on the CPU. Every schedule of a comparison is trained
    the same way, so it changes the speed, not how schedules compare; the results file records
    the precision. CUDA runs are repeatable up to the GPU's non-deterministic kernels.

    Args:
        config: the run.
        data: the data set, if already loaded (it must match ``config``); moved to the device.
        progress: show a tqdm bar over epochs.
        data_root, download: where to look for the data set and whether torchvision may
            download it, when ``data`` is not given (see :mod:`hyperlr.lab.data`).

    Returns:
        The run's :class:`RunResult`.
    """
    start_time = time.perf_counter()
    device = resolve_device(config.device)
    if data is None:
        data = load_data(config, root=data_root, download=download)
    _check_data(config, data)
    data = data.to(device)

    # Initialise the model from the run's seed without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = make_model(config.model, data, **config.model_options)
    model.to(device)
    optimizer = OPTIMIZERS[config.optimizer](
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    # Schedule-free AdamW evaluates at an average of its iterates: it must be told which mode
    # it is in. Plain AdamW has no such switch.
    optimizer_mode = getattr(optimizer, "train", None), getattr(optimizer, "eval", None)
    steps_per_epoch = math.ceil(data.n_train / config.batch_size)
    scheduler = make_scheduler(
        config.scheduler,
        optimizer,
        config.epochs,
        steps_per_epoch,
        **config.scheduler_overrides,
    )
    per_batch = is_per_batch(config.scheduler)
    augment = data.augment if config.augment is None else config.augment
    pad_value = data.pad_value if augment else None
    task = DATASET_TASKS[config.dataset]
    metric_name = HISTORY_KEYS[task][3]
    generator = torch.Generator(device=device).manual_seed(config.seed)

    use_amp = device.type == "cuda"

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp)

    history: dict[str, list[float]] = {name: [] for name in HISTORY_KEYS[task]}
    bar = tqdm(
        range(1, config.epochs + 1),
        desc=f"{config.dataset} {config.scheduler} N={config.epochs} seed={config.seed}",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        epoch_start = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        model.train()
        if optimizer_mode[0] is not None:
            optimizer_mode[0]()
        order = torch.randperm(data.n_train, generator=generator, device=device)
        loss_sum = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            x, y = data.x_train[index], data.y_train[index]
            if augment:
                x = random_crop_flip(x, generator, fill=pad_value)
            with autocast():
                output = model(x)
            summed = _summed_loss(config, output, y)
            optimizer.zero_grad(set_to_none=True)
            (summed / len(index)).backward()
            optimizer.step()
            if per_batch:
                scheduler.step()
            # Summed on the device: reading loss.item() here would stall every batch.
            loss_sum += summed.detach()
        if optimizer_mode[1] is not None:
            optimizer_mode[1]()
        val_loss_sum, metric_sum = _evaluate(model, data, config, autocast)
        if not per_batch:
            scheduler.step()
        # The epoch's only host-device synchronisation.
        train_total, val_total, metric_total = torch.stack(
            [loss_sum, val_loss_sum, metric_sum]
        ).tolist()
        record = {
            "epoch": epoch,
            "train_loss": train_total / data.n_train,
            "val_loss": val_total / data.n_val,
            metric_name: metric_total / data.n_val,
            "lr": lr,
            "epoch_time_s": time.perf_counter() - epoch_start,
        }
        for name, value in record.items():
            history[name].append(value)
        bar.set_postfix(
            val_loss=f"{record['val_loss']:.4g}", **{metric_name: f"{record[metric_name]:.4g}"}
        )
    bar.close()

    forecasts = None
    if task == "forecasting":
        forecasts = _example_forecasts(model, data, autocast)
    return RunResult(
        config=config,
        history=history,
        wall_time_s=time.perf_counter() - start_time,
        device=str(device),
        device_name=_device_name(device),
        precision="bfloat16-autocast" if use_amp else "float32",
        dataset=data.name,
        dataset_source=data.source,
        versions=_versions(),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        forecasts=forecasts,
    )
