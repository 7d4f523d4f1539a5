"""Train one of the paper's studies at the paper's scale on a GPU machine, resumably.

Three steps, from the repository root on a machine with a CUDA GPU (no network needed once the
bundle of ``tools/gpu_bundle.sh`` is there; see the README's "The paper's scale on a GPU"):

1. **Check the CUDA path** (well under a minute): a few runs of the study, shortened to two
   epochs on a subset, trained as one group on CUDA (bfloat16 autocast, device generators,
   on-device augmentation) and the same runs on the CPU in float32. Both must give finite
   curves whose training loss falls, and final validation metrics within ``CHECK_TOLERANCE``.
2. **Train** the study's missing runs in groups of ``--group-size``, storing each run in
   ``results/<study folder>/`` the moment it ends, until ``--minutes`` are spent: a group is
   started only if the groups before it say it will end in time.
3. **Pack** the result files this invocation added, with ``provenance.jsonl`` (GPU, precision,
   group size, versions, data set, wall time, runs per hour, achieved TFLOP/s), into one
   archive (``--archive``).

Run again, it continues: stored runs are loaded, never retrained.

    python tools/gpu_study.py --study image --minutes 25 --archive /tmp/image.tar.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from hyperlr.lab.data import DATASET_TASKS
from hyperlr.lab.grouped import bf16_peak, default_group_size, training_flops
from hyperlr.lab.runs import RunConfig, RunResult
from hyperlr.lab.studies import PAPER_STUDIES, paper_scale_configs
from hyperlr.lab.sweep import missing_runs, run_sweep
from hyperlr.lab.train import load_data

ROOT = Path(__file__).resolve().parents[1]

#: ``--tiny``: the study's schedules on two short budgets, one seed, small subsets and a small
#: model, to check the command's plumbing (groups, time limit, resuming, packing) on any machine
#: in seconds; not a result.
TINY = {"budgets": (1, 2), "seeds": (89,), "train_subset": 64, "val_subset": 32}
TINY_MODELS = {"image": {"channels": 4}, "sequence": {"hidden_size": 8, "num_layers": 1}}

#: The CUDA check's bound on |final metric on CUDA - on the CPU|: validation accuracy (image)
#: in absolute terms, validation loss (sequence) as a ratio's logarithm. bf16 autocast rounds
#: the forward pass to 8 bits of mantissa, so the two runs drift apart but must agree this well.
CHECK_TOLERANCE = {"classification": 0.03, "forecasting": math.log(1.5)}


def _shortened(config: RunConfig, device: str) -> RunConfig:
    return dataclasses.replace(config, epochs=2, train_subset=1024, val_subset=512, device=device)


def check_cuda_path(study: str) -> list[dict]:
    """Train a few shortened runs on CUDA (one group) and on the CPU; raise if they disagree."""
    picks = [c for c in paper_scale_configs(study) if c.seed == 89 and c.epochs == 50]
    picks = [c for c in picks if c.scheduler in ("C", "H", "EH")]
    task = DATASET_TASKS[picks[0].dataset]
    metric = "val_accuracy" if task == "classification" else "val_loss"
    on_gpu = run_sweep([_shortened(c, "cuda") for c in picks], _scratch(), group_size=len(picks))
    on_cpu = run_sweep([_shortened(c, "cpu") for c in picks], _scratch(), group_size=1)
    rows = []
    for gpu, cpu in zip(on_gpu, on_cpu, strict=True):
        a, b = gpu.history[metric][-1], cpu.history[metric][-1]
        gap = abs(a - b) if task == "classification" else abs(math.log(a / b))
        finite = all(math.isfinite(v) for r in (gpu, cpu) for v in r.history["train_loss"])
        falls = all(r.history["train_loss"][-1] < r.history["train_loss"][0] for r in (gpu, cpu))
        ok = finite and falls and gap <= CHECK_TOLERANCE[task]
        rows.append(
            {
                "scheduler": gpu.config.scheduler,
                f"{metric} cuda": a,
                f"{metric} cpu": b,
                "gap": gap,
                "ok": ok,
            }
        )
    for row in rows:
        print(
            "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )
    if not all(row["ok"] for row in rows):
        raise SystemExit(f"CUDA check failed (tolerance {CHECK_TOLERANCE[task]:.3g}): see above")
    return rows


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="hyperlr-cuda-check-"))


def train_until(
    configs: list[RunConfig], results_dir: Path, group_size: int, minutes: float
) -> dict:
    """Train missing runs in groups until the time is spent; returns the session's record."""
    deadline = time.monotonic() + 60 * minutes
    started = time.monotonic()
    trained: list[RunResult] = []
    seconds_per_epoch = None  # of one group, measured on the groups already trained
    while True:
        todo = sorted(missing_runs(configs, results_dir), key=lambda c: -c.epochs)
        if not todo:
            break
        group = todo[:group_size]
        longest = max(c.epochs for c in group)
        if seconds_per_epoch is not None and (
            time.monotonic() + seconds_per_epoch * longest > deadline
        ):
            print(f"stopping: the next group needs ~{seconds_per_epoch * longest / 60:.1f} min")
            break
        tick = time.monotonic()
        trained += run_sweep(group, results_dir, group_size=group_size, progress=False)
        seconds_per_epoch = (time.monotonic() - tick) / longest
        print(f"{len(trained)} runs trained, {len(todo) - len(group)} missing")
    wall = time.monotonic() - started
    epochs = sum(r.config.epochs for r in trained)
    if trained:
        first = trained[0].config
        flops = training_flops(first, load_data(dataclasses.replace(first, device="cpu"))) * epochs
    else:
        flops = 0.0
    return {
        "dataset": configs[0].dataset,
        "runs_trained": len(trained),
        "runs_missing": len(missing_runs(configs, results_dir)),
        "wall_seconds": wall,
        "runs_per_hour": 3600 * len(trained) / wall if wall else None,
        "training_tflop": flops / 1e12,
        "achieved_tflops": flops / 1e12 / wall if wall else None,
    }


def provenance(group_size: int, device: str) -> dict:
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = bf16_peak(torch.device("cuda")) if device == "cuda" else None
    precision = "bfloat16 autocast" if device == "cuda" else "float32"
    return {
        "gpu": name,
        "bf16_peak_tflops": peak,
        "precision": precision,
        "group_size": group_size,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def pack(results_dir: Path, before: set[Path], session: dict, archive: Path) -> None:
    # One JSON line per session; not *.json, which the results store reads as run files.
    record_path = results_dir / "provenance.jsonl"
    with record_path.open("a") as record:
        record.write(json.dumps(session) + "\n")
    new = [*sorted(set(results_dir.glob("*.json")) - before), record_path]
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in new:
            tar.add(path, arcname=f"{results_dir.name}/{path.name}")
    print(f"{len(new)} files packed into {archive}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=sorted(PAPER_STUDIES), required=True)
    parser.add_argument("--minutes", type=float, required=True, help="time limit for training")
    parser.add_argument("--group-size", type=int, help="runs trained together (default: measured)")
    parser.add_argument("--archive", type=Path, help="default: results-<study>.tar.gz")
    parser.add_argument("--results-root", type=Path, default=ROOT / "results")
    parser.add_argument("--skip-check", action="store_true", help="skip the CUDA check")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="check the plumbing only (TINY)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    if args.group_size is not None and args.group_size < 1:
        parser.error(f"--group-size must be >= 1, got {args.group_size}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (this command is for a GPU machine)")
    if args.device == "cpu" and not args.skip_check:
        parser.error("--device cpu needs --skip-check (the check compares CUDA with the CPU)")
    tiny = {**TINY, "model_options": TINY_MODELS[args.study]} if args.tiny else {}
    configs = paper_scale_configs(args.study, device=args.device, **tiny)
    group_size = args.group_size or default_group_size(configs[0])
    results_dir = args.results_root / PAPER_STUDIES[args.study].results_folder
    results_dir.mkdir(parents=True, exist_ok=True)
    before = set(results_dir.glob("*.json"))
    session = {"study": args.study, **provenance(group_size, args.device)}
    if not args.skip_check:
        started = time.monotonic()
        session["cuda_check"] = check_cuda_path(args.study)
        print(f"CUDA check passed in {time.monotonic() - started:.0f} s")
    session.update(train_until(configs, results_dir, group_size, args.minutes))
    print(json.dumps(session, indent=1))
    pack(results_dir, before, session, args.archive or Path(f"results-{args.study}.tar.gz"))


if __name__ == "__main__":
    main()
