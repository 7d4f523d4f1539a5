"""Many runs trained at once: stacked parameters, one forward and backward, own optimizers.

On a small model one training step is a few dozen small kernels (and the LSTM's recurrence a
long chain of tiny ones), so the device waits on latency rather than arithmetic. Runs that share
their data and model can share that latency: :func:`train_runs` keeps each run's own model,
optimizer (a real :class:`torch.optim.AdamW` or schedule-free AdamW) and registry scheduler in
a :class:`hyperlr.lab.train.RunState`, exactly as :func:`hyperlr.lab.train.train_run` builds
them, and at each step

1. stacks the :math:`K` runs' parameters, :math:`\\theta = [\\theta_1; \\dots; \\theta_K]`
   (``torch.stack`` keeps autograd to each run's own leaves);
2. computes every run's summed loss on its own batch in one vectorised call,
   :math:`L_k = \\ell(f(\\theta_k, x_k), y_k)` through :func:`torch.func.vmap` over
   :func:`torch.func.functional_call`;
3. backpropagates :math:`\\sum_k L_k / B` once: run :math:`k`'s parameters get exactly the
   gradient of :math:`L_k / B`, as alone, since no other term depends on them;
4. steps each run's optimizer and (per batch or per epoch) its scheduler.

Each run draws its shuffle and augmentation from its own seeded generator, so it sees the batches
it would see alone, and its curves equal the lone run's up to float rounding (checked to a
relative 1e-4 on the CPU in the tests). A run leaves the group when its budget ends and is
reported at once; a run that diverges goes on alone in its own slice of the stack (NaN stays in
its own parameters), recording its curves as it would alone.

``nn.LSTM`` has no batching rule for ``vmap``; the grouped forward computes each LSTM layer with
:func:`lstm_forward` (the same equations from the layer's own parameters) instead, while the
models stay ordinary modules.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.utils.flop_counter import FlopCounterMode

from .data import ImageData
from .progress import progress_bar
from .runs import RunConfig, RunResult, _is_int
from .series import SeriesData
from .train import (
    RunState,
    _check_data,
    _evaluate,
    _summed_loss,
    _summed_metric,
    autocast_for,
    load_data,
    resolve_device,
    train_run,
)

__all__ = [
    "DEFAULT_GROUP_SIZE",
    "default_group_size",
    "group_runs",
    "lstm_forward",
    "BF16_PEAK_TFLOPS",
    "bf16_peak",
    "train_runs",
    "training_flops",
    "vmappable_copy",
]

#: Runs trained together by default (``group_size="auto"``): the size measured best for the
#: model on the device, :func:`default_group_size`.
DEFAULT_GROUP_SIZE = "auto"

#: Group sizes by (device type, model) where grouping does not pay, as measured with
#: ``benchmarks/bench_grouped.py`` on the 2-core CPU (2 threads, quiet machine): 21 runs of the
#: reduced SimpleCNN study took 77 s as a group against 35 s one after another (the batched
#: convolutions of ``vmap`` are slower there than one model's), so they train alone.
_MEASURED_GROUP_SIZES = {("cpu", "simple_cnn"): 1}

#: Elsewhere: a study's 7 schedules x 3 seeds. On the same CPU a group of 21 runs of the
#: reduced LSTM study took 6.0 s against 13.8 s one after another (2.3x, median of 3 paired
#: repeats; 1.1x on one thread); groups of 7 and 42 were not faster per run (measured under
#: heavy load), and memory grows with the group (2.2 GB peak for 42). Not measured on a GPU:
#: try larger groups there with the same benchmark.
_GROUP_SIZE_ELSEWHERE = 21


def default_group_size(config: RunConfig) -> int:
    """The group size ``"auto"`` gives runs like ``config`` (see :data:`DEFAULT_GROUP_SIZE`)."""
    device = resolve_device(config.device).type
    return _MEASURED_GROUP_SIZES.get((device, config.model), _GROUP_SIZE_ELSEWHERE)


def lstm_forward(
    lstm: nn.LSTM, x: Tensor, state: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """What ``lstm(x, state)`` returns, computed from the layer's parameters step by step.

    For each layer :math:`l` and time step :math:`t`, with :math:`x^{(0)}_t = x_t`,

    .. math::
        (i, f, g, o) &= W_{ih}^{(l)} x^{(l)}_t + b_{ih}^{(l)} + W_{hh}^{(l)} h^{(l)}_{t-1}
                        + b_{hh}^{(l)} \\\\
        c^{(l)}_t &= \\sigma(f) \\odot c^{(l)}_{t-1} + \\sigma(i) \\odot \\tanh(g),\\qquad
        h^{(l)}_t = \\sigma(o) \\odot \\tanh(c^{(l)}_t),\\qquad x^{(l+1)}_t = h^{(l)}_t,

    as :class:`torch.nn.LSTM` defines them. Unlike the layer's fused kernel, these are plain
    tensor operations, which :func:`torch.func.vmap` can batch over stacked parameters
    (``functional_call`` swaps them in by name). Supports what the book's models use: batched
    input, one direction, no projection, no dropout between layers (or evaluation mode).

    Args:
        lstm: the layer whose parameters and settings are used.
        x: input, ``(batch, time, features)`` if ``lstm.batch_first`` else
            ``(time, batch, features)``.
        state: initial ``(h_0, c_0)``, each ``(num_layers, batch, hidden_size)``; zeros if
            ``None``.

    Returns:
        ``output`` (the last layer's hidden states, laid out as ``x``) and the final
        ``(h_n, c_n)``.
    """
    if lstm.bidirectional or lstm.proj_size or (lstm.dropout and lstm.training):
        raise ValueError(
            f"lstm_forward supports one-directional LSTMs without projection or dropout, got {lstm}"
        )
    if x.dim() != 3:
        raise ValueError(f"x must be a batched 3-d input, got shape {tuple(x.shape)}")
    if not lstm.batch_first:
        x = x.transpose(0, 1)
    batch, hidden = x.shape[0], lstm.hidden_size
    if state is None:
        zeros = x.new_zeros(lstm.num_layers, batch, hidden)
        state = (zeros, zeros)
    h_0, c_0 = state
    layer_input = x
    h_n, c_n = [], []
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        w_hh = getattr(lstm, f"weight_hh_l{layer}")
        # The input's contribution for all steps at once; only the recurrence is sequential.
        projected = layer_input @ w_ih.T
        if lstm.bias:
            # Added one at a time: were they summed first, autograd would hand both biases the
            # same gradient tensor, and an optimizer that edits gradients in place
            # (schedule-free AdamW does) would edit it twice.
            projected = projected + getattr(lstm, f"bias_ih_l{layer}")
            projected = projected + getattr(lstm, f"bias_hh_l{layer}")
        h, c = h_0[layer], c_0[layer]
        outputs = []
        # unbind, not indexing per step: indexing's backward would fill a whole zero tensor
        # for every step.
        for projected_t in projected.unbind(1):
            gates = torch.addmm(projected_t, h, w_hh.T)
            # Fewer, larger kernels: one sigmoid over all four gates (g's is not used).
            i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)
            g = torch.tanh(gates[..., 2 * hidden : 3 * hidden])
            c = torch.addcmul(f * c, i, g)
            h = o * torch.tanh(c)
            outputs.append(h)
        layer_input = torch.stack(outputs, dim=1)
        h_n.append(h)
        c_n.append(c)
    output = layer_input if lstm.batch_first else layer_input.transpose(0, 1)
    return output, (torch.stack(h_n), torch.stack(c_n))


class _UnfusedLSTM(nn.LSTM):
    """An ``nn.LSTM`` computed by :func:`lstm_forward` (same parameters, same names)."""

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> Any:
        return lstm_forward(self, x, state)


def vmappable_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that ``vmap`` can batch over stacked parameters.

    Its ``nn.LSTM`` layers are computed by :func:`lstm_forward`; everything else is the model's
    own code. ``functional_call`` supplies the parameters; the copy's buffers (fixed tensors
    such as DeepONet's query points, the same for every run) are used as they are.
    """
    template = copy.deepcopy(model)
    for module in template.modules():
        if type(module) is nn.LSTM:
            module.__class__ = _UnfusedLSTM
    return template


def training_flops(config: RunConfig, data: ImageData | SeriesData) -> float:
    """FLOPs of one epoch's training steps of one run like ``config`` (forward and backward).

    Counted on the model as the grouped path runs it (:func:`vmappable_copy`), whose LSTM
    layers are plain matrix products: the fused LSTM kernel has no FLOP formula in PyTorch's
    counter. Every run of a group shares the data, the model and the batch size, so this is
    also each of its runs' count.
    """
    run = RunState(config, data)
    template = vmappable_copy(run.model)
    params = dict(run.model.named_parameters())
    x, y = run.batch(run.start_epoch(), 0)
    counter = FlopCounterMode(display=False)
    with counter:
        output = functional_call(template, params, (x,))
        _summed_loss(config, output, y).backward()
    return counter.get_total_flops() * data.n_train / len(y)


#: Dense bf16 peaks from NVIDIA's data sheets (SXM parts unless named), TFLOP/s, by a fragment
#: of the device name; the first fragment found in the name wins.
BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0}


def bf16_peak(device: torch.device) -> float | None:
    """The bf16 peak of a CUDA ``device`` in TFLOP/s, or None where the GPU is not listed."""
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in BF16_PEAK_TFLOPS.items() if part in name), None)


def _group_key(config: RunConfig) -> tuple[Any, ...]:
    """What runs must share to train together: data, model, batches, loss and device."""
    return (
        config.dataset,
        config.data_seed,
        config.train_subset,
        config.val_subset,
        json.dumps(config.data_options, sort_keys=True),
        config.model,
        json.dumps(config.model_options, sort_keys=True),
        config.batch_size,
        config.label_smoothing,
        config.augment,
        str(resolve_device(config.device)),
    )


def check_group_size(group_size: Any) -> None:
    """Raise ValueError unless ``group_size`` is ``"auto"``, ``None`` or an integer >= 1."""
    if group_size not in ("auto", None) and (not _is_int(group_size) or group_size < 1):
        raise ValueError(f'group_size must be "auto", None or an integer >= 1, got {group_size!r}')


def group_runs(
    configs: Iterable[RunConfig], group_size: int | str | None = DEFAULT_GROUP_SIZE
) -> list[list[RunConfig]]:
    """Split ``configs`` into groups that can train together, of at most ``group_size`` runs.

    Runs share a group only when they share the data set and its subsets, options and seed,
    the model and its options, the batch size, label smoothing, augmentation and device; they
    may differ in everything else (schedule and its settings, lr, weight decay, optimizer,
    seed, budget). Within those classes, runs are ordered by budget, longest first, before
    being cut into groups, so that runs of equal budgets share a group and no group trains
    longer than it must. ``None`` puts each whole class in one group; ``"auto"`` cuts each
    class by :func:`default_group_size`.

    Raises:
        ValueError: ``group_size`` is not ``"auto"``, ``None`` or an integer >= 1, or a config
            is not a
            :class:`RunConfig`.
    """
    check_group_size(group_size)
    classes: dict[tuple[Any, ...], list[RunConfig]] = {}
    for config in configs:
        if not isinstance(config, RunConfig):
            raise ValueError(f"configs: each must be a RunConfig, got {type(config).__name__}")
        classes.setdefault(_group_key(config), []).append(config)
    groups = []
    for members in classes.values():
        members = sorted(members, key=lambda c: -c.epochs)
        if group_size == "auto":
            size = default_group_size(members[0])
        else:
            size = group_size or len(members)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


class _Group:
    """The runs of one group and the vectorised computations over their stacked parameters."""

    def __init__(self, runs: list[RunState], autocast: Callable[[], torch.autocast]) -> None:
        self.config = runs[0].config  # the settings the runs share
        self.template = vmappable_copy(runs[0].model)
        self.autocast = autocast
        self.names = [name for name, _ in runs[0].model.named_parameters()]
        self.params = {id(run): dict(run.model.named_parameters()) for run in runs}

        def batch_output(params: dict[str, Tensor], x: Tensor) -> Tensor:
            with autocast():
                return functional_call(self.template, params, (x,))

        def train_loss(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            return _summed_loss(self.config, batch_output(params, x), y)

        def val_sums(params: dict[str, Tensor], x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            output = batch_output(params, x)
            return _summed_loss(self.config, output, y), _summed_metric(output, y, runs[0].task)

        self._train_losses = vmap(train_loss)
        self._val_sums = vmap(val_sums, in_dims=(0, None, None))

    def stacked(self, runs: list[RunState]) -> dict[str, Tensor]:
        """Each parameter of the runs, stacked along a new first dimension (differentiable)."""
        return {
            name: torch.stack([self.params[id(run)][name] for run in runs]) for name in self.names
        }

    def train_losses(self, runs: list[RunState], x: Tensor, y: Tensor) -> Tensor:
        """Each run's summed loss on its batch (``x``, ``y`` stacked by run)."""
        self.template.train()
        return self._train_losses(self.stacked(runs), x, y)

    def batch_sums(self, runs: list[RunState]) -> Callable[..., tuple[Tensor, Tensor]]:
        """Each run's validation sums of a batch, all runs in one call."""
        self.template.eval()
        with torch.no_grad():
            params = self.stacked(runs)
        return lambda x, y: self._val_sums(params, x, y)


def _train_group(
    configs: list[RunConfig],
    data: ImageData | SeriesData,
    progress: bool,
    on_result: Callable[[RunResult], None] | None,
) -> list[RunResult]:
    """Train one group of compatible runs on ``data`` (already on the device)."""
    start = time.perf_counter()
    device = data.device
    autocast = autocast_for(device)
    runs = [RunState(config, data) for config in configs]
    group = _Group(runs, autocast)
    size = len(runs)
    # Each run's share of the group's wall time: the setup split evenly, then each epoch split
    # among the runs that trained in it.
    shares = dict.fromkeys(map(id, runs), (time.perf_counter() - start) / size)
    results: list[RunResult] = []
    bar = progress_bar(
        range(max(config.epochs for config in configs)),
        desc=f"group of {size}: {configs[0].dataset}",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    steps_per_epoch = runs[0].steps_per_epoch
    for _ in bar:
        epoch_start = time.perf_counter()
        active = [run for run in runs if not run.finished]
        orders = [run.start_epoch() for run in active]
        loss_sums = torch.zeros(len(active), device=device)
        for step in range(steps_per_epoch):
            batches = [run.batch(order, step) for run, order in zip(active, orders, strict=True)]
            x = torch.stack([x for x, _ in batches])
            y = torch.stack([y for _, y in batches])
            summed = group.train_losses(active, x, y)
            for run in active:
                run.zero_grad()
            # Run k's parameters appear only in term k: each gets the gradient it gets alone.
            (summed / y.shape[1]).sum().backward()
            for run in active:
                run.step()
            loss_sums += summed.detach()
        for run in active:
            run.start_evaluation()
        val_sums, metric_sums = _evaluate(group.batch_sums(active), data, len(active))
        # The epoch's only host-device synchronisation.
        totals = torch.stack([loss_sums, val_sums, metric_sums]).T.tolist()
        seconds = (time.perf_counter() - epoch_start) / len(active)
        for run, sums in zip(active, totals, strict=True):
            run.end_epoch(*sums, seconds)
            shares[id(run)] += seconds
            if run.finished:
                result = run.result(shares[id(run)], group_size=size)
                results.append(result)
                if on_result is not None:
                    on_result(result)
        bar.set_postfix(training=sum(not run.finished for run in runs))
    bar.close()
    return results


def train_runs(
    configs: Iterable[RunConfig],
    data: ImageData | SeriesData | None = None,
    *,
    group_size: int | str | None = DEFAULT_GROUP_SIZE,
    on_result: Callable[[RunResult], None] | None = None,
    progress: bool = True,
    data_root: str | PathLike[str] | None = None,
    download: bool = True,
) -> list[RunResult]:
    """Train ``configs`` in groups, each group's runs together; one result per config.

    Each run is trained as :func:`hyperlr.lab.train.train_run` trains it (same model
    initialisation, optimizer, schedule stepping, shuffles and augmentation, same curves up to
    float rounding), but the runs of a group share every forward and backward pass (see the
    module's notes). Configs that cannot share a group are split by :func:`group_runs`; a run
    leaves its group when its budget ends, and ``on_result`` is called with its result then
    (to store it at once). The result records ``group_size``, the number of runs its group
    started with. On CUDA the forward pass runs under bfloat16 autocast, as in ``train_run``.

    Args:
        configs: the runs; duplicates (equal keys) are trained once.
        data: the data set, if already loaded; it must match every config (as in
            ``train_run``). Otherwise each group loads its own.
        group_size: most runs per group (``"auto"``: :func:`default_group_size`, the size
            measured best for the model and device; ``None``: no limit; 1: each run alone, through
            ``train_run``).
        on_result: called with each run's result the moment the run ends.
        progress: show a tqdm bar over each group's epochs.
        data_root, download: where to look for data sets and whether torchvision may download
            them, when ``data`` is not given.

    Returns:
        One result per distinct config, in the order of ``configs``.

    Raises:
        ValueError: before any training, when ``configs`` is empty or holds a non-config,
            ``group_size`` is invalid, ``on_result`` is not callable, or ``data`` does not
            match a config.
    """
    if isinstance(configs, RunConfig) or not isinstance(configs, Iterable):
        raise ValueError("configs must be an iterable of RunConfig objects")
    unique: dict[str, RunConfig] = {}
    for config in configs:
        if not isinstance(config, RunConfig):
            raise ValueError(f"configs: each must be a RunConfig, got {type(config).__name__}")
        unique.setdefault(config.key, config)
    if not unique:
        raise ValueError("configs must list at least one RunConfig")
    check_group_size(group_size)
    if on_result is not None and not callable(on_result):
        raise ValueError(f"on_result must be None or a callable, got {on_result!r}")
    if data is not None:
        for config in unique.values():
            _check_data(config, data)
    groups = group_runs(unique.values(), group_size)

    # Every group's data before any training, so a missing data set fails now, not hours in.
    loaded: dict[tuple[Any, ...], ImageData | SeriesData] = {}
    for members in groups:
        key = _group_key(members[0])
        if key not in loaded:
            device = resolve_device(members[0].device)
            source = data or load_data(members[0], root=data_root, download=download)
            loaded[key] = source.to(device)

    results: dict[str, RunResult] = {}
    for members in groups:
        group_data = loaded[_group_key(members[0])]
        if len(members) == 1:  # alone: today's loop, unchanged
            result = train_run(members[0], group_data, progress=progress)
            if on_result is not None:
                on_result(result)
            results[result.config.key] = result
        else:
            for result in _train_group(members, group_data, progress, on_result):
                results[result.config.key] = result
    return [results[key] for key in unique]
