"""A GPU lease's worth of finished runs: check the device path, measure, train what fits.

A lease of a GPU machine is short (minutes), one command of it shorter still, and only a few
files come back. :func:`main` (``tools/gpu_study.py``) spends one command so:

1. **Imports and versions** are printed and every module it needs imported before any work.
2. **The device path is checked** (:func:`check_device_path`) for the CNN, the LSTM, DeepONet
   and TraONet on small models: every run's batches are drawn on the CPU from a CPU generator
   (no augmentation) and moved, so both devices see the same numbers; a few AdamW steps give
   per-step losses :math:`L_{k,s}`, first-step gradients :math:`g_k` and final parameters
   :math:`\\theta_k`, compared by :math:`\\|a - b\\| / \\|b\\|`:

   * grouped step against lone steps on the device, float32: at most :data:`FP32_TOLERANCE`;
   * device against CPU (lone, float32): at most :data:`FP32_TOLERANCE`;
   * device grouped under bf16 autocast against the CPU in float32: losses and gradients within
     :data:`BF16_TOLERANCE`.

   TF32 is switched off for the float32 comparisons. A difference raises :class:`CheckFailure`
   naming the model, the comparison, the quantity and the run, and nothing is trained. Without
   CUDA only the first comparison runs (on the CPU) and the report says CUDA was absent.
3. **Speed is measured** (:func:`measure_speed`) per study at its run size: run-steps per
   second alone and in groups of several sizes; the fastest way is used.
4. **Whole groups are trained** while the next group's estimate, :func:`group_seconds` times a
   safety margin, ends before the deadline (:class:`Deadline`, checked with an injectable
   clock). Each finished group's run files and provenance go at once into an archive under
   ``--out`` (:class:`RunArchive`: atomic rewrites, parts under the return limit), so a kill
   loses at most the group in flight; a rerun with the same ``--out`` skips finished runs.
5. **A report** (``report.json``, ``report.md``) is rewritten after every step.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import io
import json
import math
import os
import platform
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BF16_TOLERANCE",
    "CheckFailure",
    "Deadline",
    "FP32_TOLERANCE",
    "RunArchive",
    "check_device_path",
    "choose_group_size",
    "group_seconds",
    "main",
    "measure_speed",
]

#: Largest relative difference allowed between float32 computations of the same steps.
FP32_TOLERANCE = 1e-4
#: The parameters after the check's steps: AdamW divides by :math:`\\sqrt{v}`, so an element
#: whose gradient is rounding noise moves by about the learning rate either way; observed up to
#: 5e-5 between grouped and lone TraONet steps on the CPU.
PARAMETER_TOLERANCE = 1e-3
#: Largest relative differences allowed between the device under bf16 autocast and the CPU in
#: float32 after a few steps: bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ~ 2e-3 per
#: operation), which sums over a network's layers to about 1e-2 in the loss; gradients are
#: noisier. A guess from the arithmetic, not yet measured on a GPU.
BF16_TOLERANCE = {"losses": 3e-2, "gradients": 1.5e-1}
#: The lease's return limits: files back and their size (a part is closed below it).
MAX_FILES_BACK = 8
MAX_FILE_BYTES = 16 * 2**20
#: Archive parts allowed (report.json and report.md take two of the eight files; one spare).
MAX_PARTS = MAX_FILES_BACK - 3
PART_LIMIT_BYTES = 14 * 2**20

#: Modules the command needs (checked before any work), beyond the standard library.
NEEDED_MODULES = (
    "torch", "numpy", "pandas", "filelock", "tqdm", "scipy", "sklearn", "joblib", "optuna",
    "schedulefree", "torchvision", "hyperlr", "hyperlr.lab.grouped", "hyperlr.lab.results",
    "hyperlr.lab.studies",
)  # fmt: skip

#: The check's small models, one per architecture, and their data (small, generated or local).
CHECK_CASES: dict[str, dict[str, Any]] = {
    "simple_cnn": {
        "dataset": "digits", "model_options": {"channels": 8, "hidden": 16},
        "batch_size": 16, "train_subset": 128, "val_subset": 32,
    },
    "lstm_seq2seq": {
        "dataset": "oscillator", "model_options": {"hidden_size": 16, "num_layers": 2},
        "batch_size": 16, "train_subset": 128, "val_subset": 32,
    },
    "deeponet": {
        "dataset": "integral", "model_options": {"width": 32, "depth": 2, "basis": 8},
        "data_options": {"n_functions": 160, "n_grid": 200},
        "batch_size": 32, "train_subset": 128, "val_subset": 32,
    },
    "traonet": {
        "dataset": "integral",
        "model_options": {"d_model": 16, "n_heads": 2, "d_ff": 32, "n_layers": 1},
        "data_options": {"n_functions": 160, "n_grid": 200},
        "batch_size": 32, "train_subset": 128, "val_subset": 32,
    },
}  # fmt: skip

#: ``--scale tiny``: the studies on two short budgets, one seed, small subsets and small models;
#: checks the command's plumbing on any machine in seconds, not a result.
TINY = {"budgets": (1, 2), "seeds": (89,), "train_subset": 64, "val_subset": 32}
TINY_MODELS = {
    "image": {"channels": 4, "hidden": 8},
    "sequence": {"hidden_size": 8, "num_layers": 1},
}


class CheckFailure(RuntimeError):
    """The device path computed something else than the reference (the message says what)."""


# --------------------------------------------------------------------------------------------
# The deadline


class Deadline:
    """When the command must have finished, read on an injectable monotonic clock.

    ``spec`` is seconds from now (``"540"``, ``"540s"``, ``"9m"``) or a UTC wall-clock time
    (``"07:35"``, ``"07:35:30"``, or an ISO date-time with its zone), converted once to the
    clock's scale: :math:`t_{end} = t_{now} + (T_{wall} - T_{wall,now})`.
    """

    def __init__(
        self,
        spec: str | float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.clock = clock
        now = clock()
        self.end = now + self._seconds(spec, wall or (lambda: dt.datetime.now(dt.timezone.utc)))

    @staticmethod
    def _seconds(spec: str | float, wall: Callable[[], dt.datetime]) -> float:
        if isinstance(spec, (int, float)):
            seconds = float(spec)
        else:
            text = spec.strip()
            units = {"s": 1.0, "m": 60.0, "h": 3600.0}
            try:
                if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
                    seconds = float(text[:-1]) * units[text[-1]]
                elif text.replace(".", "", 1).isdigit():
                    seconds = float(text)
                else:
                    now = wall()
                    if "T" in text or "-" in text:
                        end = dt.datetime.fromisoformat(text)
                        if end.tzinfo is None:
                            end = end.replace(tzinfo=dt.timezone.utc)
                    else:
                        clock_time = dt.time.fromisoformat(text)
                        end = now.replace(
                            hour=clock_time.hour, minute=clock_time.minute,
                            second=clock_time.second, microsecond=0,
                        )  # fmt: skip
                        if end < now - dt.timedelta(hours=12):  # just after midnight
                            end += dt.timedelta(days=1)
                    seconds = (end - now).total_seconds()
            except ValueError:
                raise ValueError(
                    f"deadline: expected seconds ('540', '540s', '9m') or a UTC time "
                    f"('07:35', ISO date-time), got {spec!r}"
                ) from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"deadline: must lie in the future, got {spec!r} ({seconds:.0f} s)")
        return seconds

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.end - self.clock()

    def allows(self, seconds: float) -> bool:
        """Whether work of ``seconds`` started now ends before the deadline."""
        return seconds <= self.remaining()


# --------------------------------------------------------------------------------------------
# The archive that comes back


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class RunArchive:
    """Run files packed into ``runs-<n>.tar.gz`` parts under ``folder``, each rewritten whole.

    :meth:`add` rewrites the current part with the new members to a temporary file and renames
    it over the old one: at any moment every part on disk is a complete archive, so a process
    killed mid-write leaves the groups added before intact. A part that would pass
    ``part_limit`` bytes is closed and a new one begun; at most ``max_parts`` parts.
    """

    def __init__(
        self, folder: Path, part_limit: int = PART_LIMIT_BYTES, max_parts: int = MAX_PARTS
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.part_limit, self.max_parts = part_limit, max_parts
        for stale in self.folder.glob(".runs-*.tmp"):  # a write the last process did not finish
            stale.unlink()

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("runs-*.tar.gz"), key=lambda p: int(p.name[5:-7]))

    @staticmethod
    def _members(part: Path) -> dict[str, bytes]:
        with tarfile.open(part, "r:gz") as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

    def members(self) -> dict[str, bytes]:
        """Every member of every part, by name (later parts win)."""
        found: dict[str, bytes] = {}
        for part in self.parts():
            found.update(self._members(part))
        return found

    @staticmethod
    def _pack(members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def add(self, new: dict[str, bytes], append: dict[str, bytes] | None = None) -> Path:
        """Store ``new`` members and add ``append``'s bytes to the ends of those members.

        Raises:
            ValueError: the new members alone exceed a part, or every part is full.
        """
        parts = self.parts()
        current = self._members(parts[-1]) if parts else {}
        merged = {**current, **new}
        for name, data in (append or {}).items():
            merged[name] = merged.get(name, b"") + data
        packed = self._pack(merged)
        index = len(parts) if parts else 1
        if parts and len(packed) > self.part_limit:  # close this part, begin the next
            merged = dict(new)
            for name, data in (append or {}).items():
                merged[name] = data
            packed = self._pack(merged)
            index = len(parts) + 1
        if len(packed) > self.part_limit:
            raise ValueError(f"a group's files ({len(packed)} bytes) exceed one archive part")
        if index > self.max_parts:
            raise ValueError(f"all {self.max_parts} archive parts are full")
        path = self.folder / f"runs-{index}.tar.gz"
        _atomic_write(path, packed)
        return path


# --------------------------------------------------------------------------------------------
# Correctness of the device path


def _relative(a: Any, b: Any) -> float:
    import torch

    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.inf
    scale = torch.linalg.vector_norm(b)
    return float(torch.linalg.vector_norm(a - b) / (scale if scale > 0 else 1.0))


def _check_configs(model: str, runs: int) -> list[Any]:
    from .runs import RunConfig

    case = CHECK_CASES[model]
    schedulers = ("C", "H", "EH", "N", "EC", "P", "L")
    return [
        RunConfig(
            scheduler=schedulers[k % len(schedulers)], epochs=3 + k, seed=11 + k,
            lr=1e-3 * (1 + k), model=model, augment=False, device="cpu",
            **{key: value for key, value in case.items()},
        )
        for k in range(runs)
    ]  # fmt: skip


def _cpu_batches(configs: Sequence[Any], data: Any, steps: int) -> list[list[tuple[Any, Any]]]:
    """Each run's first ``steps`` batches, shuffled on the CPU by a CPU generator of its seed."""
    import torch

    batches = []
    for config in configs:
        generator = torch.Generator().manual_seed(config.seed)
        order = torch.randperm(data.n_train, generator=generator)
        size = config.batch_size
        picks = [order[s * size : (s + 1) * size] for s in range(steps)]
        batches.append([(data.x_train[i], data.y_train[i]) for i in picks])
    return batches


def _flat(tensors: Iterable[Any]) -> Any:
    import torch

    return torch.cat([t.detach().double().cpu().flatten() for t in tensors])


def _steps(
    configs: Sequence[Any],
    data: Any,
    batches: list[list[tuple[Any, Any]]],
    device: Any,
    bf16: bool,
    grouped: bool,
) -> dict[str, list[Any]]:
    """Train ``configs`` for ``len(batches[0])`` steps on the given batches; losses, gradients
    of the first step and final parameters of each run (float64 on the CPU)."""
    import torch

    from .grouped import _Group
    from .train import RunState, _summed_loss

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    moved = data.to(device)
    runs = [RunState(dataclasses.replace(c, device=str(device)), moved) for c in configs]
    for run in runs:
        run.start_epoch()  # training mode (the device generator it draws from is not used)
    group = _Group(runs, autocast) if grouped else None
    losses: list[list[float]] = [[] for _ in runs]
    gradients: list[Any] = []
    for step in range(len(batches[0])):
        pairs = [(x.to(device), y.to(device)) for x, y in (b[step] for b in batches)]
        for run in runs:
            run.zero_grad()
        if grouped:
            x = torch.stack([x for x, _ in pairs])
            y = torch.stack([y for _, y in pairs])
            summed = group.train_losses(runs, x, y)
            (summed / y.shape[1]).sum().backward()
            values = summed.detach()
        else:
            values = []
            for run, (x, y) in zip(runs, pairs, strict=True):
                with autocast():
                    summed = _summed_loss(run.config, run.model(x), y)
                (summed / y.shape[0]).backward()
                values.append(summed.detach())
        for k, value in enumerate(values):
            losses[k].append(float(value))
        if step == 0:
            gradients = [
                _flat(p.grad if p.grad is not None else torch.zeros_like(p)
                      for p in run.model.parameters())
                for run in runs
            ]  # fmt: skip
        for run in runs:
            run.step()
    params = [_flat(run.model.parameters()) for run in runs]
    return {"losses": losses, "gradients": gradients, "parameters": params}


def _compare(
    model: str,
    what: str,
    got: dict[str, list[Any]],
    want: dict[str, list[Any]],
    tolerance: dict[str, float],
) -> dict[str, float]:
    worst = {}
    for quantity, bound in tolerance.items():
        errors = [_relative(a, b) for a, b in zip(got[quantity], want[quantity], strict=True)]
        worst[quantity] = max(errors)
        for k, error in enumerate(errors):
            if not error <= bound:
                raise CheckFailure(
                    f"{model}: {what}: {quantity} of run {k} differ by {error:.3g} "
                    f"(relative; allowed {bound:g})"
                )
    return worst


def check_device_path(
    device: str = "auto",
    models: Sequence[str] = tuple(CHECK_CASES),
    runs: int = 3,
    steps: int = 3,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Check the grouped training step, and CUDA against the CPU where CUDA is present.

    Returns:
        ``{"cuda": bool, "models": {model: {comparison: {quantity: worst relative diff}}}}``.

    Raises:
        CheckFailure: a comparison exceeds its tolerance (the message names it).
    """
    import torch

    from .train import load_data, resolve_device

    target = resolve_device(device)
    cuda = target.type == "cuda"
    exact = {
        "losses": FP32_TOLERANCE, "gradients": FP32_TOLERANCE, "parameters": PARAMETER_TOLERANCE,
    }  # fmt: skip
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    report: dict[str, Any] = {"cuda": cuda, "device": str(target), "models": {}}
    if not cuda:
        log("CUDA not available: the check compares grouped and lone steps on the CPU only")
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        for model in models:
            configs = _check_configs(model, runs)
            data = load_data(configs[0])
            batches = _cpu_batches(configs, data, steps)
            cpu = torch.device("cpu")
            rows: dict[str, Any] = {}
            lone = _steps(configs, data, batches, target, bf16=False, grouped=False)
            grouped = _steps(configs, data, batches, target, bf16=False, grouped=True)
            rows[f"grouped vs lone on {target.type}, float32"] = _compare(
                model, f"grouped vs lone on {target.type} (float32)", grouped, lone, exact
            )
            if cuda:
                reference = _steps(configs, data, batches, cpu, bf16=False, grouped=False)
                rows["cuda vs cpu, float32"] = _compare(
                    model, "cuda vs cpu (float32, lone)", lone, reference, exact
                )
                fast = _steps(configs, data, batches, target, bf16=True, grouped=True)
                rows["cuda bf16 grouped vs cpu float32"] = _compare(
                    model, "cuda bf16 grouped vs cpu float32", fast, reference, BF16_TOLERANCE
                )
            report["models"][model] = rows
            log(f"check {model}: " + "; ".join(
                f"{name}: " + ", ".join(f"{q} {v:.1e}" for q, v in worst.items())
                for name, worst in rows.items()
            ))  # fmt: skip
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    return report


# --------------------------------------------------------------------------------------------
# Speed and the plan


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_speed(
    config: Any,
    data: Any,
    sizes: Sequence[int],
    steps: int = 5,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
    setup: dict[int, float] | None = None,
) -> dict[int, float]:
    """Run-steps per second (training steps of one run, times runs in the group) by group size.

    Size 1 is the lone loop (on CUDA its LSTM is the fused cuDNN kernel); larger sizes the
    grouped step of :mod:`hyperlr.lab.grouped` (its LSTM unfused, under ``vmap``). ``data`` must
    be on the configs' device. Timed after ``warmup`` steps, the device synchronised around;
    ``setup``, if given, receives by size the seconds from building the runs to the end of the
    warm-up (a group's fixed cost: models, optimizers, tracing, the first kernels).
    """
    import torch

    from .grouped import _Group
    from .train import RunState, _summed_loss, autocast_for

    device = data.device
    autocast = autocast_for(device)
    rates = {}
    for size in sizes:
        configs = [dataclasses.replace(config, seed=config.seed + k) for k in range(size)]
        built = clock()
        runs = [RunState(c, data) for c in configs]
        orders = [run.start_epoch() for run in runs]
        group = _Group(runs, autocast) if size > 1 else None
        steps_here, per_epoch = steps + warmup, runs[0].steps_per_epoch
        start = clock()
        for step in range(steps_here):
            if step == warmup:
                _synchronize(device)
                start = clock()
                if setup is not None:
                    setup[size] = start - built
            batches = [
                run.batch(order, step % per_epoch) for run, order in zip(runs, orders, strict=True)
            ]
            for run in runs:
                run.zero_grad()
            if group is None:
                x, y = batches[0]
                with autocast():
                    loss = _summed_loss(config, runs[0].model(x), y)
                (loss / y.shape[0]).backward()
            else:
                x = torch.stack([x for x, _ in batches])
                y = torch.stack([y for _, y in batches])
                (group.train_losses(runs, x, y) / y.shape[1]).sum().backward()
            for run in runs:
                run.step()
        _synchronize(device)
        rates[size] = size * steps / max(clock() - start, 1e-9)
        del runs, group
    return rates


def group_seconds(
    epochs: int,
    steps_per_epoch: int,
    size: int,
    rate: float,
    eval_share: float = 0.25,
    margin: float = 1.5,
    overhead_s: float = 0.0,
) -> float:
    """Estimated wall time of a group, with a safety margin:

    .. math:: T = m \\left((1 + e)\\, \\frac{N \\, S \\, K}{r} + T_0\\right)

    for the group's longest budget :math:`N` epochs of :math:`S` steps, :math:`K` runs at a
    measured :math:`r` run-steps per second, evaluation costing a share :math:`e` of training,
    a fixed cost :math:`T_0` (``overhead_s``) and margin :math:`m`.
    """
    if rate <= 0 or not math.isfinite(rate):
        raise ValueError(f"rate: must be a positive number of run-steps per second, got {rate}")
    return margin * ((1 + eval_share) * epochs * steps_per_epoch * size / rate + overhead_s)


def choose_group_size(
    rates: dict[int, float],
    todo: int,
    epochs: int,
    steps_per_epoch: int,
    remaining: float,
    margin: float = 1.5,
    eval_share: float = 0.25,
    overhead: dict[int, float] | None = None,
) -> int | None:
    """The group size for the next group: the fastest measured size (run-steps per second),
    shrunk to the largest measured size whose group (of at most ``todo`` runs) ends within
    ``remaining`` seconds by :func:`group_seconds` (with ``overhead``'s fixed cost of that
    size, if given); ``None`` when none does."""
    overhead = overhead or {}
    for size in sorted(rates, key=lambda s: (-rates[s], s)):
        fitting = [
            s for s in sorted(rates, reverse=True)
            if s <= size and group_seconds(
                epochs, steps_per_epoch, min(s, todo), rates[s], eval_share, margin,
                overhead.get(s, 0.0),
            ) <= remaining
        ]  # fmt: skip
        if fitting:
            return min(fitting[0], todo)
    return None


# --------------------------------------------------------------------------------------------
# The command


def _versions() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in NEEDED_MODULES:
        module = importlib.import_module(name)
        if "." not in name:
            versions[name] = getattr(module, "__version__", "?")
    import torch

    versions["cuda"] = torch.version.cuda
    versions["cudnn"] = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    versions["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return versions


def _write_report(out: Path, report: dict[str, Any]) -> None:
    _atomic_write(out / "report.json", json.dumps(report, indent=1, default=str).encode())
    lines = [f"# GPU lease report ({report.get('started')})", ""]
    lines.append(f"Device: {report.get('device')}; versions: {report.get('versions')}")
    check = report.get("check")
    lines += ["", "## Check", "", f"{check}" if check else "not run"]
    lines += ["", "## Speed (run-steps per second by group size)", ""]
    for study, measured in report.get("speed", {}).items():
        lines.append(f"* {study}: {measured}")
    lines += ["", "## Groups trained", ""]
    for group in report.get("groups", []):
        lines.append(
            f"* {group['study']}: {group['runs']} runs of {group['epochs']} epochs, "
            f"{group['seconds']:.1f} s (estimated {group['estimated_s']:.1f} s), "
            f"{group['achieved_tflops']:.3g} TFLOP/s (bf16 peak {group['bf16_peak_tflops']})"
        )
    lines += ["", f"Stopped: {report.get('stopped')}", ""]
    _atomic_write(out / "report.md", "\n".join(lines).encode())


def _run_files(results: Sequence[Any], folder: str) -> dict[str, bytes]:
    from .results import write_run

    files = {}
    with tempfile.TemporaryDirectory() as scratch:
        for result in results:
            path = write_run(result, scratch)
            files[f"{folder}/{path.name}"] = path.read_bytes()
    return files


def main(
    argv: list[str] | None = None, clock: Callable[[], float] = time.monotonic
) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deadline", required=True, help="seconds ('540', '9m') or UTC '07:35'")
    parser.add_argument("--out", type=Path, required=True, help="the folder that comes back")
    parser.add_argument("--study", nargs="+", default=["sequence", "image"])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--scale", choices=["paper", "tiny"], default="paper")
    parser.add_argument("--sizes", type=int, nargs="+", default=[7, 21, 35])
    parser.add_argument("--margin", type=float, default=1.5, help="safety factor on estimates")
    parser.add_argument("--reserve", type=float, default=20.0, help="seconds kept at the end")
    parser.add_argument("--measure-steps", type=int, default=5)
    parser.add_argument("--skip-check", action="store_true")
    args = parser.parse_args(argv)
    if args.measure_steps < 1:
        parser.error(f"--measure-steps must be >= 1, got {args.measure_steps}")
    try:
        deadline = Deadline(args.deadline, clock)
    except ValueError as error:
        parser.error(str(error))
    if args.margin < 1 or any(size < 2 for size in args.sizes):
        parser.error("--margin must be >= 1 and every --sizes >= 2")

    versions = _versions()  # imports everything needed before any work
    print("versions:", json.dumps(versions))
    import torch

    from .grouped import bf16_peak, group_runs, train_runs, training_flops
    from .results import RunFileError  # noqa: F401  (import checked)
    from .studies import PAPER_STUDIES, paper_scale_configs
    from .train import load_data, resolve_device

    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    archive = RunArchive(args.out)
    done = {Path(name).stem for name in archive.members() if name.endswith(".json")}
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device), "versions": versions, "scale": args.scale,
        "runs_already_in_out": len(done), "speed": {}, "groups": [], "stopped": None,
    }  # fmt: skip
    _write_report(args.out, report)
    if not args.skip_check:
        try:
            report["check"] = check_device_path(str(device))
        except CheckFailure as failure:
            report["check"] = report["stopped"] = f"check failed: {failure}"
            _write_report(args.out, report)
            print(f"CHECK FAILED, nothing trained: {failure}", file=sys.stderr)
            raise SystemExit(1) from failure
        _write_report(args.out, report)

    for study in args.study:
        if study not in PAPER_STUDIES:
            parser.error(f"--study: each must be one of {', '.join(PAPER_STUDIES)}, got {study}")
        tiny = {**TINY, "model_options": TINY_MODELS[study]} if args.scale == "tiny" else {}
        configs = paper_scale_configs(study, device=str(device), **tiny)
        todo = [c for c in configs if c.key not in done]
        if not todo:
            continue
        data = load_data(configs[0]).to(device)
        steps_per_epoch = math.ceil(data.n_train / configs[0].batch_size)
        setup: dict[int, float] = {}
        rates = measure_speed(
            todo[0], data, [1, *args.sizes], steps=args.measure_steps, setup=setup
        )
        # Validation is forward passes only (about a third of a training step's work per
        # example); counted generously, as a share of training at least 0.25.
        eval_share = max(0.25, len(data.x_val) / data.n_train)
        report["speed"][study] = {str(k): round(v, 3) for k, v in rates.items()}
        report["speed"][study]["fastest"] = max(rates, key=rates.get)
        report["speed"][study]["setup_s"] = {str(k): round(v, 3) for k, v in setup.items()}
        print(f"{study}: run-steps/s by group size {report['speed'][study]}")
        _write_report(args.out, report)
        flops_per_epoch = training_flops(todo[0], data)
        while todo:
            # The longest budget whose group ends in time: in a short lease the shorter budgets'
            # groups finish where a 200-epoch group could not.
            group, size = [], None
            for epochs in sorted({c.epochs for c in todo}, reverse=True):
                same = [c for c in todo if c.epochs == epochs]
                size = choose_group_size(
                    rates, len(same), epochs, steps_per_epoch,
                    deadline.remaining() - args.reserve, args.margin, eval_share, setup,
                )  # fmt: skip
                if size is not None:
                    group = group_runs(same, size)[0]
                    break
            if not group:
                report["stopped"] = f"{study}: the next group would not end before the deadline"
                break
            # A group cut to the runs left is timed at the measured size it was cut from.
            measured = min((m for m in rates if m >= size), default=max(rates))
            estimate = group_seconds(
                max(c.epochs for c in group), steps_per_epoch, size, rates[measured],
                eval_share, args.margin, setup.get(measured, 0.0),
            )  # fmt: skip
            tick = clock()
            results = train_runs(group, data, group_size=len(group), progress=False)
            seconds = clock() - tick
            record = {
                "study": study, "runs": len(group), "epochs": max(c.epochs for c in group),
                "seconds": seconds, "estimated_s": estimate, "device": versions["gpu"] or "cpu",
                "precision": "bfloat16-autocast" if device.type == "cuda" else "float32",
                "tflop": flops_per_epoch * sum(c.epochs for c in group) / 1e12,
                "bf16_peak_tflops": bf16_peak(device) if device.type == "cuda" else None,
                "torch": torch.__version__, "finished": dt.datetime.now(dt.timezone.utc)
                .isoformat(timespec="seconds"),
            }  # fmt: skip
            folder = PAPER_STUDIES[study].results_folder
            archive.add(
                _run_files(results, folder),
                append={f"{folder}/provenance.jsonl": (json.dumps(record) + "\n").encode()},
            )
            record["achieved_tflops"] = record["tflop"] / seconds
            report["groups"].append(record)
            _write_report(args.out, report)
            print(f"{study}: group of {len(group)} trained in {seconds:.1f} s "
                  f"(estimated {estimate:.1f} s)", flush=True)  # fmt: skip
            done |= {c.key for c in group}
            todo = [c for c in todo if c.key not in done]
            # Recalibrate: the observed speed, if slower than measured, for later groups.
            training_s = max(seconds - setup.get(measured, 0.0), 1e-9)
            observed = size * max(c.epochs for c in group) * steps_per_epoch
            observed *= (1 + eval_share) / training_s
            rates[measured] = min(rates[measured], observed)
        if report["stopped"]:
            break
    report["stopped"] = report["stopped"] or "every run of the studies is finished"
    report["parts"] = {p.name: p.stat().st_size for p in archive.parts()}
    _write_report(args.out, report)
    print(f"stopped: {report['stopped']}; archives {report['parts']}")
    return report
