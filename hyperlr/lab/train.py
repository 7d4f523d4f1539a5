"""One training run of an experiment: the loop.

What a run is lives in :mod:`hyperlr.lab.runs` (:class:`RunConfig`, :class:`RunResult`, both
re-exported here); :func:`train_run` trains one run and returns its per-epoch curves, which
:mod:`hyperlr.lab.results` stores under a hash of the configuration. The per-run pieces of the
loop (model, optimizer and schedule set up from the config, the epoch's shuffle and batches,
the optimizer and schedule steps, the losses, validation and the epoch's record) are
:class:`RunState`'s and the module's helpers, which :func:`hyperlr.lab.grouped.train_runs`
shares to train many runs at once.

The loop is written for speed on small models: the whole data set lives on the training device,
each epoch's shuffle and augmentation happen there, and the losses are summed on the device and
read back once per epoch, so the host never waits for the device inside an epoch.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from typing import Any

import torch
import torch.nn.functional as F

from ..registry import is_per_batch, make_scheduler
from .data import DATASET_TASKS, ImageData, load_dataset, random_crop_flip
from .models import make_model
from .progress import progress_bar
from .runs import (
    DEFAULT_MODELS,
    HISTORY_KEYS,
    OPTIMIZERS,
    RunConfig,
    RunResult,
    history_keys,
)
from .series import SeriesData

__all__ = [
    "DEFAULT_MODELS",
    "HISTORY_KEYS",
    "OPTIMIZERS",
    "RunConfig",
    "RunResult",
    "RunState",
    "load_data",
    "resolve_device",
    "history_keys",
    "train_run",
]

# Validation runs without gradients, so it can take larger batches than training.
_EVAL_BATCH_SIZE = 1024


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


def autocast_for(device: torch.device) -> Callable[[], torch.autocast]:
    """The forward pass's precision context: bfloat16 autocast on CUDA, float32 elsewhere."""
    enabled = device.type == "cuda"

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)

    return autocast


def _precision(device: torch.device) -> str:
    return "bfloat16-autocast" if device.type == "cuda" else "float32"


#: ``batch_sums(x, y) -> (summed loss, summed metric)`` of a validation batch.
BatchSums = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def _evaluate(
    batch_sums: BatchSums, data: ImageData | SeriesData, models: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed validation loss and summed metric over the validation set, as device tensors.

    ``batch_sums`` gives one batch's sums: scalars for one model, one value per run for a group
    of ``models`` runs, whose batches are smaller so that the examples in flight stay about
    :data:`_EVAL_BATCH_SIZE`.
    """
    batch_size = max(64, _EVAL_BATCH_SIZE // models)
    loss_sum = metric_sum = torch.zeros((), device=data.device)
    for start in range(0, data.n_val, batch_size):
        x = data.x_val[start : start + batch_size]
        y = data.y_val[start : start + batch_size]
        loss, metric = batch_sums(x, y)
        loss_sum = loss_sum + loss
        metric_sum = metric_sum + metric
    return loss_sum, metric_sum


_GLOBAL_RNG_LOCK = threading.Lock()


class RunState:
    """One run in training: its model, optimizer, schedule, generator and curves so far.

    Built from a config as :func:`train_run` builds it; each method is one piece of an epoch,
    in the order the loop calls them::

        order = state.start_epoch()                     # lr recorded, train mode, shuffle
        for step in range(state.steps_per_epoch):
            x, y = state.batch(order, step)             # the run's own augmentation
            ... forward, summed loss, state.zero_grad(), backward ...
            state.step()                                # optimizer (and per-batch schedule)
        state.start_evaluation()                        # eval mode
        ... validation sums ...
        state.end_epoch(train_sum, val_sum, metric_sum, seconds)  # per-epoch schedule, record

    :func:`train_run` drives one state; :func:`hyperlr.lab.grouped.train_runs` drives many with
    one forward and backward per step. The forward and backward are the caller's: the model's
    parameters are leaves owned by this state's optimizer.
    """

    def __init__(self, config: RunConfig, data: ImageData | SeriesData) -> None:
        device = data.device
        self.config = config
        self.task = DATASET_TASKS[config.dataset]
        self.metric_name = HISTORY_KEYS[self.task][3]
        # Initialise the model from the run's seed without disturbing the caller's global RNG.
        # The lock: threads of one process (in-process Dask workers, joblib's threading
        # backend) share torch's global generator, and two runs seeding it at once would
        # interleave their draws and initialise their models from neither seed.
        with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = make_model(config.model, data, **config.model_options)
        self.model.to(device)
        self.optimizer = OPTIMIZERS[config.optimizer](
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        # Schedule-free AdamW evaluates at an average of its iterates: it must be told which
        # mode it is in. Plain AdamW has no such switch.
        self._train_mode = getattr(self.optimizer, "train", None)
        self._eval_mode = getattr(self.optimizer, "eval", None)
        self.steps_per_epoch = math.ceil(data.n_train / config.batch_size)
        self.scheduler = make_scheduler(
            config.scheduler,
            self.optimizer,
            config.epochs,
            self.steps_per_epoch,
            **config.scheduler_overrides,
        )
        self.per_batch = is_per_batch(config.scheduler)
        self.augment = data.augment if config.augment is None else config.augment
        self._pad_value = data.pad_value if self.augment else None
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.history: dict[str, list[float]] = {name: [] for name in HISTORY_KEYS[self.task]}
        self._data = data
        self._lr = math.nan

    @property
    def epochs_done(self) -> int:
        return len(self.history["epoch"])

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.config.epochs

    def start_epoch(self) -> torch.Tensor:
        """Record the epoch's learning rate, switch to training mode; the epoch's shuffle."""
        self._lr = float(self.optimizer.param_groups[0]["lr"])
        self.model.train()
        if self._train_mode is not None:
            self._train_mode()
        data = self._data
        return torch.randperm(data.n_train, generator=self.generator, device=data.device)

    def batch(self, order: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step`` of the epoch's ``order``, augmented from the run's generator."""
        size = self.config.batch_size
        index = order[step * size : (step + 1) * size]
        x, y = self._data.x_train[index], self._data.y_train[index]
        if self.augment:
            x = random_crop_flip(x, self.generator, fill=self._pad_value)
        return x, y

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        """The optimizer's step, and the schedule's where it steps per batch."""
        self.optimizer.step()
        if self.per_batch:
            self.scheduler.step()

    def start_evaluation(self) -> None:
        """Evaluation mode for the model and (schedule-free) optimizer."""
        self.model.eval()
        if self._eval_mode is not None:
            self._eval_mode()

    def end_epoch(
        self, train_sum: float, val_sum: float, metric_sum: float, seconds: float
    ) -> dict[str, float]:
        """Step a per-epoch schedule (after validation, the paper's order) and record the epoch.

        The sums are over the epoch's training examples and the validation set; the record
        holds their means (see :data:`HISTORY_KEYS`).
        """
        if not self.per_batch:
            self.scheduler.step()
        data = self._data
        record = {
            "epoch": self.epochs_done + 1,
            "train_loss": train_sum / data.n_train,
            "val_loss": val_sum / data.n_val,
            self.metric_name: metric_sum / data.n_val,
            "lr": self._lr,
            "epoch_time_s": seconds,
        }
        for name, value in record.items():
            self.history[name].append(value)
        return record

    def batch_sums(self, autocast: Callable[[], torch.autocast]) -> BatchSums:
        """This run's validation sums of a batch, computed by its own model."""

        def sums(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with autocast():
                output = self.model(x)
            return (
                _summed_loss(self.config, output, y),
                _summed_metric(output, y, self.task),
            )

        return sums

    def result(self, wall_time_s: float, group_size: int = 1) -> RunResult:
        """The finished run's record (with its example forecasts for a forecasting run)."""
        data = self._data
        device = data.device
        forecasts = None
        if self.task == "forecasting":
            forecasts = _example_forecasts(self.model, data, autocast_for(device))
        return RunResult(
            config=self.config,
            history=self.history,
            wall_time_s=wall_time_s,
            device=str(device),
            device_name=_device_name(device),
            precision=_precision(device),
            dataset=data.name,
            dataset_source=data.source,
            versions=_versions(),
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            forecasts=forecasts,
            group_size=group_size,
        )


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
    run = RunState(config, data)
    autocast = autocast_for(device)
    model = run.model

    bar = progress_bar(
        range(1, config.epochs + 1),
        desc=f"{config.dataset} {config.scheduler} N={config.epochs} seed={config.seed}",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    for _ in bar:
        epoch_start = time.perf_counter()
        order = run.start_epoch()
        loss_sum = torch.zeros((), device=device)
        for step in range(run.steps_per_epoch):
            x, y = run.batch(order, step)
            with autocast():
                output = model(x)
            summed = _summed_loss(config, output, y)
            run.zero_grad()
            (summed / len(y)).backward()
            run.step()
            # Summed on the device: reading loss.item() here would stall every batch.
            loss_sum += summed.detach()
        run.start_evaluation()
        val_loss_sum, metric_sum = _evaluate(run.batch_sums(autocast), data)
        # The epoch's only host-device synchronisation.
        sums = torch.stack([loss_sum, val_loss_sum, metric_sum]).tolist()
        record = run.end_epoch(*sums, time.perf_counter() - epoch_start)
        bar.set_postfix(
            val_loss=f"{record['val_loss']:.4g}",
            **{run.metric_name: f"{record[run.metric_name]:.4g}"},
        )
    bar.close()
    return run.result(time.perf_counter() - start_time)
